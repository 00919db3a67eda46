// A program that the tests or the benchmarks start and leave running (Mosquitto, Redis, a broker as
// a process of its own): started with zx, as a shell session would (`exec`, so that a signal
// reaches the program itself, not a shell), ready once its output says so, and stopped with a
// signal, then SIGKILL if it lingers. Its output is kept for the error that names what went wrong;
// the wait for the ready line is scenarios/stage/waiter.ts's, like every other wait on output.
import { $, type ProcessPromise } from 'zx'
import { HUNG_MS, inSeconds, Waiter } from '../../scenarios/stage/waiter.ts'

/** How long a stopped program may take to end before it is killed. */
const STOP_GRACE_MS = 5000

export interface Daemon {
  pid: number
  /** What it printed so far, stdout and stderr together. */
  log(): string
  /** How it ended ("exited with code 1"), or undefined while it runs. */
  ended(): string | undefined
  /** Send `signal` without waiting (SIGSTOP, SIGCONT, SIGKILL...). */
  signal(signal: NodeJS.Signals): void
  /** Send `signal` (SIGTERM unless told), SIGKILL after a grace period, and wait for the end. */
  stop(signal?: NodeJS.Signals): Promise<void>
}

interface DaemonOptions {
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** How long it may take to print its ready line; default HUNG_MS. */
  timeoutMs?: number
}

/**
 * Programs started here that are still running: killed if the process exits before they are
 * stopped.
 */
const running = new Set<ProcessPromise>()
process.once('exit', () => {
  for (const program of running) program.child?.kill('SIGKILL')
})

/**
 * Start `command` and resolve, once a line of its output matches `ready`, with the daemon and that
 * match. Rejects, naming `name` and its last line, if it exits first or does not get ready in time
 * (and then kills it).
 */
export async function startDaemon(
  name: string,
  command: string[],
  ready: RegExp,
  options: DaemonOptions = {},
): Promise<{ daemon: Daemon; match: RegExpMatchArray }> {
  const program = $({
    quiet: true,
    nothrow: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: options.cwd,
    env: options.env,
  })`exec ${command}`
  running.add(program)
  let log = ''
  const output = new Waiter()
  const heard = (chunk: Buffer) => {
    log += chunk
    output.arrived()
  }
  program.stdout.on('data', heard)
  program.stderr.on('data', heard)
  void program.then((end) => {
    running.delete(program)
    output.end(end.signal ? `was killed by ${end.signal}` : `exited with code ${end.exitCode}`)
  })
  const daemon: Daemon = {
    pid: program.child!.pid!,
    log: () => log,
    ended: () => output.ended,
    signal: (signal) => void program.child?.kill(signal),
    async stop(signal = 'SIGTERM') {
      if (output.ended !== undefined) return
      program.child?.kill(signal)
      const timer = setTimeout(() => program.child?.kill('SIGKILL'), STOP_GRACE_MS)
      await program
      clearTimeout(timer)
    },
  }
  const timeoutMs = options.timeoutMs ?? HUNG_MS
  try {
    const match = await output.until(() => log.match(ready) ?? undefined, {
      timeoutMs,
      timedOut: (ms) => {
        const none = `${name} printed no line matching ${ready} within ${inSeconds(ms)}`
        return new Error(`${none}; it printed: ${log}`)
      },
      ended: (how) => new Error(`${name} ${how} before it was ready: ${lastLine(log)}`),
    })
    return { daemon, match }
  } catch (error) {
    await daemon.stop('SIGKILL')
    throw error
  }
}

/** The last line of `log`, or a word saying there was none. */
function lastLine(log: string): string {
  return log.trim().split('\n').at(-1) ?? '(nothing printed)'
}
