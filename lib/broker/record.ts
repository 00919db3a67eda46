// The bundled broker's packet record: every MQTT packet it reads from a client and writes to one,
// parsed, with the client's id, and its own acts (a Last Will it publishes, a retained message it
// hands to a new subscriber, a PUBLISH that reached no subscriber). The stage view draws it
// (scenarios/stage/stage.ts); `npm run broker -- --record FILE` writes it as JSON lines.
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Aedes, Client } from 'aedes'
import type { Packet } from 'mqtt-packet'
import { watchOutgoing } from './fixes/outgoing.ts'

/** Payloads longer than this are cut in a record: it is for reading, not for replaying. */
const PAYLOAD_CHARS = 120

/** What a record keeps of a packet: the fields a reader of a sequence diagram wants. */
export interface PacketSummary {
  /** mqtt-packet's name of the type: 'connect', 'publish', 'suback'... */
  cmd: Packet['cmd']
  messageId?: number
  /** CONNECT. */
  clientId?: string
  clean?: boolean
  keepalive?: number
  protocolVersion?: number
  will?: { topic: string; payload: string; qos: number; retain: boolean }
  /** CONNACK: returnCode (3.1.1) or reasonCode (5), and the session flag. */
  returnCode?: number
  sessionPresent?: boolean
  /** PUBLISH: the payload as text, cut after PAYLOAD_CHARS characters; `bytes` its whole size. */
  topic?: string
  payload?: string
  bytes?: number
  qos?: number
  retain?: boolean
  dup?: boolean
  /** MQTT 5's Topic Alias, where the PUBLISH carries one (its topic is then '' after the first). */
  topicAlias?: number
  /** SUBSCRIBE, SUBACK, UNSUBSCRIBE. */
  subscriptions?: { topic: string; qos: number }[]
  granted?: number[]
  unsubscriptions?: string[]
  /** The acknowledgements', DISCONNECT's and AUTH's MQTT 5 reason code. */
  reasonCode?: number
}

/** One entry of the record. */
export interface PacketRecord {
  /** Its place in the broker's record, from 1 (across restarts). */
  n: number
  /** When, in milliseconds since the epoch. */
  at: number
  /** The client's id ('' before a CONNECT gave one). */
  client: string
  /**
   * 'in': read from the client; 'out': written to it; 'act': the broker acting on its own (a will,
   * or a PUBLISH of `client` that reached nobody).
   */
  dir: 'in' | 'out' | 'act'
  packet: PacketSummary
  /**
   * 'will': the broker publishes `client`'s Last Will; 'retained': an 'out' PUBLISH that hands a
   * retained message to a new subscriber (any PUBLISH it sends with the RETAIN flag: a subscription
   * with MQTT 5's Retain As Published is not told apart); 'nobody': the PUBLISH recorded as `of`
   * reached no subscriber, live or away (not told on Redis, where a broker cannot see the other
   * brokers' subscribers).
   */
  act?: 'will' | 'retained' | 'nobody'
  of?: number
  /**
   * In the lines of recordLines(): how many identical packets in a row (but for their packet
   * identifiers) this record stands for, when more than one.
   */
  count?: number
}

export type PacketListener = (record: PacketRecord) => void

/** The record's listeners, shared by every life of one broker (see broker.ts's restart()). */
export class PacketRecorder {
  private readonly listeners = new Set<PacketListener>()
  private count = 0

  get listening(): boolean {
    return this.listeners.size > 0
  }

  listen(listener: PacketListener): () => void {
    patchWriteToStream()
    this.listeners.add(listener)
    return () => void this.listeners.delete(listener)
  }

  tell(
    client: string,
    dir: PacketRecord['dir'],
    packet: PacketSummary,
    act?: PacketRecord['act'],
    of?: number,
  ): number {
    const record: PacketRecord = { n: ++this.count, at: Date.now(), client, dir, packet, act, of }
    for (const listener of this.listeners) listener(record)
    return record.n
  }
}

/**
 * A record as one line of JSON, what `npm run broker -- --record` writes: written field by field,
 * which costs a quarter of what JSON.stringify does with the whole record, on every packet.
 */
export function recordLine(record: PacketRecord): string {
  const p = record.packet
  // PUBLISH and its acknowledgements are most of any burst: written without a loop.
  const packet =
    p.cmd === 'publish'
      ? `"cmd":"publish"${p.messageId === undefined ? '' : `,"messageId":${p.messageId}`},` +
        `"topic":${JSON.stringify(p.topic)},"payload":${JSON.stringify(p.payload)},` +
        `"bytes":${p.bytes},"qos":${p.qos},"retain":${p.retain},"dup":${p.dup}` +
        (p.topicAlias === undefined ? '' : `,"topicAlias":${p.topicAlias}`)
      : p.cmd === 'puback' && p.reasonCode === undefined
        ? `"cmd":"puback","messageId":${p.messageId}`
        : fields(p)
  const act = record.act === undefined ? '' : `,"act":"${record.act}"`
  const of = record.of === undefined ? '' : `,"of":${record.of}`
  const count = record.count === undefined ? '' : `,"count":${record.count}`
  const head = `"n":${record.n},"at":${record.at},"client":${JSON.stringify(record.client)}`
  return `{${head},"dir":"${record.dir}","packet":{${packet}}${act}${of}${count}}`
}

/**
 * A listener that hands `write` the record as lines of JSON (recordLine), gathered over one turn of
 * the event loop and written at once. Within a turn, a record identical to the last one on the same
 * arrow (client and direction), packet identifier aside, is not written again: that one's `count`
 * grows. A flood of a thousand identical PUBLISH is a few lines, as the stage view draws it; so the
 * record costs little where it would cost most.
 */
export function recordLines(write: (lines: string) => void): PacketListener {
  let batch: PacketRecord[] = []
  // Per direction, by client id: the id is the same string every time, whose hash is kept.
  const last = { in: new Map<string, PacketRecord>(), out: new Map(), act: new Map() }
  const flush = () => {
    let lines = ''
    for (const record of batch) lines += `${recordLine(record)}\n`
    batch = []
    last.in.clear()
    last.out.clear()
    last.act.clear()
    write(lines)
  }
  return (record) => {
    if (batch.length === 0) setImmediate(flush)
    const arrow = last[record.dir]
    const before = arrow.get(record.client)
    if (before && identical(before, record)) {
      before.count = (before.count ?? 1) + 1
      return
    }
    arrow.set(record.client, record)
    batch.push(record)
  }
}

/** Whether two records tell of the same packet, packet identifier aside (see recordLines). */
function identical(a: PacketRecord, b: PacketRecord): boolean {
  const p = a.packet
  const q = b.packet
  return (
    a.act === b.act &&
    a.of === undefined &&
    b.of === undefined &&
    p.cmd === q.cmd &&
    FOLDED.has(p.cmd) &&
    p.topic === q.topic &&
    p.payload === q.payload &&
    p.bytes === q.bytes &&
    p.qos === q.qos &&
    p.retain === q.retain &&
    p.dup === q.dup &&
    p.topicAlias === q.topicAlias &&
    p.reasonCode === q.reasonCode
  )
}

/** The packets of a burst. */
const FOLDED = new Set<Packet['cmd']>([
  'publish',
  'puback',
  'pubrec',
  'pubrel',
  'pubcomp',
  'pingreq',
  'pingresp',
])

/** The fields of any packet's summary, as JSON without its braces. */
function fields(summary: PacketSummary): string {
  let packet = ''
  const p = summary as unknown as Record<string, unknown>
  for (const key in p) {
    const value = p[key]
    if (value === undefined) continue
    const text =
      typeof value === 'number' || typeof value === 'boolean'
        ? String(value)
        : JSON.stringify(value)
    packet += `${packet ? ',' : ''}"${key}":${text}`
  }
  return packet
}

/** Set on a connection that is recorded: what its outgoing packets are told to. */
const RECORD = Symbol('record')

type Recorded = { [RECORD]?: (packet: Packet) => void }

/**
 * Outgoing packets are seen where aedes serializes them: mqtt-packet's writeToStream, which aedes
 * looks up on the module at each write, so that the record sees the packet object rather than bytes
 * to parse again, and sees it after the fixes that change it (a topic alias: ./fixes/outgoing.ts
 * wraps it once for both). Hooked once per process, only once someone listens to a record: a
 * broker nobody records pays nothing. Streams that are not recorded (MQTT.js's, in a test) pay a
 * property read.
 */
function patchWriteToStream(): void {
  watchOutgoing((packet, stream) => (stream as Recorded)[RECORD]?.(packet))
}

/**
 * Record the packets of every connection made while `recorder` has a listener, and the broker's
 * acts. Applied after lib/broker/fixes.ts, so that aedes.handle is the one that wraps each
 * connection in a ClosingAfterWork (./fixes/end-after-work.ts).
 */
export function recordPackets(aedes: Aedes, recorder: PacketRecorder, onRedis: boolean): void {
  const unrouted = onRedis ? undefined : tellWhatReachesNobody(aedes, recorder)
  const handle = aedes.handle
  aedes.handle = (stream: Duplex, request?: IncomingMessage) => {
    const client = handle(stream, request)
    if (recorder.listening) attach(client, recorder, unrouted)
    return client
  }
  // aedes publishes a will by this method, after a connection that ended without DISCONNECT (and
  // after its MQTT 5 Will Delay Interval).
  const publishWill = (aedes as AedesWill).publishWill
  ;(aedes as AedesWill).publishWill = (client, will) => {
    // A will as aedes keeps it is a PUBLISH without its `cmd`.
    const packet = { ...will, cmd: 'publish' } as Packet
    if (recorder.listening) recorder.tell(client.id, 'act', summary(packet), 'will')
    publishWill.call(aedes, client, will)
  }
}

type AedesWill = Aedes & { publishWill(client: Client, will: Packet): void }

/** What aedes keeps on a client that its types leave out: its parser. */
type ParsingClient = Client & {
  _parser: { prependListener(event: 'packet', f: (p: Packet) => void): void }
}

function attach(client: Client, recorder: PacketRecorder, unrouted?: Unrouted): void {
  // A CONNECT that aedes refuses leaves client.id unset: the CONNACK goes to the id it asked for.
  let asked = ''
  const id = () => client.id || asked
  // Before aedes' own listener, which may answer at once: the record has the cause first.
  ;(client as ParsingClient)._parser.prependListener('packet', (packet) => {
    if (!recorder.listening) return
    if (packet.cmd === 'connect') asked = packet.clientId
    const n = recorder.tell(id(), 'in', summary(packet))
    if (packet.cmd === 'publish' && unrouted && !packet.topic.startsWith('$'))
      unrouted.set(packet.payload as Buffer, { n, client: id(), packet })
  })
  ;(client.conn as unknown as Recorded)[RECORD] = (packet) => {
    if (!recorder.listening) return
    const retained = packet.cmd === 'publish' && packet.retain
    recorder.tell(id(), 'out', summary(packet), retained ? 'retained' : undefined)
  }
}

/** aedes' message flow (mqemitter) and store, which its types leave out. */
interface Routes {
  mq: {
    _matcher?: { match(topic: string): unknown[] }
    emit(message: { payload: unknown }, callback?: unknown): unknown
  }
  persistence: { subscriptionsByTopic(topic: string): Promise<unknown[]> }
}

/**
 * The PUBLISH packets read from clients and not routed yet, by their payload, which aedes' copy of
 * the packet that it routes keeps. A topic of the broker's own ($SYS) is not in it.
 */
type Unrouted = WeakMap<Buffer, { n: number; client: string; packet: Packet }>

/**
 * Tell, after a PUBLISH, that it reached nobody: routing it matched no live subscription and, at
 * QoS 1 or 2, no session is kept for a client that is away (aedes queues no QoS 0 message for one).
 * What routing matched is read from routing itself, so that a recorded PUBLISH is matched once, as
 * when nobody records. The in-memory flow routes a message as it is given it; one that waits
 * (beyond mqemitter's concurrency) is not told of.
 */
function tellWhatReachesNobody(aedes: Aedes, recorder: PacketRecorder): Unrouted | undefined {
  const { mq, persistence } = aedes as unknown as Routes
  const matcher = mq._matcher
  if (!matcher) return undefined
  const unrouted: Unrouted = new WeakMap()
  let matched = -1
  const match = matcher.match
  matcher.match = function (this: unknown, topic: string) {
    const found = match.call(this, topic)
    matched = found.length
    return found
  }
  const emit = mq.emit
  mq.emit = function (this: unknown, message, callback) {
    const read = recorder.listening ? unrouted.get(message.payload as Buffer) : undefined
    if (!read) return emit.call(this, message, callback)
    unrouted.delete(message.payload as Buffer)
    matched = -1
    const result = emit.call(this, message, callback)
    if (matched !== 0) return result
    const { n, client, packet } = read
    const nobody = () => recorder.tell(client, 'act', summary(packet), 'nobody', n)
    if (packet.cmd !== 'publish' || packet.qos === 0) nobody()
    else
      persistence.subscriptionsByTopic(packet.topic).then(
        (subscriptions) => subscriptions.length === 0 && nobody(),
        () => undefined,
      )
    return result
  }
  return unrouted
}

/** The fields of `packet` that a record keeps, payloads as text cut after PAYLOAD_CHARS. */
export function summary(packet: Packet): PacketSummary {
  const s: PacketSummary = { cmd: packet.cmd }
  if ('messageId' in packet && packet.messageId !== undefined) s.messageId = packet.messageId
  switch (packet.cmd) {
    case 'connect':
      s.clientId = packet.clientId
      s.clean = packet.clean
      s.keepalive = packet.keepalive
      s.protocolVersion = packet.protocolVersion
      if (packet.will)
        s.will = {
          topic: packet.will.topic,
          payload: text(packet.will.payload),
          qos: packet.will.qos ?? 0,
          retain: packet.will.retain ?? false,
        }
      break
    case 'connack':
      s.returnCode = packet.returnCode ?? packet.reasonCode
      s.sessionPresent = packet.sessionPresent
      break
    case 'publish':
      s.topic = packet.topic
      s.payload = text(packet.payload)
      s.bytes = packet.payload.length
      s.qos = packet.qos
      s.retain = packet.retain
      s.dup = packet.dup
      if (packet.properties?.topicAlias !== undefined) s.topicAlias = packet.properties.topicAlias
      break
    case 'subscribe':
      s.subscriptions = packet.subscriptions.map(({ topic, qos }) => ({ topic, qos }))
      break
    case 'suback':
      // aedes writes each granted QoS (or MQTT 5 reason code) as a number.
      s.granted = packet.granted as number[]
      break
    case 'unsubscribe':
      s.unsubscriptions = packet.unsubscriptions
      break
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
    case 'disconnect':
    case 'auth':
      if (packet.reasonCode !== undefined) s.reasonCode = packet.reasonCode
      break
  }
  return s
}

function text(payload: Buffer | string): string {
  return typeof payload === 'string'
    ? payload.slice(0, PAYLOAD_CHARS)
    : payload.toString('utf8', 0, PAYLOAD_CHARS)
}
