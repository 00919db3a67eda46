// A maximum packet size for the bundled broker. aedes has none: a client that announces a 256 MB
// PUBLISH makes it buffer until the bytes arrive. This watches the bytes as aedes reads them, follows
// the MQTT fixed header of each packet (type byte, then the remaining length, MQTT 3.1.1 §2.2.3), and
// closes the connection as soon as a packet announces more than the limit, before its body is buffered.
import type { Duplex } from 'node:stream'

/** Bytes a remaining-length field can announce at most: four bytes of seven bits (MQTT 3.1.1 §2.2.3). */
export const MQTT_MAX_REMAINING_LENGTH = 268_435_455

/**
 * Follow the packet boundaries in a byte stream, chunk by chunk; `tooLarge` is called once, with the
 * whole packet's size, for the first packet that announces more than `max` bytes.
 */
export class PacketSizeWatcher {
  private state: 'type' | 'length' | 'body' = 'type'
  private length = 0
  private multiplier = 1
  private headerBytes = 0
  private left = 0
  private tripped = false

  constructor(private readonly max: number, private readonly tooLarge: (size: number) => void) {}

  feed(chunk: Buffer): void {
    let i = 0
    while (i < chunk.length && !this.tripped) {
      if (this.state === 'body') {
        const take = Math.min(this.left, chunk.length - i)
        this.left -= take
        i += take
        if (this.left === 0) this.state = 'type'
        continue
      }
      const byte = chunk[i++]
      if (this.state === 'type') {
        this.state = 'length'
        this.length = 0
        this.multiplier = 1
        this.headerBytes = 1
        continue
      }
      this.length += (byte & 0x7f) * this.multiplier
      this.multiplier *= 128
      this.headerBytes++
      // A fifth length byte is malformed; aedes' parser rejects it, so stop following this stream.
      if (byte & 0x80 && this.headerBytes <= 4) continue
      const size = this.headerBytes + this.length
      if (size > this.max) {
        this.tripped = true
        this.tooLarge(size)
        return
      }
      this.left = this.length
      this.state = this.left === 0 ? 'type' : 'body'
    }
  }
}

/**
 * Watch what aedes reads from `stream` (a 'data' listener sees every chunk that read() returns, and
 * leaves the 'readable' flow aedes uses in charge) and destroy it when a packet is over `max` bytes.
 */
export function limitPacketSize(stream: Duplex, max: number, closed: (size: number) => void): void {
  const watcher = new PacketSizeWatcher(max, (size) => {
    closed(size)
    stream.destroy()
  })
  stream.on('data', (chunk: Buffer) => watcher.feed(chunk))
}
