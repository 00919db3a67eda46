// MQTT 5: the Will Delay Interval is a property of the will, not of the PUBLISH that carries it out.
import type { Aedes } from 'aedes'
import type { IPublishPacket } from 'mqtt-packet'

/**
 * MQTT 5 §3.1.3.2.2 and §3.3.2.3: the Will Delay Interval is a will property, not a PUBLISH one, and
 * a PUBLISH that carries it is malformed (paho-mqtt drops the connection over it). aedes publishes
 * the will with all of its properties. authorizePublish sees every message, the will too, before
 * it is stored as retained or routed, so the property is taken out there; aedes has read it by then
 * to time the will.
 */
export function keepWillDelayOutOfPublish(aedes: Aedes): void {
  const authorize = aedes.authorizePublish
  aedes.authorizePublish = (client, packet, callback) => {
    if (packet.properties && 'willDelayInterval' in packet.properties) {
      const { willDelayInterval: _willOnly, ...publishProperties } = packet.properties as IPublishPacket['properties'] & { willDelayInterval?: number }
      packet.properties = publishProperties
    }
    authorize.call(aedes, client, packet, callback)
  }
}
