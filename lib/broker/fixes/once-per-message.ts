// A message that matches several of a client's subscriptions reaches it once.
// Keeps MQTT 5 [MQTT-3.3.4-2], [MQTT-3.3.4-3] and [MQTT-3.3.4-4] (§3.3.4), and MQTT 3.1.1
// [MQTT-3.3.5-1] (§3.3.5).
import type { Aedes } from 'aedes'
import { topicMatches } from '../../topics.ts'
import { filterOf, internalsOf, type ClientInternals } from './aedes-internals.ts'

/**
 * A message that matches several subscriptions of one client reaches it at the highest QoS they
 * grant, and, in MQTT 5, one copy carries the Subscription Identifier of each. aedes delivers
 * through whichever matching subscription comes first and drops the rest as duplicates, so
 * subscribed to home/# at QoS 0 and to home/light at QoS 1, a client could get a QoS 1 message on
 * home/light at QoS 0, with home/#'s identifier only. Here, once a client connects (preConnect,
 * before aedes restores its subscriptions, which take its delivery functions), its QoS 0 delivery
 * hands a QoS 1 or 2 message on to the QoS delivery when another matching subscription grants more
 * (which deliverAtGrantedQoS brings down to the highest granted); authorizeForward then puts every
 * matching identifier on the message. A message sent to a new subscription as retained is left with
 * that subscription's identifier alone: no other brought it.
 */
export function deliverOnceForAllMatchingSubscriptions(aedes: Aedes): void {
  // Counted without building a list: this runs for each message a client is sent.
  const several = (subscriptions: object) => {
    let count = 0
    for (const _filter in subscriptions) if (++count > 1) return true
    return false
  }
  const matching = (client: ClientInternals, topic: string) =>
    Object.entries(client.subscriptions)
      .filter(([filter]) => topicMatches(filterOf(filter), topic))
      .map(([, subscription]) => subscription)
  const preConnect = aedes.preConnect
  aedes.preConnect = (client, packet, callback) => {
    const internals = internalsOf(client)
    const { deliver0, deliverQoS } = internals
    internals.deliver0 = (message, done) => {
      if (
        message.qos > 0 &&
        several(internals.subscriptions) &&
        matching(internals, message.topic).some((s) => s.qos > 0)
      ) {
        return deliverQoS(message, done)
      }
      deliver0(message, done)
    }
    preConnect.call(aedes, client, packet, callback)
  }
  const forward = aedes.authorizeForward
  aedes.authorizeForward = (client, packet) => {
    const toForward = forward.call(aedes, client, packet)
    const { subscriptions } = internalsOf(client)
    // aedes marks a retained message sent at SUBSCRIBE by taking its broker id away.
    if (
      !toForward ||
      client.version !== 5 ||
      !several(subscriptions) ||
      toForward.brokerId === null
    )
      return toForward
    const identifiers = matching(internalsOf(client), toForward.topic).flatMap((s) =>
      s.si === undefined ? [] : [s.si],
    )
    if (identifiers.length < 2) return toForward
    return {
      ...toForward,
      properties: { ...toForward.properties, subscriptionIdentifier: identifiers },
    }
  }
}
