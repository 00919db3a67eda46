// A maximum packet size for the bundled broker. aedes has none: a client that announces a 256 MB
// PUBLISH makes it buffer until the bytes arrive. This stands between a connection and aedes, follows
// the MQTT fixed header of each packet (type byte, then the remaining length, MQTT 3.1.1 §2.2.3), passes
// on every byte before the first packet that announces more than the limit, and closes the connection
// there: aedes never sees, nor buffers, a byte of the oversized packet's body.
import { Duplex, Transform } from 'node:stream'

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

  /** Follow `chunk`; returns how many of its bytes come before the first oversized packet (all of them if none). */
  feed(chunk: Buffer): number {
    let i = 0
    let packetStart = 0
    while (i < chunk.length && !this.tripped) {
      if (this.state === 'body') {
        const take = Math.min(this.left, chunk.length - i)
        this.left -= take
        i += take
        if (this.left === 0) this.state = 'type'
        continue
      }
      if (this.state === 'type') packetStart = i
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
        return packetStart
      }
      this.left = this.length
      this.state = this.left === 0 ? 'type' : 'body'
    }
    return this.tripped ? 0 : chunk.length
  }
}

/**
 * `stream` as aedes should see it: the same connection, whose incoming bytes stop before the first packet
 * over `max` bytes; then `closed` is told that packet's size and the connection is destroyed.
 */
export function withPacketSizeLimit(stream: Duplex, max: number, closed: (size: number) => void): Duplex {
  let oversized = 0
  const watcher = new PacketSizeWatcher(max, (size) => (oversized = size))
  const inbound = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      const allowed = watcher.feed(chunk)
      if (allowed === chunk.length && oversized === 0) return done(null, chunk)
      if (allowed > 0) this.push(chunk.subarray(0, allowed))
      done()
      closed(oversized)
      stream.destroy()
    },
  })
  stream.on('error', () => inbound.destroy())
  stream.pipe(inbound)
  return Duplex.from({ readable: inbound, writable: stream })
}
