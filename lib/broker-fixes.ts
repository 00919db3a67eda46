// The departures of aedes from MQTT that the bundled broker corrects, each with the section of the
// specification it restores. Each fix is a function of aedes' own hooks (no fork, no patch), named in
// docs/conformance.md, and test/conformance.test.ts runs aedes without them to show each is needed.
// lib/broker.ts applies them all to every aedes it starts; add a new fix to applyFixes.
import type { Aedes, Client } from 'aedes'
import { fixMqtt5 } from './broker-mqtt5.ts'
import { topicMatches } from './topics.ts'

/** Every fix, in the order its hooks must wrap each other. */
export function applyFixes(aedes: Aedes): void {
  keepDollarTopicsFromWildcards(aedes)
  keepEachClientsPublishesInOrder(aedes)
  deliverAtGrantedQoS(aedes)
  // Last: its size check must see each message as the fixes above leave it.
  fixMqtt5(aedes)
}

/**
 * MQTT 3.1.1 §4.7.2: a filter that starts with + or # must not match a topic name that starts with $.
 * aedes keeps to this for live messages but sends retained ones anyway (subscribe to # and you get
 * $SYS/broker/version); this hook, which sees every message on its way to a client, drops a $ topic
 * unless one of the client's filters that does not start with a wildcard matches it.
 */
export function keepDollarTopicsFromWildcards(aedes: Aedes): void {
  const forward = aedes.authorizeForward
  aedes.authorizeForward = (client, packet) => {
    if (packet.topic.startsWith('$')) {
      // aedes keeps a client's filters in `subscriptions`, which its types leave out.
      const filters = Object.keys((client as Client & { subscriptions: Record<string, unknown> }).subscriptions)
      if (!filters.some((filter) => !/^[+#]/.test(filter) && topicMatches(filter, packet.topic))) return null
    }
    return forward.call(aedes, client, packet)
  }
}

/**
 * MQTT 3.1.1 §4.6: messages from one client on a topic reach subscribers in the order they were sent.
 * aedes stores a retained message before routing it, asynchronously, so a publish that follows at
 * once overtakes it; aedes' duplicate filter then drops the overtaken message as already seen. So a
 * subscriber of a topic that got "on" (retained) then "off" saw only "off". Here each client's next
 * PUBLISH is let through only once the previous one has been routed (aedes calls `published` last).
 * QoS 2 is left alone: aedes does not route a retransmitted QoS 2 message again, so it would wait forever.
 */
export function keepEachClientsPublishesInOrder(aedes: Aedes): void {
  const previous = new WeakMap<Client, Promise<void>>()
  const routed = new WeakMap<Client, (() => void)[]>()
  const authorize = aedes.authorizePublish
  aedes.authorizePublish = (client, packet, callback) => {
    if (!client || packet.qos === 2) return authorize.call(aedes, client, packet, callback)
    let done!: () => void
    const mine = new Promise<void>((resolve) => (done = resolve))
    const before = previous.get(client) ?? Promise.resolve()
    previous.set(client, mine)
    void before.then(() => authorize.call(aedes, client, packet, (error) => {
      if (error) done()
      else routed.set(client, [...(routed.get(client) ?? []), done])
      callback(error)
    }))
  }
  const published = aedes.published
  aedes.published = (packet, client, callback) => {
    if (client && packet.qos !== 2) routed.get(client)?.shift()?.()
    published.call(aedes, packet, client, callback)
  }
}

/**
 * MQTT 3.1.1 §3.8.4: a message reaches a subscriber at the lower of its own QoS and the QoS granted
 * to the matching subscription. aedes looks the subscription up by the message's topic name, which
 * finds an exact filter but never a wildcard one: so a retained QoS 1 message reached a QoS 0
 * subscription to homeassistant/# at QoS 1 (the discovery listener's case). This hook lowers the
 * QoS to the highest granted by the client's filters that match the topic.
 */
export function deliverAtGrantedQoS(aedes: Aedes): void {
  const forward = aedes.authorizeForward
  aedes.authorizeForward = (client, packet) => {
    const toForward = forward.call(aedes, client, packet)
    if (!toForward || toForward.qos === 0) return toForward
    const { subscriptions } = client as Client & { subscriptions: Record<string, { qos: number }> }
    const granted = Math.max(0, ...Object.entries(subscriptions)
      .filter(([filter]) => topicMatches(filter, toForward.topic))
      .map(([, subscription]) => subscription.qos))
    return granted < toForward.qos ? { ...toForward, qos: granted as 0 | 1 } : toForward
  }
}
