// The bundled broker's MQTT 5 fixes: where aedes 2.0.0-beta.1 departs from MQTT 5 in a way that a
// demo or a common client meets, an option or a hook here puts it right. Each has a rule in
// test/conformance5.test.ts that fails on aedes alone; the departures left are listed, with their
// sections, in docs/conformance.md.
import type { Aedes, AedesOptions, Client } from 'aedes'
import mqttPacket, { type IPublishPacket } from 'mqtt-packet'
import { keepWithinReceiveMaximum } from './receive-maximum.ts'
import { topicMatches } from './topics.ts'

/**
 * MQTT 5 §3.2.2.3.8: a client may use topic aliases only up to the Topic Alias Maximum the broker
 * announces in CONNACK, and aedes announces none unless told, so a client that aliases its topics
 * (MQTT.js can do it by itself) is cut off with DISCONNECT 0x94. Ten per connection, as Mosquitto.
 */
export const mqtt5Options: AedesOptions = { topicAliasMaximum: 10 }

/** Put aedes' MQTT 5 departures right on `aedes`; call it once, after the broker's other hooks. */
export function fixMqtt5(aedes: Aedes): void {
  keepWillDelayOutOfPublish(aedes)
  deliverQueueOfResumedSession(aedes)
  deliverOnceForAllMatchingSubscriptions(aedes)
  sendNoPacketOverClientsMaximum(aedes)
  keepWithinReceiveMaximum(aedes)
}

/**
 * MQTT 5 §3.1.3.2.2 and §3.3.2.3: the Will Delay Interval is a will property, not a PUBLISH one, and
 * a PUBLISH that carries it is malformed (paho-mqtt drops the connection over it). aedes publishes
 * the will with all of its properties. authorizePublish sees every message, the will too, before
 * it is stored as retained or routed, so the property is taken out there; aedes has read it by then
 * to time the will.
 */
function keepWillDelayOutOfPublish(aedes: Aedes): void {
  const authorize = aedes.authorizePublish
  aedes.authorizePublish = (client, packet, callback) => {
    if (packet.properties && 'willDelayInterval' in packet.properties) {
      const { willDelayInterval: _willOnly, ...publishProperties } = packet.properties as IPublishPacket['properties'] & { willDelayInterval?: number }
      packet.properties = publishProperties
    }
    authorize.call(aedes, client, packet, callback)
  }
}

/**
 * MQTT 5 §3.1.2.4, §3.1.2.11.2: Clean Start 0 resumes a kept session whole, whatever Session Expiry
 * Interval the new CONNECT asks for; the interval only says how long the session outlives this
 * connection. aedes takes an interval of 0 for a clean session from the CONNECT on, and so, once it
 * has said session present, drops the QoS 1 and 2 messages queued in it instead of sending them (a
 * client that comes back "for the last time" with --session-expiry 0 loses them). Here the client
 * counts as keeping its session from its CONNACK until aedes has sent the queue and calls it ready;
 * its session still ends with the connection.
 */
function deliverQueueOfResumedSession(aedes: Aedes): void {
  type Resumable = Client & { clean: boolean; _cleanStart?: boolean; sessionExpiryInterval?: number }
  const resuming = new WeakSet<Client>()
  aedes.on('connackSent', (connack, client) => {
    const c = client as Resumable
    if (c.version !== 5 || !connack.sessionPresent || c._cleanStart || !c.clean) return
    c.clean = false
    resuming.add(client)
  })
  aedes.on('clientReady', (client) => {
    if (!resuming.delete(client)) return
    ;(client as Resumable).clean = true
  })
}

type Deliver = (packet: IPublishPacket, done: () => void) => void

/** What aedes keeps on a client and its types leave out: its filters, and how it sends a message at QoS 0 and above. */
interface ClientInternals {
  subscriptions: Record<string, { qos: number; si?: number }>
  deliver0: Deliver
  deliverQoS: Deliver
}

/**
 * MQTT 5 §3.3.4 (3.1.1 §3.3.5 says the first half too): a message that matches several subscriptions
 * of one client reaches it at the highest QoS they grant, and one copy carries the Subscription
 * Identifier of each. aedes delivers through whichever matching subscription comes first and drops
 * the rest as duplicates, so subscribed to home/# at QoS 0 and to home/light at QoS 1, a client
 * could get a QoS 1 message on home/light at QoS 0, with home/#'s identifier only. Here, once a
 * client connects (preConnect, before aedes restores its subscriptions, which take its delivery
 * functions), its QoS 0 delivery hands a QoS 1 or 2 message on to the QoS delivery when another
 * matching subscription grants more (which deliverAtGrantedQoS brings down to the highest granted);
 * authorizeForward then puts every matching identifier on the message. A message sent to a new
 * subscription as retained is left with that subscription's identifier alone: no other brought it.
 */
function deliverOnceForAllMatchingSubscriptions(aedes: Aedes): void {
  // Counted without building a list: this runs for each message a client is sent.
  const several = (subscriptions: object) => {
    let count = 0
    for (const _filter in subscriptions) if (++count > 1) return true
    return false
  }
  const matching = (client: ClientInternals, topic: string) => Object.entries(client.subscriptions)
    .filter(([filter]) => topicMatches(filter, topic)).map(([, subscription]) => subscription)
  const preConnect = aedes.preConnect
  aedes.preConnect = (client, packet, callback) => {
    const internals = client as Client & ClientInternals
    const { deliver0, deliverQoS } = internals
    internals.deliver0 = (message, done) => {
      if (message.qos > 0 && several(internals.subscriptions) && matching(internals, message.topic).some((s) => s.qos > 0)) {
        return deliverQoS(message, done)
      }
      deliver0(message, done)
    }
    preConnect.call(aedes, client, packet, callback)
  }
  const forward = aedes.authorizeForward
  aedes.authorizeForward = (client, packet) => {
    const toForward = forward.call(aedes, client, packet)
    const { subscriptions } = client as Client & ClientInternals
    // aedes marks a retained message sent at SUBSCRIBE by taking its broker id away.
    if (!toForward || client.version !== 5 || !several(subscriptions) || toForward.brokerId === null) return toForward
    const identifiers = matching(client as Client & ClientInternals, toForward.topic).flatMap((s) => (s.si === undefined ? [] : [s.si]))
    if (identifiers.length < 2) return toForward
    return { ...toForward, properties: { ...toForward.properties, subscriptionIdentifier: identifiers } }
  }
}

/**
 * MQTT 5 §3.1.2.11.4: a client that sets a Maximum Packet Size must get no larger packet; the broker
 * leaves such a message out for that client and carries on as if it had sent it. aedes stores the
 * client's maximum and sends whatever comes. authorizeForward sees each message on its way to a
 * client, live, retained or queued, and returning nothing there drops it as sent (aedes also takes
 * it off a persistent session's queue).
 */
function sendNoPacketOverClientsMaximum(aedes: Aedes): void {
  const forward = aedes.authorizeForward
  aedes.authorizeForward = (client, packet) => {
    const toForward = forward.call(aedes, client, packet)
    // Only an MQTT 5 client can set one.
    const max = client.maximumPacketSize
    if (!toForward || max === undefined) return toForward
    return publishSize(toForward) > max ? null : toForward
  }
}

/** The bytes of `packet` as aedes will write it to an MQTT 5 client: with a packet identifier at QoS 1 and 2. */
function publishSize(packet: IPublishPacket): number {
  const { topic, payload, qos, properties } = packet
  if (properties) return mqttPacket.generate({ ...packet, cmd: 'publish', messageId: qos > 0 ? 1 : undefined }, { protocolVersion: 5 }).length
  // No properties: topic with its length, packet identifier, a zero properties length, payload.
  const remaining = 2 + Buffer.byteLength(topic) + (qos > 0 ? 2 : 0) + 1 + Buffer.byteLength(payload)
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4
  return 1 + lengthBytes + remaining
}
