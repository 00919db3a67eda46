// The audience's view of a scenario: the stage's events (./stage.ts) as lines in the terminal. By
// default it shows what each program prints under its label, the narration and one tick per
// expectation, and leaves out how the stage proves things (its markers) and the broker lines that
// repeat what a client says itself; --verbose shows every event, as check mode records it.
import type { Event } from './scenario.ts'
import type { Piece, Terminal } from './terminal.ts'

/**
 * Bright colours for labels, all readable on a projector's black: no dark blue, and red is for
 * errors.
 */
const PALETTE = ['96', '95', '93', '92', '36', '35', '33']

/** A broker line about a client: the client id, then what happened. */
const CLIENT_LINE = /^client (\S+) (connected|disconnected|subscribed to .*|published (.*))$/

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
  private step = 0
  private quietChecks = 0

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

  event(event: Event): void {
    if (event.kind === 'command' && event.id) this.labels.set(event.id, event.label)
    if (event.kind === 'command') this.gone.delete(event.label)
    if ((event.kind === 'stop' && event.signal === 'SIGKILL') || event.kind === 'died')
      this.gone.add(event.label)
    if (event.kind === 'step') this.step = event.number
    if (this.quiet && event.kind !== 'died') {
      if (event.kind === 'ok') this.quietChecks++
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
    const piece = this.render(event)
    if (piece) this.term.print(...(Array.isArray(piece) ? piece : [piece]))
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

  /** A line with a tick or a cross, as the show ends it. */
  result(ok: boolean, text: string): void {
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

  private render(event: Event): Piece | Piece[] | undefined {
    const { verbose } = this.options
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
        return {
          lead: '  ',
          text: `${event.label}$ ${event.text}${id}`,
          indent: 6,
          paintText: this.bold,
        }
      }
      case 'say':
        return event.detail && !verbose ? undefined : { lead: '  · ', text: event.text }
      case 'line': {
        if (event.marker && !verbose) return undefined
        const text = event.label === 'broker' && !verbose ? this.brokerLine(event.text) : event.text
        if (text === undefined) return undefined
        const colour =
          event.stream === 'stderr'
            ? '1;91'
            : event.label === 'broker'
              ? '1'
              : `1;${labelColour(event.label)}`
        return { lead: `  [${event.label}] `, text, paintLead: (s) => this.term.paint(colour, s) }
      }
      case 'ok':
        return {
          lead: '  ✓ ',
          text: event.claim ? `${event.text} (${event.claim})` : event.text,
          paintLead: (s) => this.term.paint('1;92', s),
        }
      case 'stop': {
        const keys =
          event.signal === 'SIGINT'
            ? '^C'
            : `kill -${event.signal.replace(/^SIG/, '')} ${event.pid}`
        return { lead: '  ', text: `${event.label}$ ${keys}`, indent: 6, paintText: this.bold }
      }
      case 'died':
        return { lead: '  ✗ ', text: event.text, paintLead: (s) => this.term.paint('1;91', s) }
    }
  }

  /**
   * What the audience needs of a broker line: that it is ready, and what happens to a client that
   * cannot say so itself (the Last Will of one that is gone, a client thrown off), with the client
   * named by its label. Connects, subscriptions and publishes are what the clients print
   * themselves.
   */
  private brokerLine(text: string): string | undefined {
    // Mosquitto's log (the security show, with --mosquitto): each line stamped with the time, and a
    // line for every connection; what happens to a client, the client prints itself.
    if (/^\d{10}: /.test(text)) return undefined
    const about = text.match(CLIENT_LINE)
    if (!about)
      return text.replace(/^client (\S+)/, (_, id: string) => `client ${this.labels.get(id) ?? id}`)
    const label = this.labels.get(about[1]) ?? about[1]
    if (about[3] !== undefined && this.gone.has(label))
      return `${label} is gone, so its Last Will goes out: ${about[3]}`
    return undefined
  }

  private readonly bold = (s: string) => this.term.paint('1', s)
}

function labelColour(label: string): string {
  let hash = 0
  for (const c of label) hash = (hash * 31 + c.charCodeAt(0)) >>> 0
  return PALETTE[hash % PALETTE.length]
}
