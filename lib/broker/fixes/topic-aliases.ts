// The broker sends a topic once, then a two-byte alias for it, to an MQTT 5 client that accepts
// aliases. Uses MQTT 5 §3.3.2.3.4 (Topic Alias), within [MQTT-3.1.2-26] [MQTT-3.3.2-9]: never
// more aliases than the client's Topic Alias Maximum, none to a client that gives none.
import type { Aedes } from 'aedes'
import type { IPublishPacket, Packet } from 'mqtt-packet'
import { rewriteOutgoing } from './outgoing.ts'

/**
 * A device that reports to the same topic all day is sent the topic name with every message. A
 * client that says in CONNECT it accepts topic aliases (Topic Alias Maximum above 0) is sent each
 * new topic once, with an alias, and then the alias alone, with an empty topic name: the first
 * topics, up to the client's maximum, keep their alias for the connection; later ones go by name.
 * aedes takes aliases from clients but never gives any (its PR #1117 is open). The wire show
 * prints the bytes this saves.
 */
export function assignTopicAliases(aedes: Aedes): void {
  const preConnect = aedes.preConnect
  aedes.preConnect = (client, packet, callback) => {
    const maximum = packet.protocolVersion === 5 ? (packet.properties?.topicAliasMaximum ?? 0) : 0
    if (maximum > 0) {
      const aliases = new Map<string, number>()
      rewriteOutgoing(client, (out: Packet) => {
        if (out.cmd !== 'publish' || out.topic === '') return out
        const message = out as IPublishPacket
        let alias = aliases.get(message.topic)
        if (alias !== undefined) {
          return { ...message, topic: '', properties: { ...message.properties, topicAlias: alias } }
        }
        if (aliases.size >= maximum) return out
        alias = aliases.size + 1
        aliases.set(message.topic, alias)
        return { ...message, properties: { ...message.properties, topicAlias: alias } }
      })
    }
    preConnect.call(aedes, client, packet, callback)
  }
}
