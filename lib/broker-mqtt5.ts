// The bundled broker's MQTT 5 fixes: where aedes 2.0.0-beta.1 departs from MQTT 5 in a way that a
// demo or a common client meets, an option or a hook here puts it right. Each has a rule in
// test/conformance5.test.ts that fails on aedes alone; the departures left are listed, with their
// sections, in docs/conformance.md.
import type { Aedes, AedesOptions } from 'aedes'
import mqttPacket, { type IPublishPacket } from 'mqtt-packet'

/**
 * MQTT 5 §3.2.2.3.8: a client may use topic aliases only up to the Topic Alias Maximum the broker
 * announces in CONNACK, and aedes announces none unless told, so a client that aliases its topics
 * (MQTT.js can do it by itself) is cut off with DISCONNECT 0x94. Ten per connection, as Mosquitto.
 */
export const mqtt5Options: AedesOptions = { topicAliasMaximum: 10 }

/** Put aedes' MQTT 5 departures right on `aedes`; call it once, after the broker's other hooks. */
export function fixMqtt5(aedes: Aedes): void {
  keepWillDelayOutOfPublish(aedes)
  sendNoPacketOverClientsMaximum(aedes)
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
