// The bundled broker's packet record: every MQTT packet it reads from a client and writes to one,
// parsed, with the client's id, and its own acts (a Last Will it publishes, a retained message it
// hands to a new subscriber, a PUBLISH that reached no subscriber), and the connections that ended
// in their TLS handshake, before any packet. The stage view draws it (scenarios/stage/stage.ts);
// `npm run broker -- --record FILE` writes it as JSON lines.
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Aedes, Client } from 'aedes'
import type { IPublishPacket, Packet } from 'mqtt-packet'
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
  /**
   * In the lines of recordLines(), on a record that stands for a burst of PUBLISH whose payloads
   * differ: the last one's payload (`payload` is the first's).
   */
  lastPayload?: string
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
   * In the lines of recordLines(): how many packets in a row on this arrow this record stands for,
   * when more than one (see recordLines).
   */
  count?: number
}

export type PacketListener = (record: PacketRecord) => void

/**
 * A connection that ended in its TLS handshake, before any MQTT packet: refused by the broker
 * (plain MQTT on a TLS port, no client certificate where one is required) or given up by the
 * client, which hangs up or sends an alert (a certificate it does not trust, for another host
 * name). It has no client id, and no packet: it is no PacketRecord, and only the lines of
 * recordLines() and the listeners of PacketRecorder.hearRefusals() are told of it.
 */
export interface RefusalRecord {
  /** Its place in the broker's record, among the packets'. */
  n: number
  at: number
  client: ''
  dir: 'act'
  act: 'refused'
  /** The listener's URL, as the broker's ready line gives it: mqtts://localhost:8883. */
  listener: string
  /** In a few words: "not TLS", "no client certificate", "TLS handshake failed: unknown ca". */
  reason: string
}

/**
 * What recordLines() is given of each packet, as the broker reads, writes or acts on it: the packet
 * as aedes has it, before it is summarized, so that a packet folded into a burst costs no summary.
 * Returns whether the packet is a record of its own (one folded into a burst is not).
 */
export type PacketTap = (
  n: number,
  client: string,
  dir: PacketRecord['dir'],
  packet: Packet,
  act?: PacketRecord['act'],
  of?: number,
) => boolean

/** The record's listeners, shared by every life of one broker (see broker.ts's restart()). */
export class PacketRecorder {
  private readonly listeners = new Set<PacketListener>()
  /** An array, not a set: it is walked for every packet. */
  private taps: PacketTap[] = []
  private readonly refusals = new Set<(record: RefusalRecord) => void>()
  private count = 0

  get listening(): boolean {
    return this.listeners.size > 0 || this.taps.length > 0
  }

  /** Hear every record, each as it is made. */
  listen(listener: PacketListener): () => void {
    patchWriteToStream()
    this.listeners.add(listener)
    return () => void this.listeners.delete(listener)
  }

  /** Hear every connection refused before MQTT (RefusalRecord). */
  hearRefusals(listener: (record: RefusalRecord) => void): () => void {
    this.refusals.add(listener)
    return () => void this.refusals.delete(listener)
  }

  /** Record a connection refused before any MQTT packet on `listener` (a URL), and why. */
  refused(listener: string, reason: string): void {
    if (this.refusals.size === 0) return
    const record: RefusalRecord = {
      n: ++this.count,
      at: Date.now(),
      client: '',
      dir: 'act',
      act: 'refused',
      listener,
      reason,
    }
    for (const hear of this.refusals) hear(record)
  }

  /** Hear every packet unsummarized (recordLines). */
  tap(tap: PacketTap): () => void {
    patchWriteToStream()
    this.taps = [...this.taps, tap]
    return () => {
      this.taps = this.taps.filter((t) => t !== tap)
    }
  }

  /**
   * Record a packet; returns its number, or 0 where no listener hears it and every tap folded it
   * into a burst (then nothing will look for it: see tellWhatReachesNobody).
   */
  tell(
    client: string,
    dir: PacketRecord['dir'],
    packet: Packet,
    act?: PacketRecord['act'],
    of?: number,
  ): number {
    const n = ++this.count
    let kept = false
    const taps = this.taps
    for (let i = 0; i < taps.length; i++) if (taps[i](n, client, dir, packet, act, of)) kept = true
    if (this.listeners.size === 0) return kept ? n : 0
    const record = recordOf(n, client, dir, packet, act, of)
    for (const listener of this.listeners) listener(record)
    return n
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
        (p.topicAlias === undefined ? '' : `,"topicAlias":${p.topicAlias}`) +
        (p.lastPayload === undefined ? '' : `,"lastPayload":${JSON.stringify(p.lastPayload)}`)
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
 * In a burst of PUBLISH on one arrow whose payloads differ, how many are records of their own
 * before the rest fold into one (see recordLines).
 */
export const BURST_SHOWN = 3

/**
 * How long recordLines gathers lines before it writes them while the broker is busy (see BUSY):
 * too short for a stage view to tell, long enough that a flood costs a write every 10 ms at most.
 */
const FLUSH_MS = 10

/**
 * How many packets one write of recordLines must stand for before the next waits FLUSH_MS: below
 * it, as in every show, the record is written once the event loop has done the work at hand, so
 * that a show reads each packet at once, and a broker killed a moment later has told it.
 */
const BUSY = 64

/** How many of the latest PUBLISH records recordLines keeps in mind, for the 'nobody' told late. */
const NOBODY_LOOKBACK = 256

/**
 * A record of recordLines() not written yet, with what the next packet on its arrow must match to
 * fold into it, read once from its packet: each packet that folds is compared with these fields of
 * one shape, not with a summary's (whose fields differ by packet type).
 */
class Pending {
  readonly cmd: Packet['cmd']
  readonly topic: string | undefined
  readonly qos: number | undefined
  readonly retain: boolean | undefined
  readonly dup: boolean | undefined
  readonly alias: number | undefined
  readonly code: number | undefined
  /** The payload of its first packet, as aedes has it. */
  readonly payload: Buffer | string | undefined
  /** The payload of its last packet, where a burst of differing payloads folded into it. */
  last: Buffer | string | undefined = undefined
  /** Whether any packet may fold into it: one of a burst's types, and not an act about another. */
  readonly folds: boolean
  readonly record: PacketRecord
  /** How many records in a row on its arrow, this one the last, are packets of the same shape. */
  readonly run: number

  constructor(record: PacketRecord, packet: Packet, run: number) {
    this.record = record
    this.run = run
    const p = packet as Partial<IPublishPacket> & { reasonCode?: number }
    this.cmd = packet.cmd
    this.topic = p.topic
    this.qos = p.qos
    this.retain = p.retain
    this.dup = p.dup
    this.alias = p.properties?.topicAlias
    this.code = p.reasonCode
    this.payload = p.payload
    this.folds = record.of === undefined && FOLDED.has(packet.cmd)
  }

  /**
   * Whether `packet` is of this record's shape (type, topic, flags, act, reason code): read before
   * aedes fills in a topic from its alias.
   */
  fits(packet: Packet, act: PacketRecord['act']): boolean {
    if (!this.folds || this.cmd !== packet.cmd || this.record.act !== act) return false
    if (packet.cmd !== 'publish')
      return this.code === (packet as { reasonCode?: number }).reasonCode
    return (
      this.topic === packet.topic &&
      this.qos === packet.qos &&
      this.retain === packet.retain &&
      this.dup === packet.dup &&
      this.alias === packet.properties?.topicAlias
    )
  }

  /** Whether `payload` is this record's first payload, byte for byte. */
  same(payload: Buffer | string | undefined): boolean {
    const first = this.payload
    if (first === payload) return true
    if (typeof first === 'string' || typeof payload === 'string') return `${first}` === `${payload}`
    return first !== undefined && payload !== undefined && first.equals(payload)
  }
}

/**
 * A tap (PacketRecorder.tap) that hands `write` the record as lines of JSON (recordLine), gathered
 * over a turn of the event loop, or for FLUSH_MS while the broker is busy (BUSY), and written at
 * once. Within that time, packets on one arrow (client and direction) fold into the record before
 * them where they are of the same shape (type, topic, flags, act, reason code): an identical
 * packet, packet identifier aside, always, and one whose payload differs once more than
 * BURST_SHOWN such records stand in a row (the last of them then keeps its first payload and the
 * last one's, `lastPayload`). A flood of a thousand PUBLISH is a few lines, as the stage view draws
 * it; a packet that folds costs a few comparisons and no summary, so the record costs little where
 * it would cost most.
 */
export function recordLines(
  write: (lines: string) => void,
): PacketTap & { refused(record: RefusalRecord): void; flush(after?: string): void } {
  let batch: Pending[] = []
  /** How many packets the batch stands for, and whether the last write stood for BUSY or more. */
  let told = 0
  let busy = false
  // Per direction, by client id: the id is the same string every time, whose hash is kept.
  const arrows = { in: new Map<string, Pending>(), out: new Map(), act: new Map() }
  /** The write to come: at the end of this turn of the event loop, or in FLUSH_MS. */
  let soon: NodeJS.Immediate | undefined
  let timer: NodeJS.Timeout | undefined
  /** Write the lines gathered, and `after` them. */
  const flush = (after = '') => {
    clearImmediate(soon)
    clearTimeout(timer)
    let lines = ''
    for (const { record, last } of batch) {
      if (last !== undefined) record.packet.lastPayload = text(last)
      lines += `${recordLine(record)}\n`
    }
    batch = []
    busy = told >= BUSY
    told = 0
    arrows.in.clear()
    arrows.out.clear()
    arrows.act.clear()
    write(lines + after)
  }
  // The incoming PUBLISH that are records of their own, lately: a 'nobody' told of one that folded
  // into a burst is left out, the burst's own record tells of it.
  const own = new Set<number>()
  const tap: PacketTap = (n, client, dir, packet, act, of) => {
    if (of !== undefined && !own.has(of)) return false
    told++
    const arrow = arrows[dir]
    const before = arrow.get(client)
    const fits = before !== undefined && of === undefined && before.fits(packet, act)
    if (fits) {
      const payload = (packet as { payload?: Buffer | string }).payload
      const identical = before.last === undefined && before.same(payload)
      if (identical || before.run > BURST_SHOWN) {
        before.record.count = (before.record.count ?? 1) + 1
        if (!identical) before.last = payload
        return false
      }
    }
    if (batch.length === 0) {
      if (busy) timer = setTimeout(flush, FLUSH_MS)
      else soon = setImmediate(flush)
    }
    const record = recordOf(n, client, dir, packet, act, of)
    const pending = new Pending(record, packet, fits ? before.run + 1 : 1)
    arrow.set(client, pending)
    batch.push(pending)
    if (dir === 'in' && packet.cmd === 'publish') {
      own.add(n)
      if (own.size > NOBODY_LOOKBACK) own.delete(own.values().next().value!)
    }
    return true
  }
  // A refusal is written at once, after what came before it: the broker tells it before it resets
  // the connection, so that a reader of the record hears of it before the client does.
  return Object.assign(tap, {
    refused: (record: RefusalRecord) => flush(`${JSON.stringify(record)}\n`),
    flush,
  })
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
    if (recorder.listening) recorder.tell(client.id, 'act', packet, 'will')
    publishWill.call(aedes, client, will)
  }
}

type AedesWill = Aedes & { publishWill(client: Client, will: Packet): void }

type PacketHandler = (this: unknown, packet: Packet) => void

/** What aedes keeps on a client that its types leave out: its parser. */
type ParsingClient = Client & {
  _parser: {
    listeners(event: 'packet'): PacketHandler[]
    removeAllListeners(event: 'packet'): void
    on(event: 'packet', f: PacketHandler): void
  }
}

function attach(client: Client, recorder: PacketRecorder, unrouted?: Unrouted): void {
  // A CONNECT that aedes refuses leaves client.id unset: the CONNACK goes to the id it asked for.
  let asked = ''
  const id = () => client.id || asked
  const record = (packet: Packet) => {
    if (!recorder.listening) return
    if (packet.cmd === 'connect') asked = packet.clientId
    const n = recorder.tell(id(), 'in', packet)
    if (n && packet.cmd === 'publish' && unrouted && !packet.topic.startsWith('$'))
      unrouted.set(packet.payload as Buffer, { n, client: id(), packet })
  }
  // Before aedes' own listener, which may answer at once: the record has the cause first. In one
  // listener with it, as an emitter with two copies its list of listeners on every packet.
  const parser = (client as ParsingClient)._parser
  const [handler, ...more] = parser.listeners('packet')
  parser.removeAllListeners('packet')
  parser.on('packet', function (this: unknown, packet) {
    record(packet)
    handler?.call(this, packet)
    for (const other of more) other.call(this, packet)
  })
  ;(client.conn as unknown as Recorded)[RECORD] = (packet) => {
    if (!recorder.listening) return
    const retained = packet.cmd === 'publish' && packet.retain
    recorder.tell(id(), 'out', packet, retained ? 'retained' : undefined)
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
    const nobody = () => recorder.tell(client, 'act', packet, 'nobody', n)
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

/** A record of `packet`, made now: before aedes fills in a topic from its alias. */
function recordOf(...[n, client, dir, packet, act, of]: Parameters<PacketTap>): PacketRecord {
  return { n, at: Date.now(), client, dir, packet: summary(packet), act, of }
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
