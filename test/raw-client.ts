// A client that speaks MQTT packet by packet, for tests of what a broker does with packets a proper
// client library would never send, and of exactly which packets and flags a broker sends back.
// Packets are built and parsed with mqtt-packet, not by hand.
import { connect as tcpConnect, type Socket } from 'node:net'
import mqttPacket, { type IConnackPacket, type IConnectPacket, type IPublishPacket, type Packet, type QoS } from 'mqtt-packet'
import { HUNG_MS, seconds, Waiter } from '../lib/waiter.ts'

export interface ConnectOptions {
  /** Client identifier; '' asks the broker to assign one (MQTT 3.1.1 §3.1.3.1). Default: a random one. */
  clientId?: string
  /** CleanSession flag; default true. */
  clean?: boolean
  will?: IConnectPacket['will']
}

export class RawClient {
  private readonly received: Packet[] = []
  private readonly packets = new Waiter()
  private lastMessageId = 0
  /** Answer every QoS 1 PUBLISH from the broker with its PUBACK, as a client library would. */
  autoAck = false

  private constructor(readonly socket: Socket) {
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    parser.on('packet', (packet) => {
      if (this.autoAck && packet.cmd === 'publish' && packet.qos === 1) this.send({ cmd: 'puback', messageId: packet.messageId })
      this.received.push(packet)
      this.packets.arrived()
    })
    socket.on('data', (chunk) => parser.parse(chunk))
    socket.on('close', () => this.packets.end('closed'))
    socket.on('error', () => undefined)
  }

  /** Open a TCP connection to `url` (mqtt://host:port); nothing is sent yet. */
  static open(url: string): Promise<RawClient> {
    const { hostname, port } = new URL(url)
    return new Promise((resolve, reject) => {
      // No Nagle: a test sends small packets and waits for the answer to each.
      const socket = tcpConnect({ port: Number(port), host: hostname, noDelay: true }, () => resolve(new RawClient(socket)))
      socket.once('error', reject)
    })
  }

  /** Open, send CONNECT (MQTT 3.1.1, clean session) and await the CONNACK. */
  static async connected(url: string, clientId = randomClientId()): Promise<RawClient> {
    const { client, connack } = await RawClient.connect(url, { clientId })
    if (connack.returnCode !== 0) throw new Error(`CONNECT refused: ${JSON.stringify(connack)}`)
    return client
  }

  /**
   * Open, send CONNECT (MQTT 3.1.1) with the given id, CleanSession flag and will, and await the
   * CONNACK, whatever its return code; QoS 1 messages from the broker are acknowledged.
   */
  static async connect(url: string, options: ConnectOptions = {}): Promise<{ client: RawClient; connack: IConnackPacket }> {
    const client = await RawClient.open(url)
    client.autoAck = true
    client.write(connectBytes({
      cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, keepalive: 0,
      clean: options.clean ?? true, clientId: options.clientId ?? randomClientId(), will: options.will,
    }))
    return { client, connack: await client.next('connack') }
  }

  /** SUBSCRIBE to `filters` in one packet and await the SUBACK; returns the QoS granted for each. */
  async subscribe(filters: string[], qos: QoS = 0): Promise<number[]> {
    const messageId = this.nextMessageId()
    this.send({ cmd: 'subscribe', messageId, subscriptions: filters.map((topic) => ({ topic, qos })) })
    const suback = await this.next('suback')
    if (suback.messageId !== messageId) throw new Error(`SUBACK for packet ${suback.messageId}, expected ${messageId}`)
    return suback.granted as number[]
  }

  /** PUBLISH; at QoS 1, await the PUBACK that carries its packet identifier. */
  async publish(topic: string, payload: string, options: { qos?: 0 | 1; retain?: boolean } = {}): Promise<void> {
    this.send(this.publishPacket(topic, payload, options))
    if (options.qos === 1) {
      const messageId = this.lastMessageId
      const puback = await this.next('puback')
      if (puback.messageId !== messageId) throw new Error(`PUBACK for packet ${puback.messageId}, expected ${messageId}`)
    }
  }

  /** A PUBLISH packet (with a fresh packet identifier at QoS 1), to send now or later in a burst. */
  publishPacket(topic: string, payload: string, { qos = 0, retain = false }: { qos?: 0 | 1; retain?: boolean } = {}): IPublishPacket {
    const packet: IPublishPacket = { cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain, dup: false }
    if (qos > 0) packet.messageId = this.nextMessageId()
    return packet
  }

  /** Several packets in one TCP write, so that the broker reads them back to back. */
  sendAll(packets: Packet[]): void {
    this.socket.write(Buffer.concat(packets.map((p) => mqttPacket.generate(p))))
  }

  /**
   * Await the PUBLISH whose payload is `marker` and return, in order, the PUBLISH packets received
   * before it that nobody consumed yet: with a broker that keeps order, everything that was going to
   * arrive before the marker did.
   */
  async publishesBefore(marker: string, timeoutMs = HUNG_MS): Promise<IPublishPacket[]> {
    await this.waitUntil(`the marker ${JSON.stringify(marker)}`, timeoutMs, true,
      () => this.received.some((p) => p.cmd === 'publish' && String(p.payload) === marker) || undefined)
    const publishes = this.received.filter((p): p is IPublishPacket => p.cmd === 'publish')
    const at = publishes.findIndex((p) => String(p.payload) === marker)
    const taken = new Set<Packet>(publishes.slice(0, at + 1))
    this.received.splice(0, this.received.length, ...this.received.filter((p) => !taken.has(p)))
    return publishes.slice(0, at)
  }

  /** Send DISCONNECT and await the broker closing the connection. */
  async disconnect(): Promise<void> {
    this.send({ cmd: 'disconnect' })
    await this.closed()
  }

  private nextMessageId(): number {
    this.lastMessageId = (this.lastMessageId % 65535) + 1
    return this.lastMessageId
  }

  send(packet: Packet): void {
    this.socket.write(mqttPacket.generate(packet))
  }

  /** Send raw bytes, well-formed or not. */
  write(bytes: Buffer): void {
    this.socket.write(bytes)
  }

  /** Resolve with the first not yet consumed packet of type `cmd`; rejects if the connection closes first. */
  next<C extends Packet['cmd']>(cmd: C, timeoutMs = HUNG_MS): Promise<Extract<Packet, { cmd: C }>> {
    return this.waitUntil(`a ${cmd.toUpperCase()}`, timeoutMs, true, () => {
      const at = this.received.findIndex((p) => p.cmd === cmd)
      return at >= 0 ? (this.received.splice(at, 1)[0] as Extract<Packet, { cmd: C }>) : undefined
    })
  }

  /** Resolve once the broker has closed the connection; returns the packets it sent and nobody consumed. */
  closed(timeoutMs = HUNG_MS): Promise<Packet[]> {
    return this.waitUntil('the broker closing the connection', timeoutMs, false,
      () => (this.packets.ended ? this.received.splice(0) : undefined))
  }

  /**
   * Resolve with what `found` returns once it returns something, checked on every packet; reject,
   * naming what was awaited, after `timeoutMs`, or when the connection closes first if `failOnClose`.
   */
  private waitUntil<T>(awaited: string, timeoutMs: number, failOnClose: boolean, found: () => T | undefined): Promise<T> {
    return this.packets.until(found, {
      timeoutMs,
      timedOut: (ms) => new Error(`waited ${seconds(ms)} for ${awaited}`),
      ended: failOnClose ? () => new Error(`the connection closed before ${awaited} arrived`) : undefined,
    })
  }

  end(): void {
    this.socket.destroy()
  }
}

function randomClientId(): string {
  return `raw-${process.pid}-${Math.random().toString(16).slice(2, 8)}`
}

/**
 * The bytes of a CONNECT. mqtt-packet refuses to build one with a zero-length client id and
 * CleanSession 0, which a client must not send (MQTT 3.1.1 §3.1.3.1) and a broker must refuse: so
 * build it with a one-byte id and cut that byte out.
 */
function connectBytes(packet: IConnectPacket): Buffer {
  if (packet.clientId !== '' || packet.clean) return mqttPacket.generate(packet)
  const bytes = mqttPacket.generate({ ...packet, clientId: 'x' })
  // Fixed header (type, then the remaining length in one byte below 128), the 10-byte variable
  // header of MQTT 3.1.1, then the payload, which starts with the client id: length 00 01, then "x".
  if (bytes[1] >= 128 || bytes.readUInt16BE(12) !== 1) throw new Error('cannot build a CONNECT this long with an empty client id')
  return Buffer.concat([Buffer.from([bytes[0], bytes[1] - 1]), bytes.subarray(2, 12), Buffer.from([0, 0]), bytes.subarray(15)])
}
