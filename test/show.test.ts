// `npm run demo:<name>` as a speaker runs it: it narrates, ends cleanly, refuses --step without a
// terminal, and on Ctrl-C leaves no process and no listening port behind.
import { spawn, execFileSync } from 'node:child_process'
import { expect, it } from 'vitest'
import { ROOT } from '../scenarios/stage.ts'
import { isAlive, isListening, Program } from './processes.ts'

function npmRun(script: string, args: string[] = []): Program {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' }
  delete env.MQTT_URL
  // detached: a process group of its own, so the test can press "Ctrl-C" on it as a terminal would.
  const child = spawn('npm', ['run', '--silent', script, ...(args.length ? ['--', ...args] : [])], {
    cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  })
  return new Program(child, `npm run ${script}`)
}

/** Every process below `pid`, found through /proc via ps. */
function descendants(pid: number): number[] {
  const table = execFileSync('ps', ['-e', '-o', 'pid=,ppid=']).toString().trim().split('\n')
    .map((row) => row.trim().split(/\s+/).map(Number))
  const found: number[] = []
  const walk = (parent: number) => {
    for (const [child, ppid] of table) {
      if (ppid === parent) {
        found.push(child)
        walk(child)
      }
    }
  }
  walk(pid)
  return found
}

it('npm run demo:basic-pubsub narrates every step, ticks each claim and exits 0', async () => {
  const show = npmRun('demo:basic-pubsub')
  const result = await show.finish(30_000)
  expect(result.code, result.stderr).toBe(0)
  expect(result.stdout).toMatch(/^▶ basic-pubsub: /)
  expect(result.stdout).toContain('Step 1. Start a subscriber on my_topic')
  expect(result.stdout).toContain('  [subscriber] my_topic on')
  expect(result.stdout).toContain('  ✓ C7 the subscriber printed the topic and the payload')
  expect(result.stdout).toMatch(/✓ basic-pubsub: every expectation met \(C6, C5, C7, C1\) in [\d.]+ s\n$/)
})

it('--step without a terminal refuses with one line instead of waiting forever', async () => {
  const result = await npmRun('demo:basic-pubsub', ['--step']).finish()
  expect(result.code).toBe(1)
  expect(result.stderr).toBe('error: --step waits for Enter before each step and needs a terminal; run it in one, or leave --step out\n')
})

it('Ctrl-C in the middle of the show ends the broker and every process it started', async () => {
  const show = npmRun('demo:basic-pubsub')
  const port = Number((await show.waitForLine('[broker] broker ready on')).match(/:(\d+);/)![1])
  await show.waitForLine('[subscriber] subscribed to my_topic')
  const processes = [show.pid, ...descendants(show.pid)]
  // npm, sh is replaced by exec, the stage, the subscriber: at least three.
  expect(processes.length).toBeGreaterThanOrEqual(3)
  process.kill(-show.pid, 'SIGINT')
  const result = await show.finish(10_000)
  expect(result.stdout).toContain('interrupted (SIGINT): stopping every process and the broker')
  // npm may exit before its child has finished closing; each must be gone within moments.
  await expect.poll(() => processes.filter(isAlive), { timeout: 5000 }).toEqual([])
  expect(await isListening(port)).toBe(false)
})

it('killing npm (SIGTERM to its pid alone) also ends the stage, its broker and its children', async () => {
  const show = npmRun('demo:basic-pubsub')
  const port = Number((await show.waitForLine('[broker] broker ready on')).match(/:(\d+);/)![1])
  await show.waitForLine('[subscriber] subscribed to my_topic')
  const processes = [show.pid, ...descendants(show.pid)]
  process.kill(show.pid, 'SIGTERM')
  await show.finish(10_000)
  await expect.poll(() => processes.filter(isAlive), { timeout: 5000 }).toEqual([])
  expect(await isListening(port)).toBe(false)
})
