// Each message goes to a subscriber at the QoS it was granted, not above.
// Keeps [MQTT-3.8.4-6] of MQTT 3.1.1 and [MQTT-3.8.4-8] of MQTT 5 (§3.8.4).
import type { Aedes, Client } from 'aedes'
import { topicMatches } from '../../topics.ts'
import { filterOf, subscriptionsOf } from './aedes-internals.ts'

/**
 * A message reaches a subscriber at the lower of its own QoS and the QoS granted to the matching
 * subscription. aedes looks the subscription up by the message's topic name, which finds an exact
 * filter but never a wildcard one: so a retained QoS 1 message reached a QoS 0 subscription to
 * homeassistant/# at QoS 1 (the discovery listener's case). This hook lowers the QoS to the highest
 * granted by the client's filters that match the topic. Most clients hold no subscription granted
 * below the message's QoS, which is known from the lowest QoS they were granted, kept per client
 * until it subscribes or unsubscribes again: they pay one lookup per message.
 */
export function deliverAtGrantedQoS(aedes: Aedes): void {
  const lowestGranted = new WeakMap<Client, number>()
  const forget = (_subscriptions: unknown, client: Client) => lowestGranted.delete(client)
  aedes.on('subscribe', forget)
  aedes.on('unsubscribe', forget)
  const lowest = (client: Client) => {
    let qos = lowestGranted.get(client)
    if (qos === undefined) {
      qos = Math.min(
        2,
        ...Object.values(subscriptionsOf(client)).map((subscription) => subscription.qos),
      )
      lowestGranted.set(client, qos)
    }
    return qos
  }
  const forward = aedes.authorizeForward
  aedes.authorizeForward = (client, packet) => {
    const toForward = forward.call(aedes, client, packet)
    if (!toForward || toForward.qos === 0 || lowest(client) >= toForward.qos) return toForward
    const granted = Math.max(
      0,
      ...Object.entries(subscriptionsOf(client))
        .filter(([filter]) => topicMatches(filterOf(filter), toForward.topic))
        .map(([, subscription]) => subscription.qos),
    )
    return granted < toForward.qos ? { ...toForward, qos: granted as 0 | 1 } : toForward
  }
}
