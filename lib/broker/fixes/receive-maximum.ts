// Flow control for the bundled broker: keeps MQTT 5 [MQTT-3.3.4-9] and [MQTT-4.9.0-2] (§3.3.4,
// §4.9). A client that sets a Receive Maximum in its CONNECT (§3.1.2.11.3) must never have more
// QoS 1 and 2 messages from the broker unacknowledged than that. aedes reads the value and sends
// anyway. For such a client only, what aedes writes to the connection passes through a gate that
// follows the packets in the bytes and holds PUBLISH packets back while the client's quota is
// spent, releasing them, in order, as its PUBACKs and PUBCOMPs come in. Clients that set no
// Receive Maximum (most) keep aedes' own connection untouched.
import type { Duplex } from 'node:stream'
import type { Aedes, Client } from 'aedes'

/** The Receive Maximum a client that sets none has (MQTT 5 §3.1.2.11.3): no gate needed. */
const NO_LIMIT = 65_535

/** Give each client that asks for a Receive Maximum a gate on what aedes writes to it. */
export function keepWithinReceiveMaximum(aedes: Aedes): void {
  const gates = new WeakMap<Client, Gate>()
  const preConnect = aedes.preConnect
  aedes.preConnect = (client, packet, callback) => {
    const max = packet.protocolVersion === 5 ? packet.properties?.receiveMaximum : undefined
    // A Receive Maximum of 0 is a protocol error, which aedes answers itself.
    if (max !== undefined && max > 0 && max < NO_LIMIT) {
      // aedes writes every packet to `client.conn`, which its types leave read-only.
      const writable = client as unknown as { conn: Duplex }
      const gate = new Gate(writable.conn, max)
      gates.set(client, gate)
      writable.conn = gate.connection()
    }
    preConnect.call(aedes, client, packet, callback)
  }
  // aedes reports each PUBACK and PUBCOMP from a client as an 'ack': one message off its quota.
  aedes.on('ack', (_packet, client) => gates.get(client)?.acknowledged())
}

/**
 * Follows the packets in the bytes written to one connection and holds PUBLISHes back while the
 * quota is spent.
 */
class Gate {
  private inFlight = 0
  private readonly held: { bytes: Buffer; qos: number }[] = []
  /** Bytes of the packet being written, which mqtt-packet writes a field at a time. */
  private pending: Buffer = Buffer.alloc(0)

  private readonly conn: Duplex
  private readonly max: number

  constructor(conn: Duplex, max: number) {
    this.conn = conn
    this.max = max
  }

  /** `conn` as aedes should see it: the same stream, whose write goes through the gate. */
  connection(): Duplex {
    const write = (chunk: Buffer | string, ...rest: unknown[]) => {
      const done = rest.find(
        (arg): arg is (error?: Error | null) => void => typeof arg === 'function',
      )
      const flowing = this.take(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
      if (done) process.nextTick(done)
      return flowing
    }
    return new Proxy(this.conn, {
      get(target, property) {
        if (property === 'write') return write
        const value: unknown = Reflect.get(target, property, target)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
  }

  /** One of the client's messages is acknowledged: send what waited for it. */
  acknowledged(): void {
    this.inFlight = Math.max(0, this.inFlight - 1)
    while (this.held.length > 0 && (this.held[0].qos === 0 || this.inFlight < this.max)) {
      const { bytes, qos } = this.held.shift()!
      if (qos > 0) this.inFlight++
      this.conn.write(bytes)
    }
  }

  /**
   * Gather `chunk` into whole packets and pass each on or hold it; returns what the stream's write
   * would.
   */
  private take(chunk: Buffer): boolean {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
    let flowing = true
    for (
      let size = packetSize(this.pending);
      size !== undefined && size <= this.pending.length;
      size = packetSize(this.pending)
    ) {
      const packet = this.pending.subarray(0, size)
      this.pending = this.pending.subarray(size)
      flowing = this.pass(packet) && flowing
    }
    return flowing
  }

  private pass(packet: Buffer): boolean {
    // Control packets (SUBACK, PUBACK, PINGRESP...) are not counted and need not wait.
    if (packet[0] >> 4 !== 3) return this.conn.write(packet)
    const qos = (packet[0] >> 1) & 3
    // A PUBLISH waits behind those held before it, so that messages keep their order
    // ([MQTT-4.6.0-5]: §4.6).
    if (this.held.length > 0 || (qos > 0 && this.inFlight >= this.max)) {
      this.held.push({ bytes: Buffer.from(packet), qos })
      return true
    }
    if (qos > 0) this.inFlight++
    return this.conn.write(packet)
  }
}

/**
 * The whole size of the packet that `bytes` starts with, once its fixed header is there (MQTT 5
 * §2.1.4).
 */
function packetSize(bytes: Buffer): number | undefined {
  let length = 0
  for (let i = 1, multiplier = 1; i < bytes.length && i <= 4; i++, multiplier *= 128) {
    length += (bytes[i] & 0x7f) * multiplier
    if ((bytes[i] & 0x80) === 0) return 1 + i + length
  }
  return undefined
}
