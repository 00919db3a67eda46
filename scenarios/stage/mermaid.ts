// A trace (./trace.ts) as a Mermaid sequence diagram: what the docs show of a play, generated from
// a real one (`npm run diagrams`) and checked against the next by the tests, so it cannot drift.
// The diagram is the same from run to run: no times, ports or made-up ids; and where programs act
// at the same moment, their arrows are put in one order that keeps each connection's own order and
// every message after the PUBLISH that brought it.
import type {
  EndEntry,
  LifelineEntry,
  PacketEntry,
  PacketType,
  RefusalEntry,
  TickEntry,
  TraceEntry,
} from './trace.ts'
import { publishedMessage as message } from './trace.ts'

export interface DiagramOptions {
  /** The steps to draw, by number; every step when undefined. */
  steps?: number[]
  /** Packet types left out, to keep a diagram about one thing short (CONNECT, PINGREQ...). */
  omit?: PacketType[]
  /** Draw the stage's own client and its markers, its proofs (left out by default). */
  stage?: boolean
}

/** Acknowledgements are drawn dashed, as replies. */
const REPLIES = new Set<PacketType>([
  'connack',
  'puback',
  'pubrec',
  'pubcomp',
  'suback',
  'unsuback',
  'pingresp',
])

/** What a diagram draws as an arrow: a packet, or a connection refused before MQTT. */
type Arrow = PacketEntry | RefusalEntry

/** What an arrow carries, if it is a PUBLISH (see publishedMessage). */
const carried = (p: Arrow) => (p.kind === 'packet' ? message(p) : undefined)

/** Whether an arrow is an acknowledgement, drawn dashed. */
const isReply = (p: Arrow | undefined) => p?.kind === 'packet' && REPLIES.has(p.type)

/** A note longer than this is broken into lines: Mermaid does not wrap them. */
const NOTE_CHARS = 48

export function mermaid(trace: readonly TraceEntry[], options: DiagramOptions = {}): string {
  const lifelines = new Map<string, LifelineEntry>()
  for (const e of trace) if (e.kind === 'lifeline') lifelines.set(e.id, e)
  const hidden = (id: string) => !options.stage && lifelines.get(id)?.stage === true
  const brokers = new Map(
    [...lifelines.values()].filter((l) => l.role === 'broker').map((l) => [l.id, l.label]),
  )
  const steps = stepsOf(trace, brokers).filter(
    (s) => !options.steps || options.steps.includes(s.number),
  )
  const omit = new Set(options.omit ?? [])
  // What the stage's client published (its markers) reaches programs too: left out with it. A
  // delivery is of the latest PUBLISH to a broker before it that carried the same.
  const markers = new Set<Arrow>()
  const lastFrom = new Map<string, string>()
  for (const e of trace) {
    const what = e.kind === 'packet' ? message(e) : undefined
    if (e.kind !== 'packet' || what === undefined) continue
    if (lifelines.get(e.to)?.role === 'broker') lastFrom.set(what, e.from)
    else if (e.act !== 'retained' && hidden(lastFrom.get(what) ?? '')) markers.add(e)
  }
  const shown = (p: Arrow) =>
    (p.kind === 'refusal' || !omit.has(p.type)) &&
    !hidden(p.from) &&
    !hidden(p.to) &&
    !markers.has(p)
  const drawn = steps.map((step) => ({
    ...step,
    // Between a broker's ends the arrows are ordered apart: each part of the step on its own.
    parts: [...step.ends.map((e) => e.after), step.packets.length].map((to, i, ends) =>
      step.packets.slice(i === 0 ? 0 : ends[i - 1], to).filter(shown),
    ),
    packets: step.packets.filter(shown),
  }))
  const names = participants(
    drawn.flatMap((s) => s.packets),
    lifelines,
  )
  const lines = ['sequenceDiagram']
  for (const [label, name] of names) lines.push(`    participant ${name} as ${entities(label)}`)
  const all = [...names.values()]
  const span = all.length > 1 ? `${all[0]},${all.at(-1)}` : all[0]
  const name = (id: string) => names.get(lifelines.get(id)?.label ?? id)!
  for (const step of drawn) {
    if (steps.length > 1 || !options.steps)
      lines.push(`    Note over ${span}: ${wrap(entities(`step ${step.number}: ${step.title}`))}`)
    for (const [i, part] of step.parts.entries()) {
      for (const p of causalOrder(part, lifelines)) {
        // A connection refused before MQTT: an arrow that ends in a cross, and why.
        if (p.kind === 'refusal') {
          lines.push(`    ${name(p.from)}-x${name(p.to)}: ${entities(`refused: ${p.reason}`)}`)
          continue
        }
        const arrow = isReply(p) ? '-->>' : '->>'
        const count = p.count > 1 ? ` ×${p.count}` : ''
        lines.push(`    ${name(p.from)}${arrow}${name(p.to)}: ${entities(p.text)}${count}`)
        if (p.act === 'nobody') lines.push(`    Note over ${name(p.to)}: ${nobody(p.text)}`)
      }
      const end = step.ends[i]
      const broker = end && names.get(lifelines.get(end.broker)!.label)
      if (broker) lines.push(`    Note over ${broker}: ${ENDED[end.how]}`)
    }
    for (const tick of step.ticks) {
      if (!tick.claim) continue
      lines.push(`    Note over ${span}: ${wrap(`✓ ${tick.claim}: ${entities(tick.text)}`)}`)
    }
  }
  return lines.join('\n')
}

interface Step {
  number: number
  title: string
  packets: Arrow[]
  /** A broker's end, drawn as a note between the arrows before it and those after. */
  ends: { after: number; broker: string; how: EndEntry['how'] }[]
  ticks: TickEntry[]
}

/**
 * The trace cut into its steps (packets before the first step are left out). A broker's end is kept
 * where a broker of the same name starts again after it: a restart, which the diagram is about;
 * the end of the play is not.
 */
function stepsOf(trace: readonly TraceEntry[], brokers: Map<string, string>): Step[] {
  const steps: Step[] = []
  const seen = new Set<Arrow>()
  const restarted = (at: number, label: string) =>
    trace.slice(at).some((e) => e.kind === 'lifeline' && e.label === label)
  for (const [at, e] of trace.entries()) {
    const step = steps.at(-1)
    if (e.kind === 'step')
      steps.push({ number: e.number, title: e.title, packets: [], ends: [], ticks: [] })
    else if (step && (e.kind === 'packet' || e.kind === 'refusal') && !seen.has(e)) {
      // An entry sent again (a burst that grew) is one arrow.
      seen.add(e)
      step.packets.push(e)
    } else if (step && e.kind === 'tick') step.ticks.push(e)
    else if (
      step &&
      e.kind === 'end-of-life' &&
      brokers.has(e.id) &&
      restarted(at, brokers.get(e.id)!)
    )
      step.ends.push({ after: step.packets.length, broker: e.id, how: e.how })
  }
  return steps
}

/** How a broker's end reads. */
const ENDED = { exit: 'exited', stop: 'stopped (Ctrl-C)', kill: 'killed (SIGKILL)' }

/**
 * Participants by label (a program run twice is one participant): the first program, the brokers,
 * then the others in the order they appeared; each with a name Mermaid accepts.
 */
function participants(
  packets: Arrow[],
  lifelines: Map<string, LifelineEntry>,
): Map<string, string> {
  const used = [...new Set(packets.flatMap((p) => [p.from, p.to]))]
    .map((id) => lifelines.get(id) ?? { id, label: id, role: 'program' as const })
    .sort((a, b) => order(a.id, lifelines) - order(b.id, lifelines))
  const programs = used.filter((l) => l.role === 'program')
  const brokers = used.filter((l) => l.role === 'broker')
  const labels = [
    ...new Set([...programs.slice(0, 1), ...brokers, ...programs.slice(1)].map((l) => l.label)),
  ]
  const names = new Map<string, string>()
  const taken = new Set<string>()
  for (const label of labels) {
    const base = label.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, '') || 'all'
    let name = /^\d/.test(base) ? `p${base}` : base
    for (let n = 2; taken.has(name); n++) name = `${base}_${n}`
    taken.add(name)
    names.set(label, name)
  }
  return names
}

function order(id: string, lifelines: Map<string, LifelineEntry>): number {
  const at = [...lifelines.keys()].indexOf(id)
  return at < 0 ? lifelines.size : at
}

/**
 * The arrows of one step in an order that does not depend on timing: each program's arrows (to and
 * from it) in the order they happened, a message delivered only after the PUBLISH (or will) that
 * brought it, and otherwise the program that appeared first goes first.
 */
function causalOrder(packets: Arrow[], lifelines: Map<string, LifelineEntry>): Arrow[] {
  const program = (p: Arrow) => {
    const role = (id: string) => lifelines.get(id)?.role ?? 'program'
    return role(p.from) === 'program' ? p.from : role(p.to) === 'program' ? p.to : p.from
  }
  const chains = new Map<string, Arrow[]>()
  for (const p of packets) chains.set(program(p), [...(chains.get(program(p)) ?? []), p])
  const ranked = [...chains.keys()].sort((a, b) => order(a, lifelines) - order(b, lifelines))
  // A delivery (broker to program) waits for the latest PUBLISH before it that carried the same.
  const cause = new Map<Arrow, Arrow>()
  for (const [i, p] of packets.entries()) {
    const what = carried(p)
    const toProgram = lifelines.get(p.to)?.role !== 'broker'
    if (!what || !toProgram || p.kind !== 'packet' || p.act === 'retained') continue
    const from = packets
      .slice(0, i)
      .findLast(
        (q) =>
          carried(q) === what &&
          (lifelines.get(q.to)?.role === 'broker' || (q.kind === 'packet' && q.act)),
      )
    if (from) cause.set(p, from)
  }
  const done = new Set<Arrow>()
  const out: Arrow[] = []
  const head = (id: string) => chains.get(id)!.find((p) => !done.has(p))
  const ready = (p: Arrow | undefined) =>
    p !== undefined && (!cause.has(p) || done.has(cause.get(p)!))
  let current: string | undefined
  while (out.length < packets.length) {
    // An acknowledgement right after what it answers; then the messages just made deliverable;
    // then the first program that can go on. A cause that comes after its effect in its own chain
    // cannot be waited for: then the first program with arrows left goes on.
    const next =
      (current !== undefined && isReply(head(current)) ? current : undefined) ??
      ranked.find((id) => cause.has(head(id)!) && ready(head(id))) ??
      ranked.find((id) => ready(head(id))) ??
      ranked.find((id) => head(id) !== undefined)!
    const p = head(next)!
    done.add(p)
    out.push(p)
    current = next
  }
  return out
}

/** What becomes of a PUBLISH that reached no subscriber. */
function nobody(text: string): string {
  if (!text.endsWith(' retain')) return 'no subscriber: dropped'
  return / "" (q\d )?retain$/.test(text)
    ? 'no subscriber: deletes the retained message'
    : 'no subscriber: kept as the retained message'
}

/** Mermaid ends a message at `;` and reads `#` as an entity: written as entities. */
function entities(text: string): string {
  return text.replace(/[#;]/g, (c) => (c === '#' ? '#35;' : '#59;'))
}

/** Long notes broken at spaces into lines of about NOTE_CHARS. */
function wrap(text: string): string {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line && line.length + word.length + 1 > NOTE_CHARS) {
      lines.push(line)
      line = word
    } else line = line ? `${line} ${word}` : word
  }
  lines.push(line)
  return lines.join('<br/>')
}

/** A docs page's diagram: what play of which scenario it draws. */
export interface DiagramSpec extends DiagramOptions {
  scenario: string
}

/**
 * The marker above a docs page's generated diagram, `<!-- diagram: SCENARIO steps 1-2,4 [omit
 * connect,connack] -->`, read; undefined for any other line.
 */
export function diagramMarker(line: string): DiagramSpec | undefined {
  const m = line.match(/^<!-- diagram: ([\w-]+) steps ([\d,-]+)(?: omit ([a-z,]+))? -->$/)
  if (!m) return undefined
  const steps = m[2].split(',').flatMap((range) => {
    const [from, to = from] = range.split('-').map(Number)
    return Array.from({ length: to - from + 1 }, (_, i) => from + i)
  })
  return { scenario: m[1], steps, ...(m[3] && { omit: m[3].split(',') as PacketType[] }) }
}
