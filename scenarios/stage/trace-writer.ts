// Writes the trace of a play (./trace.ts) as it happens: the stage (./stage.ts) tells it of the
// play, its lifelines, steps, ticks, result and refused connections, and hands it each record of a
// broker's packets (lib/broker/record.ts); it names each client after the program the show
// labels, folds bursts, and passes every entry to StageOptions.onTrace as it is made or grows.
import { BURST_SHOWN, type PacketRecord, type PacketSummary } from '../../lib/broker/record.ts'
import { packetText } from './packet-text.ts'
import type {
  EndEntry,
  LifelineEntry,
  PacketEntry,
  PacketType,
  PlayEntry,
  RefusalEntry,
  TraceEntry,
} from './trace.ts'

/**
 * Identical packets on one arrow this close together are one arrow that counts them (a burst);
 * pings are folded however far apart, as one mark of a connection kept alive.
 */
const BURST_MS = 1000

/** How many PUBLISH entries are kept to find, when a broker says one reached nobody. */
const NOBODY_LOOKBACK = 256

interface Folding {
  entry: PacketEntry
  /** When it last grew, ms since the play began. */
  last: number
  /** Of a PUBLISH of the broker's record: its topic, flags and act (see Shape). */
  shape?: string
  /** How many entries in a row on the arrow, this one the last, have that shape. */
  run: number
  /** Where the entry folds PUBLISH whose payloads differ: the first one's summary. */
  first?: PacketSummary
}

/**
 * A PUBLISH of the broker's record, for a burst of them whose payloads differ: past BURST_SHOWN
 * arrows of one shape in a row, the rest are one arrow from the first payload to the last, as the
 * record's own lines fold them (lib/broker/record.ts's recordLines).
 */
interface Shape {
  key: string
  summary: PacketSummary
}

export class TraceWriter {
  readonly entries: TraceEntry[] = []
  private readonly started = Date.now()
  private seq = 0
  /** No packet folds into one made before the last entry of another kind (a step, a tick). */
  private fence = 0
  private readonly ids = new Set<string>()
  /** Per arrow (from>to), the entry the next identical packet would fold into. */
  private readonly lastOnArrow = new Map<string, Folding>()
  /** Per lifeline, the seq of the last packet from or to it: where its program's ticks stand. */
  private readonly lastAbout = new Map<string, number>()
  /** Per broker lifeline and record number, the entry a PUBLISH read by that broker went to. */
  private readonly publishes = new Map<string, PacketEntry>()
  private readonly onTrace?: (entry: TraceEntry) => void

  constructor(onTrace?: (entry: TraceEntry) => void) {
    this.onTrace = onTrace
  }

  private add(entry: TraceEntry): void {
    if (entry.kind !== 'packet') this.fence = this.seq
    this.entries.push(entry)
    this.onTrace?.(entry)
  }

  play(entry: Omit<PlayEntry, 'kind'>): void {
    this.add({ kind: 'play', ...entry })
  }

  /** A new lifeline; returns its id, unique in the play (`subscriber`, then `subscriber#2`). */
  lifeline(
    label: string,
    role: LifelineEntry['role'],
    more: Pick<LifelineEntry, 'stage' | 'clientId'> = {},
  ): string {
    let id = label
    for (let n = 2; this.ids.has(id); n++) id = `${label}#${n}`
    this.ids.add(id)
    this.add({ kind: 'lifeline', id, label, role, ...more })
    return id
  }

  end(id: string, how: EndEntry['how']): void {
    this.add({ kind: 'end-of-life', id, how })
  }

  step(number: number, title: string): void {
    this.add({ kind: 'step', number, title })
  }

  /** A tick beside the last packet of `about` (a lifeline), or the last packet of all. */
  tick(text: string, claim?: string, about?: string): void {
    const after = (about && this.lastAbout.get(about)) || this.seq || undefined
    this.add({ kind: 'tick', text, ...(claim && { claim }), ...(after && { after }) })
  }

  result(ok: boolean, text: string): void {
    this.add({ kind: 'result', ok, text })
  }

  /**
   * An arrow, or one more of the burst it belongs to: an identical packet on the same arrow, with
   * nothing but packets on other arrows since, grows that entry's count and is sent again; so does
   * a PUBLISH of the broker's record of the same `shape` past the first BURST_SHOWN, its text then
   * giving the burst's first payload and its last.
   */
  packet(
    from: string,
    to: string,
    type: PacketType,
    text: string,
    act?: PacketEntry['act'],
    times = 1,
    shape?: Shape,
  ): PacketEntry {
    const at = Date.now() - this.started
    const arrow = `${from}>${to}`
    const folding = this.lastOnArrow.get(arrow)
    const target = folding?.entry
    const near =
      folding !== undefined &&
      target !== undefined &&
      target.seq > this.fence &&
      target.type === type &&
      (target.act === act || (target.act === 'nobody' && act === undefined)) &&
      (type === 'pingreq' || type === 'pingresp' || at - folding.last <= BURST_MS)
    if (near && target.text === text && !folding.first) {
      target.count += times
      folding.last = at
      this.onTrace?.(target)
      return target
    }
    const sameShape = near && shape !== undefined && folding.shape === shape.key
    if (sameShape && folding.first) {
      const { lastPayload, payload } = shape.summary
      target.text = packetText({ ...folding.first, lastPayload: lastPayload ?? payload })
      target.count += times
      folding.last = at
      this.onTrace?.(target)
      return target
    }
    const entry: PacketEntry = {
      kind: 'packet',
      seq: ++this.seq,
      from,
      to,
      type,
      text,
      count: times,
      at,
    }
    if (act) entry.act = act
    const run = sameShape ? folding.run + 1 : 1
    // Past BURST_SHOWN of a shape, this entry folds what follows; so does one the record folded.
    const folds = shape && (run > BURST_SHOWN || shape.summary.lastPayload !== undefined)
    const first = folds ? { ...shape.summary, lastPayload: undefined } : undefined
    this.lastOnArrow.set(arrow, { entry, last: at, shape: shape?.key, run, first })
    this.lastAbout.set(from, entry.seq)
    this.lastAbout.set(to, entry.seq)
    this.add(entry)
    return entry
  }

  /** A connection of the lifeline `program` that `broker` refused before MQTT (RefusalEntry). */
  refusal(program: string, broker: string, listener: string, reason: string): void {
    const at = Date.now() - this.started
    const entry: RefusalEntry = {
      kind: 'refusal',
      seq: ++this.seq,
      from: program,
      to: broker,
      listener,
      reason,
      at,
    }
    this.lastAbout.set(program, entry.seq)
    this.lastAbout.set(broker, entry.seq)
    this.add(entry)
  }

  /**
   * A record of the broker whose lifeline is `broker`, between it and the lifeline `client` (the
   * program whose client id the record names).
   */
  record(broker: string, client: string, label: string, record: PacketRecord): void {
    const { packet } = record
    const type = packet.cmd as PacketType
    if (record.act === 'will') {
      const text = `will of ${label}: ${packetText(packet)}`
      this.packet(broker, broker, type, text, 'will')
      return
    }
    if (record.act === 'nobody') {
      const entry = this.publishes.get(`${broker}:${record.of}`)
      if (entry && entry.act !== 'nobody') {
        entry.act = 'nobody'
        this.onTrace?.(entry)
      }
      return
    }
    const [from, to] = record.dir === 'in' ? [client, broker] : [broker, client]
    const shape =
      packet.cmd === 'publish'
        ? {
            key: [packet.topic, packet.qos, packet.retain, packet.dup, packet.topicAlias].join(' '),
            summary: packet,
          }
        : undefined
    const text = packetText(packet)
    const entry = this.packet(from, to, type, text, record.act, record.count, shape)
    if (record.dir === 'in' && type === 'publish') {
      this.publishes.set(`${broker}:${record.n}`, entry)
      if (this.publishes.size > NOBODY_LOOKBACK)
        this.publishes.delete(this.publishes.keys().next().value!)
    }
  }
}
