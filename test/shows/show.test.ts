// `npm run demo:<name>` as a speaker runs it: it narrates, ends cleanly, refuses --step without a
// terminal, and on Ctrl-C leaves no process and no listening port behind.
import { spawn } from 'node:child_process'
import { expect, it } from 'vitest'
import { ps } from 'zx'
import { HUNG_MS } from '../../scenarios/stage/waiter.ts'
import { basicPubsub } from '../../scenarios/basic-pubsub.ts'
import { programArgs } from '../../scenarios/stage/bundle.ts'
import { budgetMs } from '../../scenarios/stage/scenario.ts'
import { ROOT } from '../../lib/build-cache.ts'
import { isAlive, isListening, Program } from '../helpers/processes.ts'
import { playTimeout } from '../experiments/scenario-suite.ts'

function npmRun(script: string, args: string[] = []): Program {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' }
  delete env.MQTT_URL
  // detached: a process group of its own, so the test can press "Ctrl-C" on it as a terminal would.
  // The stage view on a free port: shows that tests play side by side would all take 8080.
  const child = spawn('npm', ['run', '--silent', script, '--', ...args, '--dashboard-port', '0'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  return new Program(child, `npm run ${script}`)
}

/** Every process below `pid`, with its command line. */
async function tree(pid: number): Promise<{ pid: number; command: string }[]> {
  return (await ps.tree({ pid, recursive: true })).map((p) => ({
    pid: Number(p.pid),
    command: [p.command, ...p.arguments].join(' '),
  }))
}

/** The pids of every process below `pid`. */
async function descendants(pid: number): Promise<number[]> {
  return (await tree(pid)).map((p) => p.pid)
}

/** Let a stopped show's group go on; a group gone already is no error. */
function resume(show: Program): void {
  try {
    process.kill(-show.pid, 'SIGCONT')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error
  }
}

/**
 * Run `look` with the show's process group stopped (SIGSTOP), then let it go on (SIGCONT): what the
 * test sees of the processes, and the signal it sends meanwhile, find the show where it was. A show
 * left running could end before a slow `ps` on a busy machine had answered, and a Ctrl-C sent then
 * would interrupt nothing. Signals sent meanwhile wait, and arrive when the group goes on,
 * together, as a terminal's Ctrl-C does.
 */
async function frozen<T>(show: Program, look: () => Promise<T>): Promise<T> {
  process.kill(-show.pid, 'SIGSTOP')
  try {
    return await look()
  } finally {
    // The group is gone if `look` ended every process in it.
    resume(show)
  }
}

it(
  'npm run demo:basic-pubsub narrates every step, ticks each claim and exits 0',
  async () => {
    const show = npmRun('demo:basic-pubsub')
    // The whole show, not one wait: the scenario's budget.
    const result = await show.finish(budgetMs(basicPubsub))
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(
      /^Stage view: http:\/\/127\.0\.0\.1:\d+\/ \(open it now\)\n▶ basic-pubsub: /,
    )
    expect(result.stdout).toContain('Step 1. Start a subscriber on my_topic')
    expect(result.stdout).toContain('  [subscriber] my_topic on')
    expect(result.stdout).toContain('  ✓ the subscriber printed the topic and the payload (C7)')
    expect(result.stdout).toMatch(
      /✓ basic-pubsub: every expectation met \(C6, C5, C7, C1\) in [\d.]+ s\n$/,
    )
  },
  playTimeout(basicPubsub),
)

it('--step without a terminal refuses with one line instead of waiting forever', async () => {
  // The program npm runs, without npm: the tests around this one go through npm.
  const result = await showDirectly('basic-pubsub', ['--step']).finish()
  expect(result.code).toBe(1)
  expect(result.stderr).toBe(
    'error: --step waits for Enter before each step and needs a terminal; run it in one, or ' +
      'leave --step out\n',
  )
})

it(
  'Ctrl-C in the middle of the show ends the broker, the stage view and every process it ' +
    'started',
  async () => {
    const show = npmRun('demo:basic-pubsub')
    const view = Number((await show.waitForLine('Stage view: ')).match(/:(\d+)\//)![1])
    expect(await isListening(view)).toBe(true)
    const port = Number((await show.waitForLine('[subscriber] connected to ')).match(/:(\d+),/)![1])
    await show.waitForLine('[subscriber] subscribed to my_topic')
    const processes = await frozen(show, async () => {
      const all = [show.pid, ...(await descendants(show.pid))]
      process.kill(-show.pid, 'SIGINT')
      return all
    })
    // npm, sh is replaced by exec, the stage, the subscriber: at least three.
    expect(processes.length).toBeGreaterThanOrEqual(3)
    const result = await show.finish()
    expect(result.stdout).toContain('interrupted (SIGINT): stopping every process and the broker')
    // Ctrl-C reached the subscriber too; that is neither reported as a death nor as a failed step.
    expect(result.stdout).not.toMatch(/✗/)
    // npm may exit before its child has finished closing; each must be gone within moments.
    await expect.poll(() => processes.filter(isAlive), { timeout: HUNG_MS }).toEqual([])
    expect(await isListening(port)).toBe(false)
    expect(await isListening(view)).toBe(false)
  },
)

it(
  'killing npm (SIGTERM to its pid alone) also ends the stage, its broker and its ' + 'children',
  async () => {
    const show = npmRun('demo:basic-pubsub')
    const port = Number((await show.waitForLine('[subscriber] connected to ')).match(/:(\d+),/)![1])
    await show.waitForLine('[subscriber] subscribed to my_topic')
    const processes = await frozen(show, async () => {
      const all = [show.pid, ...(await descendants(show.pid))]
      process.kill(show.pid, 'SIGTERM')
      return all
    })
    await show.finish()
    await expect.poll(() => processes.filter(isAlive), { timeout: HUNG_MS }).toEqual([])
    expect(await isListening(port)).toBe(false)
  },
)

/** Start a show directly (node on its bundle, no npm), in a process group of its own. */
function showDirectly(scenario: string, args: string[] = []): Program {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' }
  delete env.MQTT_URL
  const child = spawn(
    process.execPath,
    [...programArgs(`scenarios/${scenario}.ts`), ...args, '--dashboard-port', '0'],
    {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  )
  return new Program(child, `scenarios/${scenario}.ts`)
}

it(
  'a subscriber killed in the middle of a show: the stage says which and how, fails the show, ' +
    'and leaves nothing behind',
  async () => {
    const show = showDirectly('ephemeral')
    await show.waitForLine('[alice] subscribed to my_topic')
    // alice lives only until step 5: the show waits while the test finds her.
    const processes = await frozen(show, async () => {
      const below = await tree(show.pid)
      // Its source or its bundle: subscriber.ts or subscriber.mjs.
      const subscriber = below.find((p) => p.command.includes('/subscriber.'))
      expect(subscriber, 'the subscriber below the show').toBeDefined()
      process.kill(subscriber!.pid, 'SIGKILL')
      return [show.pid, ...below.map((p) => p.pid)]
    })
    const result = await show.finish()
    expect(result.stdout).toContain('✗ alice was killed by SIGKILL')
    expect(result.stdout).toMatch(/✗ step \d+ ".*": alice was killed by SIGKILL before printing/)
    expect(result.code).toBe(1)
    await expect.poll(() => processes.filter(isAlive), { timeout: HUNG_MS }).toEqual([])
  },
)

it(
  'the stage killed with SIGKILL, broker and all: every demo it started ends by itself (the ' +
    'lifeline)',
  async () => {
    const show = showDirectly('discovery')
    await show.waitForLine('[listener-2] discovered')
    const children = await frozen(show, async () => {
      const below = await descendants(show.pid)
      process.kill(show.pid, 'SIGKILL')
      return below
    })
    expect(children.length).toBeGreaterThanOrEqual(3)
    await show.finish()
    await expect.poll(() => children.filter(isAlive), { timeout: HUNG_MS }).toEqual([])
  },
)

it(
  "Ctrl-C ends the show with exit code 130, the shell's code for an interrupted program, and no " +
    'failure',
  async () => {
    const show = showDirectly('retained')
    await show.waitForLine('[subscriber-1] my_topic on (retained)')
    process.kill(-show.pid, 'SIGINT')
    const result = await show.finish()
    expect(result.stdout).not.toMatch(/✗/)
    expect(result.code).toBe(130)
  },
)
