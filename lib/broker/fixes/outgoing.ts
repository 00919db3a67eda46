// How a fix changes a packet aedes is about to send one client (a CONNACK property, a topic alias)
// without reaching into aedes: aedes writes every packet with mqtt-packet's writeToStream, given
// the client's connection, on which aedes keeps the client.
import type { Client } from 'aedes'
// The default import is mqtt-packet's exports object, the one aedes calls writeToStream on, under
// tsx and in an esbuild bundle alike; a require() of its own would load a second copy in a bundle.
import mqttPacket, { type Packet } from 'mqtt-packet'

type Rewrite = (packet: Packet) => Packet
type Watch = (packet: Packet, stream: unknown) => void
const rewrites = new WeakMap<Client, Rewrite[]>()
let watch: Watch | undefined
let installed = false
/** Whether any client was given a rewrite: until one is, a write is not looked up for one. */
let rewriting = false

/**
 * One wrapper for the process, whoever asks first: the rewrites of each client, then the watcher,
 * so that what is watched is what goes on the wire, whichever was asked for first.
 */
function install(): void {
  if (installed) return
  installed = true
  // mqtt-packet is one module for every user in the process; clients that no fix asked for (MQTT.js
  // clients among them) pay one lookup per packet.
  const write = mqttPacket.writeToStream
  mqttPacket.writeToStream = Object.assign(
    ((packet, stream, options) => {
      let out = packet
      if (rewriting) {
        const changes = rewrites.get((stream as unknown as { client?: Client }).client as Client)
        if (changes) for (const change of changes) out = change(out)
      }
      watch?.(out, stream)
      return write(out, stream, options)
    }) as typeof write,
    write,
  )
}

/**
 * Hear every packet aedes writes, as it goes on the wire (after the rewrites): the packet record's
 * way in (../record.ts). One watcher per process.
 */
export function watchOutgoing(watcher: Watch): void {
  install()
  watch = watcher
}

/**
 * From now on, each packet aedes writes to `client` passes through `rewrite` first, which returns
 * it, or a changed copy (never the packet itself changed: aedes sends one to many clients).
 */
export function rewriteOutgoing(client: Client, rewrite: Rewrite): void {
  install()
  rewriting = true
  const list = rewrites.get(client)
  if (list) list.push(rewrite)
  else rewrites.set(client, [rewrite])
}
