// A show in a pseudo-terminal, as a room sees it (script(1) of util-linux), and a small model of
// the screen to read its output back: what test/shows/show-terminal.test.ts and
// test/shows/rows.test.ts hold the shows to.
import { spawn } from 'node:child_process'
import { ROOT } from '../../lib/build-cache.ts'
import { programArgs } from '../../scenarios/stage/bundle.ts'
import { shellQuote } from '../../scenarios/stage/proc.ts'
import { columns } from '../../scenarios/stage/terminal.ts'
import { Program } from '../helpers/processes.ts'

export const SCRIPT = '/usr/bin/script'

/**
 * Start `command` (a shell command line, run from the repository) in a pseudo-terminal `width`
 * columns wide and `height` rows high.
 */
export function inTerminal(
  command: string,
  env: NodeJS.ProcessEnv = {},
  { width = 80, height = 50 } = {},
): Program {
  const base: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm-256color', ...env }
  delete base.MQTT_URL
  if (!('NO_COLOR' in env)) delete base.NO_COLOR
  const child = spawn(
    SCRIPT,
    ['-qfec', `stty cols ${width} rows ${height}; exec ${command}`, '/dev/null'],
    { cwd: ROOT, env: base, stdio: ['pipe', 'pipe', 'pipe'] },
  )
  return new Program(child, command)
}

/**
 * A show's arguments, with its stage view on a free port unless they give one: shows that tests
 * play side by side would all take port 8080.
 */
export function freePortFor(args: string[]): string[] {
  return args.includes('--dashboard-port') ? args : [...args, '--dashboard-port', '0']
}

/**
 * The command line that starts the show of `scenario` from its bundle, as npm run demo:<scenario>
 * would.
 */
export function showCommand(scenario: string, args: string[] = []): string {
  return [process.execPath, ...programArgs(`scenarios/${scenario}.ts`), ...freePortFor(args)]
    .map(shellQuote)
    .join(' ')
}

/**
 * What a terminal `width` columns wide shows after `output`, every row since the first (none
 * scrolls away): text, carriage returns, line feeds, cursor up and clear to the end of the screen,
 * which is all a show writes; colours are left out. Text that would run past the last column is
 * kept on its line, so that a test sees the line was too long.
 */
export function screen(output: string, width = 80): string[] {
  const rows: string[][] = [[]]
  let row = 0
  let col = 0
  for (const token of output.match(/\x1b\[[\d;]*[A-Za-z]|\r|\n|[^\x1b\r\n]/gu) ?? []) {
    if (token === '\r') col = 0
    else if (token === '\n') rows[++row] ??= []
    else if (!token.startsWith('\x1b')) rows[row][col++] = token
    else if (token.endsWith('A')) row = Math.max(0, row - Number(token.slice(2, -1) || 1))
    else if (token.endsWith('J')) {
      rows[row].length = col
      rows.length = row + 1
    }
  }
  if (rows.length > 1 && rows.at(-1)!.length === 0) rows.pop()
  return rows
    .map((r) =>
      Array.from(r, (c) => c ?? ' ')
        .join('')
        .trimEnd(),
    )
    .map((line) => (columns(line) > width ? `${line} ← over ${width} columns` : line))
}

/** Rows a step of a show printed: from the Enter that began it to the next prompt. */
export interface StepRows {
  /** 0 for what comes before the first prompt: the show's heading, and what sets the scene. */
  step: number
  rows: number
  /** The rows themselves, as the screen shows them. */
  lines: string[]
}

/**
 * Play the show running in `show` (started with --step) to its end, pressing Enter at each prompt
 * once it stood `pauseMs` on the screen (a speaker talks before going on), and return the rows
 * each step printed, as the screen model shows them when the next prompt waits: lines that arrive
 * while a prompt waits count with the step above it. `wait` waits for a line containing the text,
 * printed after the first `from` characters, as Program.waitForLine does.
 */
export async function playStepRows(
  show: Program,
  { pauseMs = 0, wait = (text: string, from: number) => show.waitForLine(text, undefined, from) },
): Promise<StepRows[]> {
  const steps: StepRows[] = []
  let above: string[] = []
  let from = 0
  for (let step = 0; ; step++) {
    const prompt = await wait('Enter: ', from)
    if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs))
    const rows = screen(show.stdout)
    const at = rows.findLastIndex((row) => row.startsWith('  Enter: '))
    const now = rows.slice(0, at)
    steps.push({ step, rows: now.length - above.length, lines: now.slice(above.length) })
    above = now
    from = show.stdout.length
    show.child.stdin!.write('\r')
    if (prompt.includes('Enter: end ')) return steps
  }
}
