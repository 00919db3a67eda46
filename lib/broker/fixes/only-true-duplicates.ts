// With a store on disk, only a true duplicate of a stored message is dropped.
// Keeps [MQTT-4.5.0-1] (§4.5 of MQTT 3.1.1 and of MQTT 5) with a store on disk too.
import type { Aedes, Client } from 'aedes'

/**
 * A message is delivered (at least once, at QoS 1: §4.3), even when another overtakes it on its
 * way. aedes numbers every message as it comes in, and drops, as a duplicate, any message whose
 * number is below the last one a client was sent. That only holds while messages leave in the order
 * they came: with a store on disk (--persist), a retained message waits for its write, and so does
 * a QoS 1 message queued for a session that is away; a message from another client passes it
 * meanwhile, and a subscriber of both lost the first one, every time (in memory, nothing passes:
 * writes take no time). What the filter is for, within one broker, is a message that matches two
 * filters of one client, which aedes would otherwise send twice; those copies reach the client one
 * right after the other. So aedes' filter is turned off, and a message is dropped only when it is
 * the very one the client was just sent.
 */
export function dropOnlyTrueDuplicates(aedes: Aedes): void {
  // aedes reads and writes a client's `duplicates` (left out of its types) for its filter: here it
  // reads nothing.
  const noFilter = new Proxy(
    {},
    { get: () => undefined, set: () => true, deleteProperty: () => true },
  )
  const handle = aedes.handle
  aedes.handle = (stream, request) => {
    const client = handle(stream, request)
    ;(client as Client & { duplicates: object }).duplicates = noFilter
    return client
  }
  // A message is known by the broker that numbered it and its number: on Redis, two brokers number
  // theirs alike (both count from 0), and a message of one was dropped as the other's duplicate.
  const lastSent = new WeakMap<Client, { brokerId: string; counter: number }>()
  const forward = aedes.authorizeForward
  aedes.authorizeForward = (client, packet) => {
    // Retained messages sent on SUBSCRIBE carry no broker id: aedes never filters them either.
    if (packet.brokerId) {
      const last = lastSent.get(client)
      if (last === undefined) {
        lastSent.set(client, { brokerId: packet.brokerId, counter: packet.brokerCounter })
      } else if (last.counter === packet.brokerCounter && last.brokerId === packet.brokerId) {
        return null
      } else {
        last.brokerId = packet.brokerId
        last.counter = packet.brokerCounter
      }
    }
    return forward.call(aedes, client, packet)
  }
}
