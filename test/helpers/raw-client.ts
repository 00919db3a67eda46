// A client that speaks MQTT (3.1.1 or 5) packet by packet, for tests of what a broker does with
// packets a proper client library would never send, and of exactly which packets, flags and
// properties a broker sends back. Packets are built and parsed with mqtt-packet, not by hand.
import { connect as tcpConnect, type Socket } from 'node:net'
import mqttPacket, {
  type IConnackPacket,
  type IConnectPacket,
  type IPublishPacket,
  type ISubscribePacket,
  type ISubscription,
  type Packet,
  type QoS,
} from 'mqtt-packet'

/** 4 is MQTT 3.1.1, 5 is MQTT 5. */
export type ProtocolVersion = 4 | 5
import { HUNG_MS, inSeconds, Waiter } from '../../scenarios/stage/waiter.ts'

export interface ConnectOptions {
  /**
   * MQTT 3.1.1 (4, the default) or MQTT 5 (5): how every packet of the connection is built and
   * read.
   */
  protocolVersion?: ProtocolVersion
  /** Client identifier; '' asks the broker to assign one ([MQTT-3.1.3-6]); default a random one. */
  clientId?: string
  /** CleanSession flag (Clean Start in MQTT 5); default true. */
  clean?: boolean
  /** Keep Alive, in seconds; default 0, none. */
  keepalive?: number
  will?: IConnectPacket['will']
  /** MQTT 5 CONNECT properties: Session Expiry Interval, Maximum Packet Size... */
  properties?: IConnectPacket['properties']
}

/** A PUBLISH's options; `properties` are MQTT 5's (user properties, Message Expiry Interval...). */
export interface PublishOptions {
  qos?: 0 | 1
  retain?: boolean
  properties?: IPublishPacket['properties']
}

/**
 * The CONNACK's verdict whatever the version: 3.1.1's return code or MQTT 5's reason code, 0 for
 * accepted.
 */
export function connackCode(connack: IConnackPacket): number {
  return connack.reasonCode ?? connack.returnCode ?? 0
}

export class RawClient {
  private readonly received: Packet[] = []
  private readonly packets = new Waiter()
  private lastMessageId = 0
  /** Answer every QoS 1 PUBLISH from the broker with its PUBACK, as a client library would. */
  autoAck = false

  private readonly generateOptions: { protocolVersion: ProtocolVersion }

  readonly socket: Socket
  readonly protocolVersion: ProtocolVersion

  private constructor(socket: Socket, protocolVersion: ProtocolVersion) {
    this.socket = socket
    this.protocolVersion = protocolVersion
    this.generateOptions = { protocolVersion }
    const parser = mqttPacket.parser({ protocolVersion })
    parser.on('packet', (packet) => {
      if (this.autoAck && packet.cmd === 'publish' && packet.qos === 1)
        this.send({ cmd: 'puback', messageId: packet.messageId })
      this.received.push(packet)
      this.packets.arrived()
    })
    socket.on('data', (chunk) => parser.parse(chunk))
    socket.on('close', () => this.packets.end('closed'))
    socket.on('error', () => undefined)
  }

  /**
   * Open a TCP connection to `url` (mqtt://host:port) that will speak `protocolVersion`; nothing is
   * sent yet.
   */
  static open(url: string, protocolVersion: ProtocolVersion = 4): Promise<RawClient> {
    const { hostname, port } = new URL(url)
    return new Promise((resolve, reject) => {
      // No Nagle: a test sends small packets and waits for the answer to each.
      const socket = tcpConnect({ port: Number(port), host: hostname, noDelay: true }, () =>
        resolve(new RawClient(socket, protocolVersion)),
      )
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
   * Open, send CONNECT (MQTT 3.1.1 unless told otherwise) with the given id, CleanSession flag,
   * will and properties, and await the CONNACK, whatever it says; QoS 1 messages from the broker
   * are acknowledged.
   */
  static async connect(
    url: string,
    options: ConnectOptions = {},
  ): Promise<{ client: RawClient; connack: IConnackPacket }> {
    const protocolVersion = options.protocolVersion ?? 4
    const client = await RawClient.open(url, protocolVersion)
    client.autoAck = true
    client.write(
      connectBytes({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion,
        keepalive: options.keepalive ?? 0,
        clean: options.clean ?? true,
        clientId: options.clientId ?? randomClientId(),
        will: options.will,
        properties: options.properties,
      }),
    )
    return { client, connack: await client.next('connack') }
  }

  /**
   * SUBSCRIBE to `filters` in one packet and await the SUBACK; returns what it says for each: the
   * QoS granted, or a failure code (0x80; in MQTT 5 a reason code). A filter given as an object
   * carries MQTT 5's subscription options (No Local, Retain As Published, Retain Handling) and its
   * own QoS; `properties` are the SUBSCRIBE's in MQTT 5 (a Subscription Identifier).
   */
  async subscribe(
    filters: (string | ISubscription)[],
    qos: QoS = 0,
    properties?: ISubscribePacket['properties'],
  ): Promise<number[]> {
    const messageId = this.nextMessageId()
    this.send({
      cmd: 'subscribe',
      messageId,
      subscriptions: filters.map((f) => (typeof f === 'string' ? { topic: f, qos } : f)),
      ...(properties && { properties }),
    })
    const suback = await this.next('suback')
    if (suback.messageId !== messageId)
      throw new Error(`SUBACK for packet ${suback.messageId}, expected ${messageId}`)
    return suback.granted as number[]
  }

  /**
   * PUBLISH; at QoS 1, await the PUBACK that carries its packet identifier, and return its reason
   * code (0 in 3.1.1).
   */
  async publish(
    topic: string,
    payload: string,
    options: PublishOptions = {},
  ): Promise<number | undefined> {
    this.send(this.publishPacket(topic, payload, options))
    if (options.qos !== 1) return undefined
    const messageId = this.lastMessageId
    const puback = await this.next('puback')
    if (puback.messageId !== messageId)
      throw new Error(`PUBACK for packet ${puback.messageId}, expected ${messageId}`)
    return puback.reasonCode ?? 0
  }

  /**
   * A PUBLISH packet (with a fresh packet identifier at QoS 1), to send now or later in a burst.
   */
  publishPacket(
    topic: string,
    payload: string,
    { qos = 0, retain = false, properties }: PublishOptions = {},
  ): IPublishPacket {
    const packet: IPublishPacket = {
      cmd: 'publish',
      topic,
      payload: Buffer.from(payload),
      qos,
      retain,
      dup: false,
    }
    if (properties) packet.properties = properties
    if (qos > 0) packet.messageId = this.nextMessageId()
    return packet
  }

  /** Several packets in one TCP write, so that the broker reads them back to back. */
  sendAll(packets: Packet[]): void {
    this.socket.write(
      Buffer.concat(packets.map((p) => mqttPacket.generate(p, this.generateOptions))),
    )
  }

  /**
   * Await the PUBLISH whose payload is `marker` and return, in order, the PUBLISH packets received
   * before it that nobody consumed yet: with a broker that keeps order, everything that was going
   * to arrive before the marker did.
   */
  async publishesBefore(marker: string, timeoutMs = HUNG_MS): Promise<IPublishPacket[]> {
    await this.waitUntil(
      `the marker ${JSON.stringify(marker)}`,
      timeoutMs,
      true,
      () =>
        this.received.some((p) => p.cmd === 'publish' && String(p.payload) === marker) || undefined,
    )
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
    this.socket.write(mqttPacket.generate(packet, this.generateOptions))
  }

  /** Send raw bytes, well-formed or not. */
  write(bytes: Buffer): void {
    this.socket.write(bytes)
  }

  /**
   * Resolve with the first not yet consumed packet of type `cmd`; rejects if the connection closes
   * first.
   */
  next<C extends Packet['cmd']>(cmd: C, timeoutMs = HUNG_MS): Promise<Extract<Packet, { cmd: C }>> {
    return this.waitUntil(`a ${cmd.toUpperCase()}`, timeoutMs, true, () => {
      const at = this.received.findIndex((p) => p.cmd === cmd)
      return at >= 0 ? (this.received.splice(at, 1)[0] as Extract<Packet, { cmd: C }>) : undefined
    })
  }

  /**
   * The packets of type `cmd` received so far and not consumed yet, in order; they are consumed
   * now.
   */
  take<C extends Packet['cmd']>(cmd: C): Extract<Packet, { cmd: C }>[] {
    const taken = this.received.filter((p): p is Extract<Packet, { cmd: C }> => p.cmd === cmd)
    this.received.splice(0, this.received.length, ...this.received.filter((p) => p.cmd !== cmd))
    return taken
  }

  /**
   * Resolve once the broker has closed the connection; returns the packets it sent and nobody
   * consumed.
   */
  closed(timeoutMs = HUNG_MS): Promise<Packet[]> {
    return this.waitUntil('the broker closing the connection', timeoutMs, false, () =>
      this.packets.ended ? this.received.splice(0) : undefined,
    )
  }

  /**
   * Resolve with what `found` returns once it returns something, checked on every packet; reject,
   * naming what was awaited, after `timeoutMs`, or when the connection closes first if
   * `failOnClose`.
   */
  private waitUntil<T>(
    awaited: string,
    timeoutMs: number,
    failOnClose: boolean,
    found: () => T | undefined,
  ): Promise<T> {
    return this.packets.until(found, {
      timeoutMs,
      timedOut: (ms) => new Error(`waited ${inSeconds(ms)} for ${awaited}`),
      ended: failOnClose
        ? () => new Error(`the connection closed before ${awaited} arrived`)
        : undefined,
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
 * CleanSession (Clean Start) 0, which a 3.1.1 client must not send and a broker must refuse (MQTT
 * 3.1.1 §3.1.3.1 [MQTT-3.1.3-7] [MQTT-3.1.3-8]), and which MQTT 5 allows: so build it with a
 * one-byte id and cut that byte out.
 */
function connectBytes(packet: IConnectPacket): Buffer {
  if (packet.clientId !== '' || packet.clean) return mqttPacket.generate(packet)
  const bytes = mqttPacket.generate({ ...packet, clientId: 'x' })
  // Fixed header (type, then the remaining length in one byte below 128), the 10-byte variable
  // header of MQTT 3.1.1 (in MQTT 5 followed by the properties: their length in one byte below 128,
  // then them), then the payload, which starts with the client id: length 00 01, then "x".
  const at = 12 + (packet.protocolVersion === 5 ? 1 + bytes[12] : 0)
  if (
    bytes[1] >= 128 ||
    (packet.protocolVersion === 5 && bytes[12] >= 128) ||
    bytes.readUInt16BE(at) !== 1
  ) {
    throw new Error('cannot build a CONNECT this long with an empty client id')
  }
  return Buffer.concat([
    Buffer.from([bytes[0], bytes[1] - 1]),
    bytes.subarray(2, at),
    Buffer.from([0, 0]),
    bytes.subarray(at + 3),
  ])
}
