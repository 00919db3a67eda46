// The shows in a real terminal, as a speaker runs them in front of a room: a pseudo-terminal 80
// columns wide (script(1) of util-linux), its output read back through a small model of the screen.
// Every line fits, no marker and no made-up client id is in sight, colours are bold or bright, keys
// typed during a step do not answer the next prompt, and the dashboard stays to the end. That every
// show passes with both cores busy is what `npm run soak -- --load` proves, for the whole suite.
// Skipped in one line where script(1) is not installed.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { $, ps } from 'zx'
import { programArgs } from '../../scenarios/stage/bundle.ts'
import { shellQuote } from '../../scenarios/stage/proc.ts'
import { ROOT } from '../../lib/build-cache.ts'
import { freePort, isListening, Program } from '../helpers/processes.ts'
import { joined } from '../helpers/regexp.ts'
import { freePortFor, inTerminal, SCRIPT, screen, showCommand } from './screen.ts'
import { Feed } from '../stage-view/feed.ts'

/**
 * Long enough for a show on a machine much slower than this one: a show waits up to a minute for
 * any one thing.
 */
const SHOW_MS = 240_000
/**
 * One wait in a show: past the minute a show itself waits for anything before it fails, and well
 * inside SHOW_MS, so that a hung wait is named.
 */
const STEP_MS = 90_000

/**
 * What runs in a pseudo-terminal: a test that fails while a show waits for Enter must not leave it
 * waiting.
 */
const inTerminals: Program[] = []
afterEach(async () => {
  for (const program of inTerminals.splice(0)) {
    if (program.child.exitCode !== null || program.child.signalCode !== null) continue
    // script(1) gone, the terminal closes: the show gets SIGHUP, and its programs lose their
    // lifeline.
    program.child.kill('SIGKILL')
    await program.finish().catch(() => undefined)
  }
})

/** inTerminal(), its program ended after the test if it is still running. */
function inTerminalTest(command: string, env: NodeJS.ProcessEnv = {}): Program {
  const program = inTerminal(command, env)
  inTerminals.push(program)
  return program
}

/**
 * The show of `scenario` started from its bundle, as npm run demo:<scenario> would, its output not
 * a terminal.
 */
function direct(scenario: string, args: string[] = []): Program {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' }
  delete env.MQTT_URL
  return new Program(
    spawn(process.execPath, [...programArgs(`scenarios/${scenario}.ts`), ...freePortFor(args)], {
      cwd: ROOT,
      env,
    }),
    `${scenario} ${args.join(' ')}`,
  )
}

const tooWide = (lines: string[]) => lines.filter((l) => l.includes(' ← over '))

/**
 * Answer the prompt of each step up to `last` of the show whose output begins after the first
 * `from` characters with Enter, pressed twice at once as a hurried speaker does: the second Enter
 * must not answer the next prompt. Returns where the output stood at each Enter. Keys typed while a
 * step runs are typed by `during`, in a step it holds open: in a step the test does not hold, keys
 * it sent once it saw the step begin could reach the show after that step ended (a busy machine
 * delays the test, and script(1) passing the keys on), where they would rightly answer the next
 * prompt.
 */
async function answerSteps(
  show: Program,
  from: number,
  last: number,
  hooks: { before?(step: number): Promise<void>; during?(step: number): Promise<void> } = {},
): Promise<Map<number, number>> {
  const answered = new Map<number, number>()
  for (let step = 1; step <= last; step++) {
    await waitInShow(show, `Enter: step ${step}, `, from)
    answered.set(step, show.stdout.length)
    await hooks.before?.(step)
    // One write, so the show reads the keys together: Enter, then a key and Enter twice more.
    show.child.stdin!.write('\rx\r\r')
    await waitInShow(show, `Step ${step}.`, from)
    await hooks.during?.(step)
  }
  return answered
}

/**
 * show.waitForLine, whose failure also says what state the show's processes were in (ps: STAT,
 * WCHAN).
 */
async function waitInShow(show: Program, text: string, from = 0): Promise<string> {
  try {
    return await show.waitForLine(text, STEP_MS, from)
  } catch (error) {
    const pids = [
      show.pid,
      ...(await ps.tree({ pid: show.pid, recursive: true })).map((p) => p.pid),
    ].join(',')
    const state = await $({
      nothrow: true,
      quiet: true,
    })`ps -o pid,stat,wchan:24,etime,args --forest -p ${pids}`
    throw new Error(`${(error as Error).message}\nthe show's processes then:\n${state.stdout}`)
  }
}

// Two shows in a terminal prove what only a terminal shows: the width, the colours, the prompts and
// the keys. What each experiment prints is checked by its scenario suite, every run.
describe.skipIf(!existsSync(SCRIPT))('shows in a terminal 80 columns wide', () => {
  it(
    'retained then wildcards, step by step (npm run demo -- retained wildcards --step): each ' +
      'line within 80 columns, no marker, no made-up id, bright colours; keys typed during a ' +
      'step are dropped, each prompt names its step, a wait that lasts says so, one more Enter ' +
      'ends the show',
    async () => {
      const show = inTerminalTest(showCommand('index', ['retained', 'wildcards', '--step']))
      const retained = await answerSteps(show, 0, 8)
      await waitInShow(
        show,
        'Enter: end retained (every program and the broker stop), then wildcards',
      )
      const endRetained = show.stdout.length
      show.child.stdin!.write('\r')
      // Step 3 waits for home/living_room/light to print the message it publishes; frozen, it
      // cannot.
      let frozen: number | undefined
      const wildcards = await answerSteps(show, endRetained, 10, {
        async before(step) {
          if (step !== 3) return
          const subscriber = (await ps.tree({ pid: show.pid, recursive: true })).find((p) =>
            p.arguments.join(' ').includes('--topic home/living_room/light '),
          )
          expect(subscriber, 'the subscriber to home/living_room/light').toBeDefined()
          frozen = Number(subscriber!.pid)
          process.kill(frozen, 'SIGSTOP')
        },
        async during(step) {
          if (step !== 3) return
          try {
            // Typed while the step cannot end: none of it may answer the next prompt.
            show.child.stdin!.write('x\r\r')
            await waitInShow(show, 'still waiting for home/living_room/light (5 s)', endRetained)
          } finally {
            process.kill(frozen!, 'SIGCONT')
          }
        },
      })
      await waitInShow(show, 'Enter: end the show')
      const end = show.stdout.length
      show.child.stdin!.write('\r')
      const result = await show.finish(STEP_MS)
      expect(result.code, result.stdout).toBe(0)
      // The frozen subscriber: the show said it was still waiting, and went on once it could.
      expect(screen(result.stdout)).toContain(
        '  ✓ the exact filter home/living_room/light got its own topic',
      )
      // Each step began after the Enter sent for its prompt, each show ended after its last one.
      const at = (text: string, from = 0) => result.stdout.indexOf(text, from)
      for (const [step, offset] of retained) expect(at(`Step ${step}.`)).toBeGreaterThan(offset)
      expect(at('retained: every expectation met')).toBeGreaterThan(endRetained)
      for (const [step, offset] of wildcards)
        expect(at(`Step ${step}.`, endRetained)).toBeGreaterThan(offset)
      expect(at('wildcards: every expectation met')).toBeGreaterThan(end)

      const lines = screen(result.stdout)
      expect(tooWide(lines)).toEqual([])
      expect(lines.filter((l) => l.startsWith('▶ ')).map((l) => l.split(':')[0])).toEqual([
        '▶ retained',
        '▶ wildcards',
      ])
      expect(lines.join('\n')).toMatch(/^✓ 2 experiments, \d+ claims shown/m)
      expect(result.stdout).not.toMatch(/marker-\d|mqttjs_|stage-[0-9a-f]{8}/)
      expect(result.stdout).not.toMatch(/✗/)
      // Ticks in plain words, the claim after them; what proves "nothing arrived" is one tick.
      // Claim IDs are for the docs and logs; a room reads the tick's words.
      expect(lines).toContain('  ✓ and none of the earlier ones: a topic retains one message')
      expect(result.stdout).not.toMatch(/\([CS]\d+\)/)
      expect(lines).toContain(
        '  ✓ # got nothing: a filter that starts with a wildcard does not match topics',
      )
      // Answered prompts are gone from the screen: the room sees the steps, not the speaker's cues.
      expect(lines.filter((l) => l.includes('Enter: '))).toEqual([])
      // Bold and bright, never dim (2), dark blue (34) or grey (90): they vanish on a projector.
      expect(result.stdout).toContain('\x1b[1m')
      expect(result.stdout).not.toMatch(/\x1b\[(?:[\d;]*;)?(?:2|34|90)(?:;[\d;]*)?m/)
    },
    SHOW_MS + STEP_MS,
  )

  it(
    'the discovery show, step by step in plain text (NO_COLOR): within 80 columns, no escaped ' +
      'JSON, the Last Will shown; its stage view stays on --dashboard-port to the end and links ' +
      'the device cards, and Ctrl-C there stops everything, exit 130',
    async () => {
      const port = await freePort()
      const show = inTerminalTest(
        showCommand('discovery', ['--step', '--dashboard-port', String(port)]),
        { NO_COLOR: '1' },
      )
      await waitInShow(show, `Stage view: http://127.0.0.1:${port}/ (open it now)`)
      await answerSteps(show, 0, 12)
      await waitInShow(show, 'Enter: end the show')
      const page = await fetch(`http://127.0.0.1:${port}/`)
      expect(page.status).toBe(200)
      const feed = new Feed(`http://127.0.0.1:${port}/`)
      const cards = await feed.until('link to the device cards', () =>
        feed.messages.flatMap((m) => ('link' in m ? [m.link] : [])).at(0),
      )
      feed.close()
      expect(cards.title).toBe('Device cards')
      expect(await (await fetch(cards.url)).text()).toContain('<title>Smart home')
      // Ctrl-C, as the speaker would type it: the show stops everything and exits 130.
      show.child.stdin!.write('\x03')
      const result = await show.finish(STEP_MS)
      expect(result.code, result.stdout).toBe(130)
      expect(result.stdout).toContain('interrupted (SIGINT): stopping every process and the broker')
      expect(result.stdout).not.toMatch(/✗/)
      expect(await isListening(port)).toBe(false)
      const lines = screen(result.stdout)
      expect(tooWide(lines)).toEqual([])
      expect(result.stdout).not.toMatch(/\x1b\[[\d;]*m/)
      expect(result.stdout).not.toMatch(/marker-\d|mqttjs_|\\"/)
      expect(lines).toContainEqual(
        expect.stringMatching(/^ {2}· sensor is gone, so the broker publishes its Last Will: /),
      )
    },
    SHOW_MS + STEP_MS,
  )

  it(
    'a prompt stands on its own line; keys typed before it are dropped; output that arrives ' +
      'while it waits goes above it',
    async () => {
      const program = inTerminalTest(
        [process.execPath, ...programArgs('test/shows/prompt-program.ts')]
          .map(shellQuote)
          .join(' '),
      )
      await program.waitForLine('type now')
      // An Enter before the prompt, then the prompt: if that Enter were kept, the prompt would be
      // answered at once.
      program.child.stdin!.write('\rp')
      await program.waitForLine('Enter: step 2, go on')
      program.child.stdin!.write('l')
      await program.waitForLine('a line printed while the prompt waits')
      expect(screen(program.stdout).slice(-2)).toEqual([
        '  [late] a line printed while the prompt waits',
        '  Enter: step 2, go on',
      ])
      program.child.stdin!.write('\r')
      const result = await program.finish()
      expect(result.code, result.stdout).toBe(0)
      expect(screen(result.stdout)).toEqual([
        'type now',
        '  [late] a line printed while the prompt waits',
        'Enter answered the prompt',
      ])
    },
  )
})

describe('steering a show', () => {
  it('--list names every experiment with its title', async () => {
    // Through npm and tsx, as a speaker types it: tsx compiles every scenario first, which on a
    // machine kept busy by other suites took more than the 30 s a plain wait allows (Node 22,
    // 2026-12-07).
    const npm = new Program(
      spawn('npm', ['run', '--silent', 'demo', '--', '--list'], { cwd: ROOT }),
      'npm run demo -- --list',
    )
    const result = await npm.finish(STEP_MS)
    expect(result.code).toBe(0)
    expect(
      result.stdout
        .trimEnd()
        .split('\n')
        .map((l) => l.split(/ {2,}/)[0]),
    ).toEqual([
      'basic-pubsub',
      'ephemeral',
      'retained',
      'wildcards',
      'discovery',
      'wire',
      'transports',
      'persistence',
      'mqtt5',
      'cluster',
      'security',
    ])
    expect(result.stdout).toMatch(/^retained {2,}the broker keeps the last retained message/m)
  })

  it(
    '--from 3 plays steps 1 and 2 without a word, so the state is right, and shows the rest',
    async () => {
      const result = await direct('basic-pubsub', ['--from', '3']).finish(SHOW_MS)
      expect(result.code, result.stdout).toBe(0)
      expect(result.stdout).not.toMatch(/^Step [12]\. /m)
      expect(result.stdout).not.toContain('my_topic on')
      expect(result.stdout).toMatch(
        joined(
          /^ {2}\(steps 1 to 2 played without a word: \d+ expectations met\)\n\nStep 3\. Stop /m,
          /the subscriber/,
        ),
      )
      expect(result.stdout).toMatch(/✓ basic-pubsub: every expectation met \(C6, C5, C7, C1\)/)
    },
    SHOW_MS + STEP_MS,
  )

  it.each([
    [
      ['nosuch'],
      'error: there is no experiment called "nosuch"; npm run demo -- --list names them',
    ],
    [['--from', '0'], 'error: --from must be a step number from 1 on, not "0"'],
    [
      ['retained', 'wildcards', '--from', '2'],
      'error: --from starts one experiment at a step; name one, as in npm run demo -- retained ' +
        '--from 2',
    ],
    [
      ['--dashboard-port', 'x'],
      'error: --dashboard-port must be a port number from 0 to 65535, not "x"',
    ],
    [['--colour'], "error: Unknown option '--colour'; see npm run demo -- --help"],
  ])('npm run demo -- %s refuses in one line', async (args, line) => {
    // The program npm runs, without npm: the --list test above goes through npm.
    const result = await direct('index', args).finish()
    expect(result.code).toBe(1)
    expect(result.stderr).toBe(`${line}\n`)
  })

  it(
    '--from past the last step says how many steps there are',
    async () => {
      const result = await direct('basic-pubsub', ['--from', '9']).finish(SHOW_MS)
      expect(result.code).toBe(1)
      expect(result.stdout).toMatch(/✗ --from 9: basic-pubsub has 3 steps; start at one of them/)
    },
    SHOW_MS + STEP_MS,
  )
})

it.skipIf(existsSync(SCRIPT))(
  'shows in a terminal: script(1) is not installed; apt-get install util-linux (or bsdutils) to ' +
    'run these',
  () => {},
)
