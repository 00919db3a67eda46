// Helpers for tests that run the project's programs as real processes, the way a learner does.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { createServer, connect as tcpConnect } from 'node:net'
import { expect } from 'vitest'
import { LIFELINE } from '../../lib/cli.ts'
import { HUNG_MS, inSeconds, Waiter } from '../../scenarios/stage/waiter.ts'
import { programArgs } from '../../scenarios/stage/bundle.ts'
import { ROOT } from '../../lib/build-cache.ts'

export interface Finished {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/**
 * Run `npx tsx <script> ...args` (from its bundle, see scenarios/stage/bundle.ts) to its end; fails
 * the test if it hangs.
 */
export function runScript(
  script: string,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = HUNG_MS,
): Promise<Finished> {
  return start(script, args, env).finish(timeoutMs)
}

/**
 * Start `npx tsx <script>` (from its bundle) without waiting for it. MQTT_URL is unset unless `env`
 * gives it.
 */
export function start(script: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Program {
  const base = { ...process.env }
  delete base.MQTT_URL
  const child = spawn(process.execPath, [...programArgs(script), ...args], {
    cwd: ROOT,
    // The lifeline (lib/cli.ts): if the test dies or times out before it stops the program, the
    // program ends with it instead of outliving the run.
    env: { ...base, NO_COLOR: '1', [LIFELINE]: '1', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  return new Program(child, `${script} ${args.join(' ')}`)
}

/** A running child process whose whole output is kept, so no line is missed between two waits. */
export class Program {
  stdout = ''
  stderr = ''
  private result?: Finished
  private readonly output = new Waiter()

  readonly child: ChildProcess
  readonly what: string

  constructor(child: ChildProcess, what: string) {
    this.child = child
    this.what = what
    child.stdout?.on('data', (chunk) => {
      this.stdout += chunk
      this.output.arrived()
    })
    child.stderr?.on('data', (chunk) => (this.stderr += chunk))
    child.on('close', (code, signal) => {
      this.result = { code, signal, stdout: this.stdout, stderr: this.stderr }
      this.output.end(signal ? `was killed by ${signal}` : `exited with code ${code}`)
    })
  }

  get pid(): number {
    return this.child.pid!
  }

  /**
   * Resolve with the first stdout line containing `text` (printed after the first `from`
   * characters); rejects naming it on exit or when the run hangs.
   */
  waitForLine(text: string, timeoutMs = HUNG_MS, from = 0): Promise<string> {
    return this.output.until(
      () =>
        this.stdout
          .slice(from)
          .split('\n')
          .find((l) => l.includes(text)),
      {
        timeoutMs,
        timedOut: (ms) => {
          const none = `${this.what} printed no line containing ${JSON.stringify(text)}`
          return new Error(`${none} within ${inSeconds(ms)}; ${this.printed()}`)
        },
        ended: (how) =>
          new Error(
            `${this.what} ${how} before printing ${JSON.stringify(text)}; ${this.printed()}`,
          ),
      },
    )
  }

  /** Wait for the exit; rejects naming the command (and kills it) if it outlives `timeoutMs`. */
  finish(timeoutMs = HUNG_MS): Promise<Finished> {
    return this.output.until(() => this.result, {
      timeoutMs,
      timedOut: (ms) => {
        this.child.kill('SIGKILL')
        return new Error(`${this.what} did not exit within ${inSeconds(ms)}; ${this.printed()}`)
      },
    })
  }

  private printed(): string {
    return `stdout: ${this.stdout} stderr: ${this.stderr}`
  }
}

/**
 * The program failed the way we promise: exit 1 and exactly one line on stderr, `error: ...`
 * matching `line`.
 */
export function expectOneLineError(result: Finished, line: RegExp): void {
  expect(result.code, `stdout: ${result.stdout} stderr: ${result.stderr}`).toBe(1)
  const lines = result.stderr.trimEnd().split('\n')
  expect(lines, result.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(/^error: /)
  expect(lines[0]).toMatch(line)
}

/** A port that nothing listens on: bound by the kernel, then released. */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * A port on 127.0.0.1 that nobody listens on, for a client to be refused there. It is taken below
 * the range the system hands out for port 0: a port freePort() found free could be handed, a moment
 * later, to a broker or a Redis that another test starts, and the client would reach that instead.
 */
export async function refusedPort(): Promise<number> {
  const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(
    () => '32768 60999',
  )
  const below = Number(range.trim().split(/\s+/)[0]) || 32768
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (below - 10_000))
    if (!(await isListening(port))) return port
  }
  throw new Error(`found no port between 10000 and ${below} that nobody listens on`)
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** Whether a process with this pid is still alive. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
