// MQTT 5: a client that sets a Maximum Packet Size gets no larger packet.
// Keeps MQTT 5 [MQTT-3.1.2-24] and [MQTT-3.1.2-25] (§3.1.2.11.4).
import type { Aedes } from 'aedes'
import mqttPacket, { type IPublishPacket } from 'mqtt-packet'

/**
 * A client that sets a Maximum Packet Size must get no larger packet; the broker leaves such a
 * message out for that client and carries on as if it had sent it. aedes stores the client's
 * maximum and sends whatever comes. authorizeForward sees each message on its way to a client,
 * live, retained or queued, and returning nothing there drops it as sent (aedes also takes it off a
 * persistent session's queue).
 */
export function sendNoPacketOverClientsMaximum(aedes: Aedes): void {
  const forward = aedes.authorizeForward
  aedes.authorizeForward = (client, packet) => {
    const toForward = forward.call(aedes, client, packet)
    // Only an MQTT 5 client can set one.
    const max = client.maximumPacketSize
    if (!toForward || max === undefined) return toForward
    return publishSize(toForward) > max ? null : toForward
  }
}

/**
 * The bytes of `packet` as aedes will write it to an MQTT 5 client: with a packet identifier at QoS
 * 1 and 2.
 */
function publishSize(packet: IPublishPacket): number {
  const { topic, payload, qos, properties } = packet
  if (properties)
    return mqttPacket.generate(
      { ...packet, cmd: 'publish', messageId: qos > 0 ? 1 : undefined },
      { protocolVersion: 5 },
    ).length
  // No properties: topic with its length, packet identifier, a zero properties length, payload.
  const remaining =
    2 + Buffer.byteLength(topic) + (qos > 0 ? 2 : 0) + 1 + Buffer.byteLength(payload)
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4
  return 1 + lengthBytes + remaining
}
