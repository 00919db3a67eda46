// One client's messages are handled in the order it sent them.
// Keeps [MQTT-4.6.0-6] of MQTT 3.1.1 and [MQTT-4.6.0-5] of MQTT 5 (§4.6).
import type { Aedes, Client } from 'aedes'

/**
 * Messages from one client on a topic reach subscribers in the order they were sent. aedes stores a
 * retained message before routing it, asynchronously, so a publish that follows at once overtakes
 * it; aedes' duplicate filter then drops the overtaken message as already seen. So a subscriber of
 * a topic that got "on" (retained) then "off" saw only "off". Here a client's publishes that follow
 * a retained one wait until it has been routed (aedes calls `published` last, with the very packet
 * the client sent), then go on in the order they came. Any other publish is routed at once, in
 * order, by aedes itself. QoS 2 is left alone: aedes does not route a retransmitted QoS 2 message
 * again, so it would wait forever.
 */
export function keepEachClientsPublishesInOrder(aedes: Aedes): void {
  /**
   * Per client, only while one of its retained messages is being stored: that message, and what
   * waits behind it.
   */
  const lanes = new WeakMap<Client, { storing?: object; waiting: (() => void)[] }>()
  const routed = (client: Client, packet: object) => {
    const lane = lanes.get(client)
    if (lane?.storing !== packet) return
    lane.storing = undefined
    while (!lane.storing && lane.waiting.length > 0) lane.waiting.shift()!()
    if (!lane.storing && lane.waiting.length === 0 && lanes.get(client) === lane)
      lanes.delete(client)
  }
  const authorize = aedes.authorizePublish
  aedes.authorizePublish = (client, packet, callback) => {
    const lane = client && lanes.get(client)
    if (!client || packet.qos === 2 || (!lane && !packet.retain))
      return authorize.call(aedes, client, packet, callback)
    const go = () => {
      if (packet.retain) {
        const current = lanes.get(client) ?? { waiting: [] }
        current.storing = packet
        lanes.set(client, current)
      }
      authorize.call(aedes, client, packet, (error) => {
        // Refused: it will never be routed, so it holds nothing back.
        if (error) routed(client, packet)
        callback(error)
      })
    }
    if (lane) lane.waiting.push(go)
    else go()
  }
  const published = aedes.published
  aedes.published = (packet, client, callback) => {
    if (client && packet.retain) routed(client, packet)
    published.call(aedes, packet, client, callback)
  }
}
