// One demo program on stage: the process, its output line by line with a cursor for expectations,
// and how it ends. The stage creates it; a scenario waits on what it prints and stops it.
import { spawn, type ChildProcess } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { createInterface } from 'node:readline'
import { ROOT } from '../../lib/build-cache.ts'
import { programArgs, programEnv } from './bundle.ts'
import type { Event, Expectation, StageOptions } from './scenario.ts'
import { inSeconds, Waiter } from './waiter.ts'

/** What a program on stage asks of the stage that started it (./stage.ts's Stage). */
export interface ProcStage {
  readonly waitMs: number
  readonly options: Pick<StageOptions, 'onSlow'>
  readonly isClosing: boolean
  ok(met: Expectation, proc?: Proc): void
  failure(what: string, proc?: Proc): Error
  heard(proc: Proc, text: string, stream: 'stdout' | 'stderr'): void
  stopped(proc: Proc, signal: NodeJS.Signals): void
  record(event: Event): void
}

/**
 * How long a stopped program may take to end before it is killed: it ends in milliseconds at rest.
 */
const STOP_GRACE_MS = 5000

/** When a wait that lasts is reported (StageOptions.onSlow), in ms. */
const SLOW_AT = [5000, 15_000, 30_000, 45_000]

interface Line {
  text: string
  stream: 'stdout' | 'stderr'
}

interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

/** A demo program running on stage: its output, line by line, and a cursor for expectations. */
export class Proc {
  readonly output: Line[] = []
  /** The process, once the stage has started it (it may wait to start, see StartLimiter). */
  child?: ChildProcess
  /** Set when its end is expected: the stage stops it, or runs it to its end. */
  ending = false
  /** The lines that say nothing to a room (see Stage.spawnCommand): shown with --verbose only. */
  chatter?: RegExp
  /** Stopped while it waited to start: the stage does not start it at all. */
  cancelled = false
  /** A program that is not ours (redis-server, say): started from `command`, not a bundle. */
  command?: string[]
  private result?: Exit
  private cursor = 0
  private readonly lines = new Waiter()
  private resolveExit!: (exit: Exit) => void
  readonly exit = new Promise<Exit>((resolve) => (this.resolveExit = resolve))

  private readonly stage: ProcStage
  readonly label: string

  constructor(stage: ProcStage, label: string) {
    this.stage = stage
    this.label = label
  }

  /**
   * Start `script` (relative to the repository) from its bundle (./bundle.ts) when `starts` lets
   * it, unless it was stopped meanwhile or the stage is closing; `command` starts something else in
   * its place (its Python twin: the interpreter and the .py file); `record` opens one more pipe, on
   * file descriptor `fd` of the program, and hears each line it writes there.
   */
  start(
    starts: StartLimiter,
    script: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    {
      command,
      record,
    }: { command?: string[]; record?: { fd: number; line: (line: string) => void } } = {},
  ): void {
    this.command = command
    void starts.acquire().then((release) => {
      if (this.cancelled || this.stage.isClosing) {
        release()
        return this.neverStarted()
      }
      const [file, ...before] = command ?? [process.execPath, ...programArgs(script)]
      const pipes = record ? record.fd + 1 : 3
      const child = spawn(file, [...before, ...args], {
        cwd: ROOT,
        env: command ? env : programEnv(env, args),
        stdio: Array.from({ length: pipes }, () => 'pipe' as const),
      })
      if (record) {
        const lines = createInterface({ input: child.stdio[record.fd] as NodeJS.ReadableStream })
        lines.on('line', record.line)
      }
      const timer = setTimeout(release, START_HOLD_MS)
      child.stdout!.once('data', release)
      child.once('close', () => {
        clearTimeout(timer)
        release()
      })
      this.attach(child)
    })
  }

  /** Follow the process started for this program: its output, and how it ends. */
  private attach(child: ChildProcess): void {
    this.child = child
    for (const stream of ['stdout', 'stderr'] as const) {
      createInterface({ input: child[stream]! }).on('line', (text) => {
        this.output.push({ text, stream })
        this.stage.heard(this, text, stream)
        this.lines.arrived()
      })
    }
    child.on('close', (code, signal) => {
      // How it ended, as in "subscriber-1 was killed by SIGKILL".
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`
      // Something other than the stage ended it (Ctrl-C in its terminal, a kill, a crash): say so
      // at once.
      if (!this.ending)
        this.stage.record({ kind: 'died', label: this.label, text: `${this.label} ${how}` })
      this.settle({ code, signal }, how)
    })
  }

  /** It will not start: it was stopped while it waited to start. */
  private neverStarted(): void {
    this.settle({ code: null, signal: null }, 'was stopped before it started')
  }

  private settle(exit: Exit, how: string): void {
    this.result = exit
    this.lines.end(how)
    this.resolveExit(exit)
  }

  /** Wait for the program to end by itself; fails, naming it, if the run hangs. */
  finished(): Promise<Exit> {
    return this.reportingSlowness(
      'to finish',
      this.lines.until(() => this.result, {
        timeoutMs: this.stage.waitMs,
        timedOut: (ms) =>
          this.stage.failure(`${this.label} did not finish within ${inSeconds(ms)}`, this),
      }),
    )
  }

  private get stdout(): string[] {
    return this.output.filter((l) => l.stream === 'stdout').map((l) => l.text)
  }

  /**
   * Wait until this process prints `line` on stdout (after the last expectation), then mark it met.
   * Fails, naming what was awaited, if the process exits first or the run hangs.
   */
  async expect(line: string | RegExp, met: Expectation): Promise<void> {
    await this.until(line)
    this.stage.ok(met, this)
  }

  /**
   * Wait until this process prints every one of `lines`, in any order (a queued message may come
   * before or after the SUBACK, say), then mark them met. The cursor moves past the last of them.
   */
  async expectAll(lines: string[], met: Expectation): Promise<void> {
    const awaited = lines.map((l) => JSON.stringify(l)).join(' and ')
    await this.waitFor(awaited, () => {
      const printed = this.stdout
      const at = lines.map((line) => printed.indexOf(line, this.cursor))
      if (at.some((i) => i < 0)) return undefined
      this.cursor = Math.max(...at) + 1
      return true
    })
    this.stage.ok(met, this)
  }

  /** Wait until the error line `line` (or a line matching it) is printed on stderr. */
  async expectError(line: string | RegExp, met: Expectation): Promise<void> {
    const matches = (text: string) => (typeof line === 'string' ? text === line : line.test(text))
    const awaited = typeof line === 'string' ? JSON.stringify(line) : `matching ${line}`
    await this.waitFor(`the error line ${awaited}`, () =>
      this.output.some((l) => l.stream === 'stderr' && matches(l.text)) ? [] : undefined,
    )
    this.stage.ok(met, this)
  }

  /**
   * Let what this process printed so far go unawaited: the next expectation is met only by a line
   * printed after this call.
   */
  skip(): void {
    this.cursor = this.stdout.length
  }

  /**
   * Whether this process has printed `line` on stdout since its last expectation (the cursor
   * stays).
   */
  hasPrinted(line: string): boolean {
    return this.stdout.indexOf(line, this.cursor) >= 0
  }

  /**
   * Wait until this process prints `line` on stdout, or a line matching `refusal` on stderr, after
   * which it is expected to end (a refused subscription, say); resolves with which of the two came.
   */
  async either(line: string, refusal: RegExp): Promise<'line' | 'refusal'> {
    return this.waitFor(`${JSON.stringify(line)}, or an error matching ${refusal}`, () => {
      if (this.output.some((l) => l.stream === 'stderr' && refusal.test(l.text))) {
        this.ending = true
        return 'refusal' as const
      }
      return this.hasPrinted(line) ? ('line' as const) : undefined
    }).then((which) => (which === 'line' ? this.until(line).then(() => which) : which))
  }

  /**
   * Wait for `line` (or a line matching it) on stdout; returns the lines printed between the cursor
   * and it.
   */
  async until(line: string | RegExp): Promise<string[]> {
    return this.waitFor(
      typeof line === 'string' ? JSON.stringify(line) : `a line matching ${line}`,
      () => {
        const lines = this.stdout
        const at = lines.findIndex(
          (l, i) => i >= this.cursor && (typeof line === 'string' ? l === line : line.test(l)),
        )
        if (at < 0) return undefined
        const before = lines.slice(this.cursor, at)
        this.cursor = at + 1
        return before
      },
    )
  }

  private waitFor<T>(awaited: string, found: () => T | undefined): Promise<T> {
    return this.reportingSlowness(
      `to print ${awaited}`,
      this.lines.until(found, {
        timeoutMs: this.stage.waitMs,
        timedOut: (ms) =>
          this.stage.failure(
            `${this.label} did not print ${awaited} within ${inSeconds(ms)}`,
            this,
          ),
        ended: (how) => this.stage.failure(`${this.label} ${how} before printing ${awaited}`, this),
      }),
    )
  }

  /**
   * `wait`, reported to the stage's onSlow while it lasts (in a show: so that the room knows it
   * goes on).
   */
  private reportingSlowness<T>(what: string, wait: Promise<T>): Promise<T> {
    const onSlow = this.stage.options.onSlow
    if (!onSlow) return wait
    const timers = SLOW_AT.filter((ms) => ms < this.stage.waitMs).map((ms) =>
      setTimeout(() => onSlow(this.label, what, ms), ms),
    )
    return wait.finally(() => timers.forEach(clearTimeout))
  }

  /**
   * Stop the program as Ctrl-C would (SIGINT), and SIGKILL it if it is still there after a while.
   */
  async stop(signal: NodeJS.Signals = 'SIGINT'): Promise<void> {
    const asked = !this.ending
    this.ending = true
    if (this.lines.ended !== undefined) return
    if (!this.child) {
      this.cancelled = true
      await this.exit
      return
    }
    if (asked) this.stage.stopped(this, signal)
    this.child.kill(signal)
    // Long enough for a busy machine: a program killed while it disconnects leaves other lines in
    // the broker's log.
    const timer = setTimeout(() => this.child!.kill('SIGKILL'), STOP_GRACE_MS)
    await this.exit
    clearTimeout(timer)
  }
}

/** The longest a starting program keeps another from starting in its place (see StartLimiter). */
const START_HOLD_MS = 2000

/**
 * Programs starting at once share the machine's cores: a start costs about 0.15 s of CPU, and five
 * subscribers started together on a busy laptop took over 10 s each. At most one program per core
 * starts at a time: a semaphore with one permit per core (two at least). A program holds its permit
 * until it prints its first line or ends, or for START_HOLD_MS at most (one that prints late must
 * not hold the others back).
 */
export class StartLimiter {
  private free = Math.max(2, availableParallelism())
  private readonly queue: (() => void)[] = []

  /** Resolves, once a permit is free, with the function that releases it (at its first call). */
  acquire(): Promise<() => void> {
    return new Promise((resolve) => {
      const grant = () => {
        this.free--
        let released = false
        resolve(() => {
          if (released) return
          released = true
          this.free++
          this.queue.shift()?.()
        })
      }
      if (this.free > 0) grant()
      else this.queue.push(grant)
    })
  }
}

/** An argument as a learner would type it in a POSIX shell. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`
}
