// The one flag parser of every program and script here (the demos, the broker, the shows, the
// soak): node:util parseArgs underneath, a --help written from the flags themselves, and any
// mistake on the command line ends the program with one line that points at --help.
import { parseArgs } from 'node:util'
import { fail, messageOf } from './cli.ts'

export interface Flag {
  type: 'string' | 'boolean'
  multiple?: boolean
  short?: string
  /** What the value stands for in --help: `--port N`. */
  arg?: string
  help: string
}

export interface Command {
  /** How it is started, up to its options: `npx tsx demos/wire/tap.ts`, `npm run broker --`. */
  invocation: string
  /** The first line of its --help. */
  description: string
  /**
   * The arguments it takes after its options, as --help names them (`[vitest arguments]`); none if
   * undefined.
   */
  positionals?: string
  /** Said after the options in --help. */
  notes?: string
}

export type Values<F extends Record<string, Flag>> = {
  [K in keyof F]?: F[K]['type'] extends 'boolean'
    ? boolean
    : F[K] extends { multiple: true }
      ? string[]
      : string
}

const HELP = { type: 'boolean', short: 'h', help: 'show this help' } satisfies Flag

/** Parse process.argv against `flags` (plus --help, which prints the help and exits 0). */
export function parseFlags<F extends Record<string, Flag>>(
  command: Command,
  flags: F,
): { values: Values<F>; positionals: string[] } {
  const all: Record<string, Flag> = { ...flags, help: HELP }
  let parsed: { values: Record<string, unknown>; positionals: string[] }
  try {
    parsed = parseArgs({
      options: all,
      allowPositionals: command.positionals !== undefined,
      strict: true,
    })
  } catch (error) {
    // parseArgs explains at length; the first sentence is the useful part.
    const hint = command.invocation.startsWith('npm run ')
      ? `${command.invocation} --help`
      : '--help'
    const said = messageOf(error).split('. ')[0].replace(/\.$/, '')
    // `--topic #` unquoted: the shell took # for a comment and dropped it, and all that followed.
    const quoting = /'--topic\b.*argument missing$/.test(said)
      ? "; to pass # or a filter that starts with it, quote it: '#'"
      : ''
    fail(`${said}${quoting}; see ${hint}`)
  }
  if (parsed.values.help) {
    console.log(helpText(command, all))
    process.exit(0)
  }
  return { values: parsed.values as Values<F>, positionals: parsed.positionals }
}

/** The width of the flags' column in --help; a longer flag has its help on the next line. */
const COLUMN = 20

function helpText(command: Command, flags: Record<string, Flag>): string {
  const rows = Object.entries(flags).map(([name, flag]) => {
    const left = `${flag.short ? `-${flag.short}, ` : ''}--${name}${flag.arg ? ` ${flag.arg}` : ''}`
    return left.length > COLUMN
      ? `  ${left}\n  ${' '.repeat(COLUMN)} ${flag.help}`
      : `  ${left.padEnd(COLUMN)} ${flag.help}`
  })
  const usage = [command.invocation, '[options]', command.positionals].filter(Boolean).join(' ')
  return [`usage: ${usage}`, command.description, `options:\n${rows.join('\n')}`, command.notes]
    .filter(Boolean)
    .join('\n\n')
}
