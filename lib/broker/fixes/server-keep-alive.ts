// The broker sets the keepalive of an MQTT 5 client that asks for none or for more than a minute.
// Keeps MQTT 5 §3.2.2.3.14 (Server Keep Alive) [MQTT-3.2.2-21] [MQTT-3.2.2-22].
import type { Aedes } from 'aedes'

/** The longest keepalive the broker lets an MQTT 5 client have, in seconds. */
export const SERVER_KEEP_ALIVE = 60

/**
 * A client that sends no PINGREQ (keepalive 0), or one every few minutes, holds a connection the
 * broker cannot tell from a dead one for that long. MQTT 5 lets the broker answer with a Server
 * Keep Alive in CONNACK, which the client must then use. aedes does so with its keepaliveLimit
 * option, which also refuses such an MQTT 3.1.1 client with a return code 3.1.1 does not have (6):
 * so the option stays off, and what aedes reads of it for an MQTT 5 client is set here, on the
 * client, before aedes handles its CONNECT. MQTT 3.1.1 clients keep what they asked for, as on
 * Mosquitto.
 */
export function imposeServerKeepAlive(aedes: Aedes): void {
  const preConnect = aedes.preConnect
  aedes.preConnect = (client, packet, callback) => {
    const asked = packet.keepalive ?? 0
    if (packet.protocolVersion === 5 && (asked === 0 || asked > SERVER_KEEP_ALIVE)) {
      // aedes puts `_serverKeepAlive` in the CONNACK and times the connection by it.
      ;(client as unknown as { _serverKeepAlive: number })._serverKeepAlive = SERVER_KEEP_ALIVE
    }
    preConnect.call(aedes, client, packet, callback)
  }
}
