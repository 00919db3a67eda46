// The terminal a show plays in, as a room sees it on a projector: lines that fit its width, wrapped
// under a hanging indent and never mid-word; bold and bright colours only on a TTY (none with
// NO_COLOR); and, step by step, a prompt of its own that output arriving meanwhile goes above, with
// keys typed during a step thrown away rather than kept for the next prompt.

/** Columns when a terminal does not say how wide it is. */
const DEFAULT_COLUMNS = 80

export interface Piece {
  /** What comes before the text on its first line: "  [subscriber-1] ", say. */
  lead: string
  text: string
  /** Columns of indent on the lines after the first; the lead's width when undefined. */
  indent?: number
  /** How to paint the lead, and each line of the text. */
  paintLead?: (s: string) => string
  paintText?: (s: string) => string
}

export class Terminal {
  readonly colour: boolean
  private prompt?: string[]
  private waiting?: () => void
  private readonly keys: boolean

  /** `keys`: take the keyboard (raw mode), for prompts; only where standard input is a terminal. */
  constructor(options: { keys: boolean }) {
    this.colour = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR
    this.keys = options.keys && Boolean(process.stdin.isTTY)
    if (this.keys) {
      // Raw mode: no echo, and every key reaches us at once, to be dropped unless a prompt waits
      // for Enter.
      process.stdin.setRawMode(true)
      process.stdin.on('data', (keys: Buffer) => this.pressed(keys))
    }
  }

  /**
   * Columns to fit, or undefined (no wrapping) when the output is not a terminal but a file or a
   * pipe.
   */
  get width(): number | undefined {
    return process.stdout.isTTY ? process.stdout.columns || DEFAULT_COLUMNS : undefined
  }

  paint(code: string, text: string): string {
    return this.colour && text ? `\x1b[${code}m${text}\x1b[0m` : text
  }

  /** Whether a prompt waits for Enter. */
  get prompting(): boolean {
    return this.prompt !== undefined
  }

  /** Print pieces, each wrapped to the width; above the prompt, when one is waiting. */
  print(...pieces: Piece[]): void {
    const lines = pieces.flatMap((piece) => this.lines(piece))
    this.write(`${this.clearPrompt()}${lines.map((l) => `${l}\n`).join('')}${this.promptText()}`)
  }

  /** The lines of `piece` as they appear, wrapped to the width. */
  lines({ lead, text, indent, paintLead = (s) => s, paintText = (s) => s }: Piece): string[] {
    const width = this.width ?? Infinity
    // A hanging indent of half the width at most, and a lead that leaves too little room goes on a
    // line of its own.
    const hang = Math.min(indent ?? columns(lead), Math.floor(width / 2))
    const alone = columns(lead) > width - 12
    const body = wrap(text, this.width, alone ? hang : columns(lead), hang)
    // Paint the lead's words, not the spaces around them.
    const painted = lead.replace(/\S(.*\S)?/, (words) => paintLead(words))
    const lines = body.map(
      (line, i) => `${i === 0 && !alone ? painted : ' '.repeat(hang)}${paintText(line)}`,
    )
    return alone ? [painted.trimEnd(), ...lines] : lines
  }

  /**
   * Show `text` as a prompt on a line of its own, and resolve when Enter is pressed (after it
   * appeared).
   */
  async enter(text: string): Promise<void> {
    if (!this.keys) return
    // Keys typed before the prompt may still wait in the terminal's buffer: the poll phase of the
    // next turns of the event loop reads them, while no prompt waits, so they are dropped.
    for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve))
    // One column short of the width: a line that fills it leaves the cursor in a state terminals
    // disagree on.
    const width = this.width === undefined ? undefined : this.width - 1
    this.prompt = wrap(text, width, 2, 4)
      .map((line, i) => `${i === 0 ? '  ' : '    '}${line}`)
      .map((l) => this.paint('1;93', l))
    this.write(this.promptText())
    await new Promise<void>((resolve) => (this.waiting = resolve))
    this.write(this.clearPrompt())
    this.prompt = undefined
  }

  /** Take down a prompt still waiting, and give the keyboard back as it was. */
  release(): void {
    this.write(this.clearPrompt())
    this.prompt = undefined
    this.waiting = undefined
    if (this.keys && process.stdin.isTTY) {
      process.stdin.setRawMode(false)
      process.stdin.pause()
    }
  }

  private pressed(keys: Buffer): void {
    for (const key of keys) {
      // Raw mode turns off the terminal's own Ctrl-C: do what it would have done.
      if (key === 0x03) process.kill(process.pid, 'SIGINT')
      else if ((key === 0x0d || key === 0x0a) && this.waiting) {
        this.waiting()
        this.waiting = undefined
      }
    }
  }

  private promptText(): string {
    return this.prompt ? this.prompt.join('\n') : ''
  }

  /**
   * What moves the cursor back to the start of the prompt and clears it; nothing when there is
   * none.
   */
  private clearPrompt(): string {
    if (!this.prompt) return ''
    if (!process.stdout.isTTY) return '\n'
    const up = this.prompt.length - 1
    return `${up > 0 ? `\x1b[${up}A` : ''}\r\x1b[J`
  }

  private write(text: string): void {
    if (text) process.stdout.write(text)
  }
}

/**
 * Columns `text` takes: one per character (the output is plain text, with no wide characters to
 * speak of).
 */
export function columns(text: string): number {
  return [...text].length
}

/**
 * `text` in lines of at most `width` columns, the first `first` columns in, the others `hang`
 * columns in. Breaks between words; a word too long for a line (a topic, a URL) breaks after a /
 * or, failing that, where it must.
 */
function wrap(text: string, width: number | undefined, first: number, hang: number): string[] {
  if (width === undefined) return [text]
  const lines: string[] = []
  let line = ''
  let limit = Math.max(width - first, 1)
  const push = () => {
    lines.push(line)
    line = ''
    limit = Math.max(width - hang, 1)
  }
  for (const chunk of text.match(/ *\S+/g) ?? [text]) {
    if (line && columns(line) + columns(chunk) > limit) push()
    // Spaces that led to a break go with it; those at the very start are the text's own indent.
    let rest = line || lines.length === 0 ? chunk : chunk.trimStart()
    while (columns(line) + columns(rest) > limit) {
      const chars = [...rest]
      const slash = chars.slice(0, limit).lastIndexOf('/')
      const cut = slash >= limit / 3 ? slash + 1 : limit
      line = chars.slice(0, cut).join('')
      rest = chars.slice(cut).join('')
      push()
    }
    line += rest
  }
  lines.push(line)
  return lines
}
