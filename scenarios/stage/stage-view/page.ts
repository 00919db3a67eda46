// The stage view's page, run in the browser (../stage-view.ts bundles it with esbuild): it reads
// the show's trace from the feed at /feed and draws each play as a sequence diagram, a lifeline per
// program and broker, an arrow per packet, a band per step, a tick beside the arrow it proves. It
// draws once per animation frame whatever arrived meanwhile, so that a burst never makes it lag,
// and keeps the newest step in view until the speaker scrolls back.
import type {
  EndEntry,
  LifelineEntry,
  PacketEntry,
  PlayEntry,
  RefusalEntry,
  TickEntry,
  TraceEntry,
} from '../trace.ts'
import { publishedMessage } from '../trace.ts'
import type { FeedMessage } from '../stage-view.ts'

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const plays = byId<HTMLElement>('plays')
const waiting = byId<HTMLParagraphElement>('waiting')
const status = byId<HTMLParagraphElement>('status')
const now = byId<HTMLParagraphElement>('now')
const links = byId<HTMLElement>('links')
const followButton = byId<HTMLButtonElement>('follow')

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const made = document.createElement(tag)
  if (className) made.className = className
  made.append(...children)
  return made
}

/**
 * A column of the diagram. A program that runs again (a publisher run once per step, a subscriber
 * restarted) is a new lifeline in the trace, and takes the column its earlier run left.
 */
interface Lane {
  entry: LifelineEntry
  /** Its number in the play, in the order columns were made: the name of its CSS variable. */
  key: number
  /** The lifeline in it now. */
  id: string
  ended: boolean
  head: HTMLElement
}

/** One row of the diagram that later entries may change: an arrow, or pings folded into one. */
interface ArrowRow {
  row: HTMLElement
  label: HTMLElement
  ticks: HTMLElement
  /** For folded pings: the lanes they go between, and the count of each seq they stand for. */
  pings?: { pair: string; counts: Map<number, number> }
}

const ACTS = { will: 'Last Will', retained: 'retained copy', nobody: 'reaches no one' }
const ENDS = { exit: 'exited', stop: 'stopped', kill: 'killed' }
const PINGS = new Set(['pingreq', 'pingresp'])
/** The widest end of a lifeline ("✕ stopped", .end in page.css) and a gap, in rem. */
const END_REM = 6.4
/** The least room between two names in a row, in rem. */
const GAP_REM = 0.4

/** One play: its own section, lifelines and rows. */
class Play {
  readonly section: HTMLElement
  private readonly heads = element('div', 'heads')
  private readonly rows = element('div', 'rows')
  /** Where new rows go: a step's own block from its band on, so that its band sticks only in it. */
  private group = this.rows
  private readonly columns: Lane[] = []
  /** The column of each lifeline. */
  private readonly lanes = new Map<string, Lane>()
  private readonly arrows = new Map<number, ArrowRow>()
  /** The row the next lifeline start or end mark may join, and the ping row a ping may join. */
  private last?: { kind: 'starts' | 'ends' | 'pings'; row: HTMLElement; pings?: ArrowRow }
  private hasPackets = false
  /** Who last published each message (topic and payload) to a broker: whose a delivery is. */
  private readonly publishers = new Map<string, string>()
  /** The lifelines that live now, drawn for a row, until one begins or ends. */
  private alive?: HTMLElement
  /** Whether a lifeline came since the names were laid out. */
  private moved = false
  stepText = ''
  readonly entry: PlayEntry

  constructor(entry: PlayEntry) {
    this.entry = entry
    const heading = element(
      'header',
      'play-heading',
      element('h2', '', entry.name),
      element('p', 'play-title', entry.title),
    )
    this.section = element('section', 'play', heading)
    this.section.dataset.name = entry.name
    if (entry.source === 'programs')
      heading.append(
        element(
          'p',
          'unseen',
          entry.unseen ?? 'The broker is not ours: only what the programs print is drawn.',
        ),
      )
    this.section.append(this.heads, this.rows)
    this.section.style.setProperty('--n', '1')
    this.section.style.setProperty('--rows', '1')
    this.section.style.setProperty('--end-rows', '1')
  }

  lifeline(entry: LifelineEntry): void {
    const same = (lane: Lane) =>
      lane.ended &&
      lane.entry.label === entry.label &&
      lane.entry.role === entry.role &&
      Boolean(lane.entry.stage) === Boolean(entry.stage)
    let lane = this.columns.find(same)
    if (lane) {
      lane.ended = false
      lane.id = entry.id
      lane.head.classList.remove('ended')
      lane.head.classList.add('new')
    } else {
      const key = this.columns.length
      const head = element('span', `head ${entry.role} new`, entry.label)
      if (entry.stage) head.classList.add('faint')
      head.style.setProperty('--x', `var(--lane-${key})`)
      // Set now, though layOut() decides them: a page that opened late draws the same HTML.
      head.style.setProperty('--row', '0')
      head.style.setProperty('--shift', '0px')
      this.section.style.setProperty(`--end-row-${key}`, '0')
      this.heads.append(head)
      lane = { entry, key, id: entry.id, ended: false, head }
      this.columns.push(lane)
      this.place()
    }
    this.lanes.set(entry.id, lane)
    this.alive = undefined
    const key = lane.key
    if (!this.hasPackets) return
    // A program that starts in the middle of the play: a cap where its line begins. Its name is
    // in the rows of names, which stay in view, never here, where the step's band would hide it.
    const row = this.joinable('starts')
    const mark = element('span', `start ${entry.role}`)
    if (entry.stage) mark.classList.add('faint')
    mark.style.setProperty('--x', `var(--lane-${key})`)
    row.append(mark)
  }

  end(entry: EndEntry): void {
    const lane = this.lanes.get(entry.id)
    if (!lane || lane.ended || lane.id !== entry.id) return
    const row = this.joinable('ends')
    lane.ended = true
    this.alive = undefined
    lane.head.classList.remove('new')
    lane.head.classList.add('ended')
    const mark = element('span', `end ${entry.how}`, `✕ ${ENDS[entry.how]}`)
    mark.style.setProperty('--x', `var(--lane-${lane.key})`)
    mark.style.setProperty('--row', `var(--end-row-${lane.key})`)
    mark.dataset.id = entry.id
    row.append(mark)
  }

  step(number: number, title: string): void {
    // New is what started in this step.
    for (const lane of this.columns) lane.head.classList.remove('new')
    this.stepText = `step ${number} of ${this.entry.steps}`
    this.group = element('div', 'step-rows')
    this.rows.append(this.group)
    const row = this.row(
      'step',
      element('span', 'step-count', this.stepText),
      // A flag (--cafile) stays whole: a line that ends in "--" says nothing to the room.
      element(
        'span',
        'step-title',
        ...title
          .split(/(--?[\w-]+)/)
          .map((part, i) => (i % 2 ? element('span', 'flag', part) : part)),
      ),
    )
    row.dataset.step = String(number)
    this.stepText += `: ${title}`
  }

  packet(entry: PacketEntry): void {
    this.hasPackets = true
    const known = this.arrows.get(entry.seq)
    if (known?.pings || (!known && PINGS.has(entry.type))) this.ping(entry, known)
    else if (known) this.fill(known, entry)
    else this.add(entry)
  }

  private add(entry: PacketEntry): void {
    const classes = entry.act ? [`act-${entry.act}`] : []
    if (this.isStages(entry)) classes.push('stage')
    const arrow = this.arrow(entry, classes.join(' '))
    this.arrows.set(entry.seq, arrow)
    this.fill(arrow, entry)
  }

  /**
   * Whether an arrow is the stage's own (its client's packets, and the copies of its markers the
   * broker delivers): drawn faintly, a proof rather than the lesson.
   */
  private isStages(entry: PacketEntry): boolean {
    const stage = (id: string | undefined) => id !== undefined && this.lanes.get(id)?.entry.stage
    const message = publishedMessage(entry)
    const toBroker = this.lanes.get(entry.to)?.entry.role === 'broker'
    if (message !== undefined && toBroker) this.publishers.set(message, entry.from)
    if (stage(entry.from) || stage(entry.to)) return true
    if (message === undefined || toBroker || entry.act === 'retained') return false
    return stage(this.publishers.get(message)) === true
  }

  /**
   * A connection refused before MQTT: an arrow from the program to the broker that ends in a
   * refusal mark (page.css), with why.
   */
  refusal(entry: RefusalEntry): void {
    this.hasPackets = true
    const arrow = this.arrow({ ...entry, type: 'refusal' }, '')
    arrow.row.dataset.seq = String(entry.seq)
    arrow.label.replaceChildren(element('b', 'act', 'refused'), ' ', entry.reason)
    arrow.label.title = `${entry.listener}, ${(entry.at / 1000).toFixed(3)} s into the play`
    this.arrows.set(entry.seq, arrow)
  }

  tick(entry: TickEntry): void {
    const tick = element('p', 'tick', `✓ ${entry.text}`)
    const arrow = entry.after === undefined ? undefined : this.arrows.get(entry.after)
    if (arrow) arrow.ticks.append(tick)
    else this.row('ticked', tick)
  }

  result(ok: boolean, text: string): void {
    this.row(ok ? 'result ok' : 'result failed', `${ok ? '✓' : '✗'} ${text}`)
  }

  /** The lanes from left to right: brokers first, then programs, the stage's own clients last. */
  private order(): Lane[] {
    const rank = (lane: Lane) => (lane.entry.role === 'broker' ? 0 : lane.entry.stage ? 2 : 1)
    return [...this.columns].sort((a, b) => rank(a) - rank(b) || a.key - b.key)
  }

  /** Lay the lifelines out; their names at the next frame, by layOut(). */
  private place(): void {
    for (const [position, lane] of this.order().entries())
      this.section.style.setProperty(`--lane-${lane.key}`, String(position))
    this.section.style.setProperty('--n', String(this.columns.length))
    this.moved = true
  }

  /**
   * Lay the names out in as few rows as keep each whole and apart from the others: each above its
   * lane, or as near as the edge of the page lets it, and every rows-th from the left in one row.
   * Many lifelines leave a name less room than it needs (the mqtt5 show has 16): its row leaves it
   * the room of as many lanes as there are rows. The ends of lifelines, all about as wide, take as
   * many rows as keep them apart. Measured, so that any names at any width fit: once per frame in
   * which lifelines came, and when the page's width changes (`always`).
   */
  layOut(always = false): void {
    if (!this.moved && !always) return
    this.moved = false
    const rem = Number.parseFloat(getComputedStyle(document.documentElement).fontSize)
    const width = this.heads.clientWidth
    const order = this.order()
    // offsetLeft is where page.css centres a name (its `left`); its shift is a transform, unseen.
    const boxes = order.map(({ head }) => {
      const left = head.offsetLeft - head.offsetWidth / 2
      const shifted = Math.min(
        Math.max(left, GAP_REM * rem),
        width - GAP_REM * rem - head.offsetWidth,
      )
      head.style.setProperty('--shift', `${shifted - left}px`)
      return { left: shifted, right: shifted + head.offsetWidth }
    })
    const apart = (a: { right: number }, b: { left: number }) => a.right + GAP_REM * rem <= b.left
    let rows = 1
    while (boxes.some((box, i) => i >= rows && !apart(boxes[i - rows]!, box))) rows++
    const lane = order.length > 1 ? order[1]!.head.offsetLeft - order[0]!.head.offsetLeft : width
    const endRows = Math.ceil((END_REM * rem) / lane)
    for (const [position, { head, key }] of order.entries()) {
      head.style.setProperty('--row', String(position % rows))
      this.section.style.setProperty(`--end-row-${key}`, String(position % endRows))
    }
    this.section.style.setProperty('--rows', String(rows))
    this.section.style.setProperty('--end-rows', String(endRows))
  }

  /** The x of a lane, as the CSS variable that place() sets. */
  private x(id: string): { key: number; at: number } {
    const lane = this.lanes.get(id)
    if (lane) return { key: lane.key, at: this.positionOf(lane) }
    // A packet of a lifeline the trace never announced: it gets one, so that nothing is lost.
    this.lifeline({ kind: 'lifeline', id, label: id, role: 'program' })
    return this.x(id)
  }

  private positionOf(lane: Lane): number {
    return Number(this.section.style.getPropertyValue(`--lane-${lane.key}`))
  }

  /** A new arrow row between `from` and `to`; the relative order of lanes never changes. */
  private arrow(entry: { from: string; to: string; type: string }, extra: string): ArrowRow {
    const from = this.x(entry.from)
    const to = this.x(entry.to)
    const [lo, hi] = from.at <= to.at ? [from, to] : [to, from]
    const label = element('span', 'label')
    const ticks = element('div', 'ticks')
    const line = element('span', 'line')
    const row = this.row(
      `arrow ${entry.type} ${from.at <= to.at ? 'right' : 'left'} ${extra}`,
      element('div', 'arrow-text', label),
      line,
      ticks,
    )
    row.style.setProperty('--lo', `var(--lane-${lo.key})`)
    row.style.setProperty('--hi', `var(--lane-${hi.key})`)
    return { row, label, ticks }
  }

  private fill(arrow: ArrowRow, entry: PacketEntry): void {
    arrow.row.dataset.seq = String(entry.seq)
    const parts: (Node | string)[] = []
    // A message that reached no one ends with it; the broker's own acts begin with theirs.
    const act = entry.act && element('b', 'act', ACTS[entry.act])
    if (act && entry.act !== 'nobody') parts.push(act, ' ')
    parts.push(entry.text)
    if (act && entry.act === 'nobody') parts.push(' ', act)
    if (entry.count > 1) parts.push(' ', element('b', 'count', `×${entry.count}`))
    arrow.label.replaceChildren(...parts)
    arrow.label.title = `${(entry.at / 1000).toFixed(3)} s into the play`
  }

  /** Pings between the same program and broker, one after the other, fold into one mark. */
  private ping(entry: PacketEntry, known?: ArrowRow): void {
    const pair = [entry.from, entry.to].sort().join(' ')
    let arrow = known
    if (!arrow && this.last?.kind === 'pings' && this.last.pings?.pings?.pair === pair)
      arrow = this.last.pings
    if (!arrow) {
      arrow = this.arrow({ ...entry, type: 'pings' }, 'both')
      arrow.pings = { pair, counts: new Map() }
      this.last = { kind: 'pings', row: arrow.row, pings: arrow }
    }
    this.arrows.set(entry.seq, arrow)
    const pings = arrow.pings!
    pings.counts.set(entry.seq * (entry.type === 'pingreq' ? 1 : -1), entry.count)
    let requests = 0
    let responses = 0
    for (const [seq, count] of pings.counts)
      if (seq > 0) requests += count
      else responses += count
    const rounds = Math.max(requests, responses)
    const parts: (Node | string)[] = ['keepalive: PINGREQ, PINGRESP']
    if (rounds > 1) parts.push(' ', element('b', 'count', `×${rounds}`))
    arrow.label.replaceChildren(...parts)
    arrow.row.dataset.seq = [...pings.counts.keys()].map(Math.abs).join(' ')
  }

  /** The last row if it is of `kind` (starts or ends), else a new one. */
  private joinable(kind: 'starts' | 'ends'): HTMLElement {
    if (this.last?.kind === kind) return this.last.row
    const row = this.row(kind)
    this.last = { kind, row }
    return row
  }

  /** A new row at the end, with the lifelines that live at this point drawn through it. */
  private row(className: string, ...children: (Node | string)[]): HTMLElement {
    // The same lifelines live through most rows: copied, they cost a fraction of being made.
    if (!this.alive) {
      this.alive = element('div', 'lanes')
      for (const lane of this.columns) {
        if (lane.ended) continue
        const line = element('i', lane.entry.role)
        if (lane.entry.stage) line.classList.add('faint')
        line.style.setProperty('--x', `var(--lane-${lane.key})`)
        this.alive.append(line)
      }
    }
    const row = element('div', `row ${className}`, this.alive.cloneNode(true), ...children)
    this.group.append(row)
    this.last = undefined
    return row
  }
}

let current: Play | undefined
/** Every play on the page, the current one last. */
let shown: Play[] = []
let following = true
/** What the feed sent since the last frame. */
let queue: (FeedMessage | 'reset')[] = []
/** Whether render() is due at the next animation frame. */
let scheduled = false
let state: 'connecting' | 'waiting' | 'live' | 'ended' | 'lost' = 'connecting'

function showState(next: typeof state): void {
  state = next
  status.dataset.state = next
  status.textContent = {
    connecting: 'connecting to the show…',
    waiting: 'connected; waiting for the show to begin…',
    live: 'live',
    ended: 'the show has ended',
    lost: 'the show is gone; trying again every second…',
  }[next]
  waiting.textContent =
    next === 'waiting' ? 'Connected: the show is starting…' : 'Connecting to the show…'
}

function draw(entry: TraceEntry): void {
  if (entry.kind === 'play') {
    // The pages of the play before end with it.
    links.replaceChildren()
    current = new Play(entry)
    shown.push(current)
    plays.append(current.section)
    waiting.hidden = true
    return
  }
  // Every entry before the first play belongs to none; the stage sends the play first.
  if (!current) return
  if (entry.kind === 'lifeline') current.lifeline(entry)
  else if (entry.kind === 'end-of-life') current.end(entry)
  else if (entry.kind === 'step') current.step(entry.number, entry.title)
  else if (entry.kind === 'packet') current.packet(entry)
  else if (entry.kind === 'refusal') current.refusal(entry)
  else if (entry.kind === 'tick') current.tick(entry)
  else if (entry.kind === 'result') current.result(entry.ok, entry.text)
}

/** Draw everything that arrived since the last frame, then keep the newest in view. */
function render(): void {
  scheduled = false
  const messages = queue
  queue = []
  for (const message of messages) {
    if (message === 'reset') {
      plays.replaceChildren(waiting)
      links.replaceChildren()
      waiting.hidden = false
      current = undefined
      shown = []
      showState('waiting')
    } else if ('link' in message) {
      const link = element('a', 'link', `${message.link.title} ↗`)
      link.href = message.link.url
      link.target = '_blank'
      link.rel = 'noopener'
      links.append(link)
    } else draw(message.entry)
  }
  for (const play of shown) play.layOut()
  if (current) {
    if (state === 'waiting') showState('live')
    now.textContent = [current.entry.name, current.stepText].filter(Boolean).join(' · ')
  }
  // The feed may end before its last entries are drawn: a show that has ended is not lost.
  if (state === 'lost' && hasEnded()) showState('ended')
  if (following) scrollToEnd()
}

/** Where the page last scrolled itself to: a scroll above it is the speaker's. */
let scrolledTo = 0

function scrollToEnd(): void {
  const page = document.scrollingElement!
  page.scrollTop = page.scrollHeight
  scrolledTo = page.scrollTop
}

const hasEnded = () => plays.querySelector('.play:last-of-type .result') !== null

function follow(on: boolean): void {
  following = on
  followButton.hidden = on
  if (on) scrollToEnd()
}

function receive(message: FeedMessage | 'reset'): void {
  if (message === 'reset') queue = []
  queue.push(message)
  if (scheduled) return
  scheduled = true
  requestAnimationFrame(render)
}

const feed = new EventSource('/feed')
feed.addEventListener('reset', () => receive('reset'))
feed.onmessage = (event: MessageEvent<string>) => receive(JSON.parse(event.data) as FeedMessage)
feed.onerror = () => {
  showState(hasEnded() ? 'ended' : state === 'connecting' ? 'connecting' : 'lost')
}

// Scrolled up by the speaker: stop following; back at the end: follow again. Rows drawn out of
// sight take their height only once in sight, so the end moves after the page scrolled to it: a
// scroll that is not above where the page went is not the speaker's, and the page goes on.
addEventListener('scroll', () => {
  const page = document.scrollingElement!
  const atEnd = page.scrollHeight - page.scrollTop - page.clientHeight < 8
  if (following && !atEnd && page.scrollTop >= scrolledTo - 8) scrollToEnd()
  else if (atEnd !== following) follow(atEnd)
})
addEventListener('resize', () => {
  for (const play of shown) play.layOut(true)
})
followButton.addEventListener('click', () => follow(true))
addEventListener('keydown', (event) => {
  if (event.key === 'f' || event.key === 'F' || event.key === 'End') {
    event.preventDefault()
    follow(true)
  }
})
