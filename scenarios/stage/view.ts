// The audience's view of a scenario: the stage's events (./stage.ts) as lines in the terminal. By
// default it shows what each program prints under its label, the narration and one tick per
// expectation, and leaves out what a room cannot use: how the stage proves things (its markers),
// the broker's own lines, temporary paths, process ids and claim IDs. --verbose shows every event,
// as check mode records it. It keeps the screen still while a prompt waits, and prints what a
// program receives after what its sender says of sending it.
import { tmpdir } from 'node:os'
import type { Event } from './scenario.ts'
import type { Piece, Terminal } from './terminal.ts'

/**
 * Bright colours for labels, all readable on a projector's black: no dark blue, and red is for
 * errors.
 */
const PALETTE = ['96', '95', '93', '92', '36', '35', '33']

/** A broker line about a client: the client id, then what happened. */
const CLIENT_LINE = /^client (\S+) (connected|disconnected|subscribed to .*|published (.*))$/

/** What a broker line says a client published: the payload, then the topic. */
const PUBLISHED = /^".*" to (\S+)(?: \(retained\))?$/s

/** The stage's temporary directories (Stage.tempDir()), which a room need not read. */
const TEMP_DIR = new RegExp(
  `${tmpdir().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/mqtt-by-example-\\w+`,
  'g',
)

/** A keepalive packet as the wire show's tap prints it. */
const PING = /^(client \d+ → broker|broker → client \d+) +PING(REQ|RESP) /

interface ViewOptions {
  verbose: boolean
  /**
   * Steps before this one play quietly (--from): their expectations hold, and the view says how
   * many.
   */
  from: number
}

export class View {
  /** Client ids the stage gave, to the labels they stand for. */
  private readonly labels = new Map<string, string>()
  /**
   * Programs that went without a goodbye (killed, or died): a publish in their name is their Last
   * Will.
   */
  private readonly gone = new Set<string>()
  /** Servers the experiment runs on (a broker, Redis): their log is for --verbose. */
  private readonly background = new Set<string>()
  private step = 0
  private quietChecks = 0
  /** What happened while a prompt waited: shown with the step that follows, folded. */
  private held: Event[] = []
  /**
   * Messages the broker got from a program that has not yet said it sent them: the program's label
   * and the topic. What other programs print meanwhile waits in `effects` until the sender has
   * said so: their pipes reach the stage in no fixed order, and the room reads the cause first.
   */
  private causes: { label: string; topic: string }[] = []
  private effects: Piece[] = []

  private readonly term: Terminal
  private readonly options: ViewOptions

  constructor(term: Terminal, options: ViewOptions) {
    this.term = term
    this.options = options
  }

  /** The number of the last step begun. */
  get lastStep(): number {
    return this.step
  }

  /**
   * Whether steps before --from are playing (what comes before the first step sets the scene, and
   * is seen).
   */
  get quiet(): boolean {
    return this.step > 0 && this.step < this.options.from
  }

  /**
   * Whether ticks name their claim (C6, S1): with --verbose, and in a log (CI, a file), where
   * someone reads them beside docs/claims.md; a room reads the tick's words.
   */
  private get claimIds(): boolean {
    return this.options.verbose || this.term.width === undefined
  }

  event(event: Event): void {
    if (event.kind === 'command' && event.id) this.labels.set(event.id, event.label)
    if (event.kind === 'command') this.gone.delete(event.label)
    if (event.kind === 'command' && event.background) this.background.add(event.label)
    if ((event.kind === 'stop' && event.signal === 'SIGKILL') || event.kind === 'died')
      this.gone.add(event.label)
    if (event.kind === 'step') this.step = event.number
    if (this.quiet && event.kind !== 'died') {
      if (event.kind === 'ok') this.quietChecks++
      return
    }
    if (this.term.prompting && event.kind !== 'step') {
      this.held.push(event)
      return
    }
    if (event.kind === 'step' && event.number === this.options.from && this.options.from > 1) {
      const steps = this.options.from === 2 ? 'step 1' : `steps 1 to ${this.options.from - 1}`
      this.term.print(
        { lead: '', text: '' },
        {
          lead: '  ',
          text: `(${steps} played without a word: ${this.quietChecks} expectations met)`,
        },
      )
    }
    this.show(event)
    if (event.kind === 'step') this.showHeld()
  }

  /** A wait that lasts: say so, so that the room knows the show goes on. */
  slow(label: string, what: string, ms: number): void {
    const awaited = this.options.verbose ? `${label} ${what}` : label
    this.term.print({
      lead: '  … ',
      text: `still waiting for ${awaited} (${ms / 1000} s)`,
      paintText: (s) => this.term.paint('93', s),
    })
  }

  /** The title of a scenario, as the show begins it. */
  heading(name: string, title: string): void {
    this.term.print({
      lead: '▶ ',
      text: `${name}: ${title}`,
      paintLead: this.bold,
      paintText: this.bold,
    })
  }

  /**
   * A line with a tick or a cross, as the show ends it, after what was held back for it (what
   * arrived while the last prompt waited).
   */
  result(ok: boolean, text: string): void {
    this.showHeld()
    this.release()
    const pieces = text.split('\n').map(
      (line, i): Piece =>
        i === 0
          ? {
              lead: ok ? '✓ ' : '✗ ',
              text: line,
              paintLead: (s) => this.term.paint(ok ? '1;92' : '1;91', s),
            }
          : { lead: '  ', text: line.trimStart(), indent: 4 },
    )
    this.term.print({ lead: '', text: '' }, ...pieces)
  }

  /**
   * What arrived while the prompt waited, now that the step has begun: keepalive pings folded into
   * one line, but for the last exchange, which a step may be about.
   */
  private showHeld(): void {
    const held = this.held
    this.held = []
    // --verbose keeps every one.
    const pings = this.options.verbose
      ? []
      : held.filter((e) => e.kind === 'line' && PING.test(e.text))
    const last = new Set([
      pings.findLast((e) => e.kind === 'line' && e.text.includes('PINGREQ')),
      pings.findLast((e) => e.kind === 'line' && e.text.includes('PINGRESP')),
    ])
    const folded = pings.filter((e) => !last.has(e))
    if (folded.length > 0) {
      const n = pings.filter((e) => e.kind === 'line' && e.text.includes('PINGREQ')).length
      this.say(`${n} keepalive pings while the prompt waited (PINGREQ, PINGRESP); the last one:`)
    }
    for (const event of held) if (!pings.includes(event) || last.has(event)) this.show(event)
  }

  private show(event: Event): void {
    if (event.kind === 'line' && event.label !== 'broker' && !event.marker) {
      const piece = this.render(event)
      if (!piece || Array.isArray(piece)) return
      if (this.causes.some((c) => c.label === event.label)) {
        this.term.print(piece)
        const at = this.causes.findIndex(
          (c) => c.label === event.label && event.text.includes(c.topic),
        )
        if (at >= 0) this.causes.splice(at, 1)
        if (this.causes.length === 0) this.release()
      } else if (this.causes.length > 0) this.effects.push(piece)
      else this.term.print(piece)
      return
    }
    if (event.kind === 'line' && event.label === 'broker') this.notePublish(event.text)
    if (event.kind !== 'line') this.release()
    const piece = this.render(event)
    if (piece) this.term.print(...(Array.isArray(piece) ? piece : [piece]))
  }

  /** A message a program sent, as the broker got it: what others print of it waits for its line. */
  private notePublish(text: string): void {
    const about = text.match(CLIENT_LINE)
    const topic = about?.[3]?.match(PUBLISHED)?.[1]
    const label = about && this.labels.get(about[1])
    if (topic && label && !this.gone.has(label)) this.causes.push({ label, topic })
  }

  /** Print what waited for its cause: the cause was printed, or the play has moved on. */
  private release(): void {
    this.causes = []
    const effects = this.effects
    this.effects = []
    if (effects.length > 0) this.term.print(...effects)
  }

  private say(text: string): void {
    this.term.print({ lead: '  · ', text })
  }

  private render(event: Event): Piece | Piece[] | undefined {
    const { verbose } = this.options
    // What a room need not read, shortened: the stage's temporary directories.
    const plain = (text: string) => (verbose ? text : text.replace(TEMP_DIR, '<tmp>'))
    switch (event.kind) {
      case 'step':
        return [
          { lead: '', text: '' },
          {
            lead: `Step ${event.number}. `,
            text: event.text,
            paintLead: this.bold,
            paintText: this.bold,
          },
        ]
      case 'command': {
        const id = verbose && event.id ? ` --id ${event.id}` : ''
        return this.typed(event.label, `$ ${plain(event.text)}${id}`)
      }
      case 'say':
        return event.detail && !verbose ? undefined : { lead: '  · ', text: plain(event.text) }
      case 'line': {
        if ((event.marker || event.detail) && !verbose) return undefined
        const log = this.background.has(event.label) && event.stream === 'stdout'
        if (log && !verbose) return undefined
        if (event.label === 'broker' && !verbose) {
          const will = this.will(event.text)
          return will ? { lead: '  · ', text: will } : undefined
        }
        const colour =
          event.stream === 'stderr'
            ? '1;91'
            : event.label === 'broker'
              ? '1'
              : `1;${labelColour(event.label)}`
        return {
          lead: `  [${event.label}] `,
          text: plain(event.text),
          paintLead: (s) => this.term.paint(colour, s),
        }
      }
      case 'ok':
        return {
          lead: '  ✓ ',
          text: event.claim && this.claimIds ? `${event.text} (${event.claim})` : event.text,
          paintLead: (s) => this.term.paint('1;92', s),
        }
      case 'stop': {
        if (event.signal === 'SIGINT') return this.typed(event.label, '^C')
        const pid = verbose ? String(event.pid) : `<${event.label}>`
        return this.typed(event.label, `$ kill -${event.signal.replace(/^SIG/, '')} ${pid}`)
      }
      case 'died':
        return { lead: '  ✗ ', text: event.text, paintLead: (s) => this.term.paint('1;91', s) }
    }
  }

  /**
   * What is typed in a program's terminal, under its label: "[alice] $ npx tsx ...", "[alice] ^C";
   * the label in brackets, as on its output, so that a filter such as # reads as no shell's prompt.
   */
  private typed(label: string, text: string): Piece {
    return {
      lead: `  [${label}] `,
      text,
      indent: 6,
      paintLead: (s) => this.term.paint(`1;${labelColour(label)}`, s),
      paintText: this.bold,
    }
  }

  /**
   * The one broker line a room needs, with the client named by its label: the Last Will of a
   * program that is gone, which no program can say itself. What else the broker says of its
   * clients, they print themselves.
   */
  private will(text: string): string | undefined {
    const about = text.match(CLIENT_LINE)
    const label = about && (this.labels.get(about[1]) ?? about[1])
    if (!label || about[3] === undefined || !this.gone.has(label)) return undefined
    return `${label} is gone, so the broker publishes its Last Will: ${about[3]}`
  }

  private readonly bold = (s: string) => this.term.paint('1', s)
}

function labelColour(label: string): string {
  let hash = 0
  for (const c of label) hash = (hash * 31 + c.charCodeAt(0)) >>> 0
  return PALETTE[hash % PALETTE.length]
}
