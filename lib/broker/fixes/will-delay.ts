// MQTT 5: the Will Delay Interval is a property of the will, not of the PUBLISH that carries it
// out. Keeps MQTT 5 §3.1.3.2.2 and §2.2.2.2, which number no requirement for it.
import type { Aedes } from 'aedes'
import type { IPublishPacket } from 'mqtt-packet'

/**
 * The Will Delay Interval is a will property (§3.1.3.2.2), not a PUBLISH one (§3.3.2.3), and a
 * PUBLISH that carries it is malformed (§2.2.2.2): paho-mqtt drops the connection over it. aedes
 * publishes the will with all of its properties. authorizePublish sees every message, the will too,
 * before it is stored as retained or routed, so the property is taken out there; aedes has read it
 * by then to time the will.
 */
export function keepWillDelayOutOfPublish(aedes: Aedes): void {
  const authorize = aedes.authorizePublish
  aedes.authorizePublish = (client, packet, callback) => {
    if (packet.properties && 'willDelayInterval' in packet.properties) {
      const { willDelayInterval: _willOnly, ...publishProperties } =
        packet.properties as IPublishPacket['properties'] & { willDelayInterval?: number }
      packet.properties = publishProperties
    }
    authorize.call(aedes, client, packet, callback)
  }
}
