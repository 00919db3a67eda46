// A resumed session's queued messages go out before anything live.
// Keeps [MQTT-4.6.0-6] of MQTT 3.1.1 and [MQTT-4.6.0-5] of MQTT 5 (§4.6).
import type { Aedes, Client } from 'aedes'
import { internalsOf } from './aedes-internals.ts'

/**
 * A client's messages on a topic reach a subscriber in the order it sent them, and a session that
 * was away is no exception. When it comes back, aedes restores its subscriptions (so live messages
 * flow again) and only then sends what was queued for it, one message at a time from its store: a
 * device that kept publishing had its new messages delivered between its older ones. Here, for a
 * client that resumes a session (Clean Session 0; Clean Start 0 in MQTT 5), live messages wait
 * until aedes has sent the queue ('clientReady'), then go on in the order they came. A client that
 * starts clean has no queue and is left alone, at no cost. (From Redis each queued message takes
 * round trips, so there a burst queued for a session reached it with a later message in the middle,
 * every time.)
 */
export function deliverQueuedBeforeLive(aedes: Aedes): void {
  const releases = new WeakMap<Client, () => void>()
  aedes.on('clientReady', (client) => releases.get(client)?.())
  const preConnect = aedes.preConnect
  aedes.preConnect = (client, packet, callback) => {
    if (packet.clean === false) {
      // aedes subscribes each filter with the client's delivery at QoS 0 or above (left out of its
      // types), once it has restored the session: wrapped before that, they see every live message.
      const internals = internalsOf(client)
      const held: (() => void)[] = []
      let queueSent = false
      for (const name of ['deliver0', 'deliverQoS'] as const) {
        const deliver = internals[name]
        internals[name] = (message, done) => {
          if (queueSent) return deliver(message, done)
          held.push(() => deliver(message, () => undefined))
          // Taken now, as aedes takes a message it has yet to write, so that routing goes on for
          // everyone else meanwhile: from Redis a long queue takes many round trips.
          setImmediate(done)
        }
      }
      const release = () => {
        releases.delete(client)
        queueSent = true
        for (const deliver of held.splice(0)) deliver()
      }
      releases.set(client, release)
      // A connection lost before it is ready: what waited is handed to aedes, which drops it as for
      // any closed client.
      client.conn.once('close', release)
    }
    preConnect.call(aedes, client, packet, callback)
  }
}
