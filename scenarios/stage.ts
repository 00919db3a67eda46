// The stage plays one experiment of the article, written once as steps, in two modes: `show` narrates
// each step and streams every process's output with a label for an audience; `check` runs the same
// steps silently for vitest, where every expectation is an assertion with a timeout. Either way it
// starts the bundled broker (or uses MQTT_URL), spawns the demo programs as real processes, and ends
// every one of them when it finishes, fails or is interrupted.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, rmSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import mqtt, { type MqttClient } from 'mqtt'
import { readyLine, startBroker, type RunningBroker } from '../lib/broker.ts'
import { fail, LIFELINE, messageOf } from '../lib/cli.ts'
import { parseFlags } from '../lib/flags.ts'
import { seconds, Waiter } from '../lib/waiter.ts'
import { buildBundles, programArgs, programs, ROOT } from './bundle.ts'

export { ROOT }

/** How long a stopped program may take to end before it is killed: it ends in milliseconds at rest. */
const STOP_GRACE_MS = 5000

export interface Scenario {
  /** The npm script is demo:<name>. */
  name: string
  /** One sentence: what the audience is about to see. */
  title: string
  play(stage: Stage): Promise<void>
  /** What the scenario needs of the broker beyond the bundled one over TCP; see BrokerNeeds. */
  needs?: BrokerNeeds
  /**
   * How long one play may take, in seconds, on a machine much slower or busier than ours (default
   * DEFAULT_BUDGET_S): check() fails a play that outlasts it, naming the step it was at.
   */
  budget?: number
}

/**
 * The budget of a scenario that does not give one. Ours take 1 to 5 s each on this 2-core machine at
 * rest; a busy one (other test suites beside it) has been seen to take ten times as long. A hung run
 * fails sooner anyway, at the wait that hangs (lib/waiter.ts).
 */
export const DEFAULT_BUDGET_S = 120

/** A scenario's budget in milliseconds. */
export function budgetMs(scenario: Scenario): number {
  return (scenario.budget ?? DEFAULT_BUDGET_S) * 1000
}

export interface BrokerNeeds {
  /** Listeners the bundled broker must also serve: stage.wsUrl, stage.unixUrl (undefined on a broker the stage did not start with them). */
  listeners?: ('ws' | 'unix')[]
  /** Start no broker at all: the scenario runs broker processes of its own and points the stage at each with useBroker(). */
  none?: boolean
  /** A program it runs that is not ours, and the line that says how to install it where it is missing. */
  program?: { command: string; missing: string }
}

/** The line saying what `scenario` needs and this machine lacks, if anything. */
export function missingProgram(scenario: Scenario): string | undefined {
  const program = scenario.needs?.program
  return program && spawnSync(program.command, ['--version']).error ? program.missing : undefined
}

/** One thing that happened on stage, in order: what the show prints and what the docs quote. */
export type Event =
  | { kind: 'step'; text: string }
  | { kind: 'command'; label: string; text: string }
  | { kind: 'say'; text: string }
  | { kind: 'line'; label: string; text: string; stream: 'stdout' | 'stderr' }
  | { kind: 'ok'; claim?: string; text: string }
  | { kind: 'died'; label: string; text: string }

export interface StageOptions {
  mode: 'show' | 'check'
  /** Wait for Enter before each step (show mode on a terminal only). */
  stepByStep?: boolean
  /** An existing broker to use instead of starting the bundled one (MQTT_URL). */
  url?: string
  /** A bundled broker started by the caller, to share between runs: its client events are recorded, and it is left running. */
  broker?: RunningBroker
  /** Put every topic under this prefix, to share a broker with others (see topic()). */
  topicPrefix?: string
  /** The scenario's needs (Scenario.needs); check() and show() pass them. */
  needs?: BrokerNeeds
  /**
   * A Python with paho-mqtt: play each demo that has a twin in its python/ directory (demos/x/python/
   * publisher.py for demos/x/publisher.ts) with this interpreter instead, with the same flags.
   */
  python?: string
}

export class StageError extends Error {}

export class Stage {
  readonly events: Event[] = []
  /** The URL the demos connect to; set by open(). */
  url = ''
  /** The broker's WebSocket and Unix socket URLs, when it serves them (see BrokerNeeds). */
  wsUrl?: string
  unixUrl?: string
  /** The bundled broker this stage started, and so stops. */
  private ownBroker?: RunningBroker
  private stopHearingBroker?: () => void
  private control?: MqttClient
  private readonly controlId = `stage-${randomBytes(4).toString('hex')}`
  private readonly processes = new Set<Proc>()
  private stepNumber = 0
  private stepTitle = '(before the first step)'
  private markers = 0
  private readonly retainedTopics = new Set<string>()
  private readonly tempDirs: string[] = []
  private readonly colour: boolean

  constructor(readonly options: StageOptions) {
    this.colour = options.mode === 'show' && Boolean(process.stdout.isTTY) && !process.env.NO_COLOR
  }

  /** Start the bundled broker on a free port, or use options.url. */
  async open(): Promise<void> {
    if (this.options.needs?.none) return
    if (this.options.url) {
      this.url = this.options.url
      this.print(this.dim(`broker: ${this.url} (from MQTT_URL)`))
      return
    }
    const listeners = this.options.needs?.listeners ?? []
    const broker = this.options.broker ?? (this.ownBroker = await startBroker({
      port: 0,
      wsPort: listeners.includes('ws') ? 0 : undefined,
      unixPath: listeners.includes('unix') ? join(await this.tempDir(), 'broker.sock') : undefined,
    }))
    this.stopHearingBroker = broker.onClientEvent((line, clientId) => {
      if (clientId !== this.controlId) this.record({ kind: 'line', label: 'broker', text: line, stream: 'stdout' })
    })
    this.url = broker.url
    this.wsUrl = broker.wsUrl
    this.unixUrl = broker.unixUrl
    this.record({ kind: 'line', label: 'broker', text: readyLine(broker), stream: 'stdout' })
    this.say('the stage started the bundled broker on a free port; every program below gets its URL as MQTT_URL')
  }

  /** The article's topic, under the stage's prefix when it shares a broker with others. */
  topic(name: string): string {
    return `${this.options.topicPrefix ?? ''}${name}`
  }

  /**
   * The flag that points a demo whose default topic is `name` at the stage's topic: nothing, unless the
   * stage prefixes topics, so the commands the show prints stay the ones the docs give.
   */
  topicFlag(name: string): string[] {
    return this.prefixed ? ['--topic', this.topic(name)] : []
  }

  /** Whether topics are put under a prefix, because the broker is shared with others. */
  get prefixed(): boolean {
    return Boolean(this.options.topicPrefix)
  }

  /**
   * The flag that points a demo whose default client id is `name` at the stage's id for it: nothing,
   * unless the stage shares a broker, where the id is made unique per run (see clientId()).
   */
  idFlag(name: string): string[] {
    return this.prefixed ? ['--id', this.clientId(name)] : []
  }

  /** A fixed client id (for a persistent session), made unique per run when the stage shares a broker. */
  clientId(name: string): string {
    const prefix = this.options.topicPrefix
    return prefix ? `${prefix.replace(/[^\w-]+/g, '-')}${name}` : name
  }

  /** Begin a step: narrate it, and in step-by-step mode wait for Enter first. */
  async step(title: string): Promise<void> {
    this.stepNumber++
    this.stepTitle = `step ${this.stepNumber} "${title}"`
    if (this.options.stepByStep) await waitForEnter(this.dim('  (Enter for the next step)'))
    this.record({ kind: 'step', text: title })
  }

  /** A sentence of narration for the audience. */
  say(text: string): void {
    this.record({ kind: 'say', text })
  }

  /**
   * Start a demo program that keeps running (a subscriber, say). `script` is relative to the repo. The
   * audience sees the command a learner types; the stage starts the program's bundle (./bundle.ts).
   */
  spawn(label: string, script: string, args: string[] = []): Proc {
    const twin = this.pythonTwin(script)
    if (twin) return this.spawnPython(label, twin, args)
    return this.start(label, ['npx tsx', script, ...args.map(shellQuote)].join(' '), process.execPath, [...programArgs(script), ...args])
  }

  /**
   * Start a program that is not ours (redis-server, say), as a learner would type it. It holds no
   * lifeline, so it is killed when this process exits, however it exits, except by SIGKILL.
   */
  spawnCommand(label: string, command: string, args: string[] = []): Proc {
    const proc = this.start(label, [command, ...args.map(shellQuote)].join(' '), command, args)
    const kill = () => proc.child.kill('SIGKILL')
    process.once('exit', kill)
    void proc.exit.then(() => process.removeListener('exit', kill))
    return proc
  }

  private start(label: string, shown: string, file: string, args: string[]): Proc {
    this.record({ kind: 'command', label, text: shown })
    const child = spawn(file, args, {
      cwd: ROOT,
      // The lifeline (lib/cli.ts): the child ends when this pipe closes, even if the stage is SIGKILLed.
      env: { ...process.env, MQTT_URL: this.url, NO_COLOR: '1', [LIFELINE]: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    const proc = new Proc(this, label, child)
    this.processes.add(proc)
    void proc.exit.then(() => this.processes.delete(proc))
    return proc
  }

  /** demos/x/python/name.py for demos/x/name.ts, when the stage plays Python and that file exists. */
  private pythonTwin(script: string): string | undefined {
    if (!this.options.python) return undefined
    const twin = script.replace(/^(demos\/[^/]+)\/([^/]+)\.ts$/, '$1/python/$2.py')
    return twin !== script && existsSync(join(ROOT, twin)) ? twin : undefined
  }

  private spawnPython(label: string, script: string, args: string[]): Proc {
    this.record({ kind: 'command', label, text: ['python3', script, ...args.map(shellQuote)].join(' ') })
    const child = spawn(this.options.python!, [join(ROOT, script), ...args], {
      cwd: ROOT,
      env: { ...process.env, MQTT_URL: this.url, [LIFELINE]: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    const proc = new Proc(this, label, child)
    this.processes.add(proc)
    void proc.exit.then(() => this.processes.delete(proc))
    return proc
  }

  /** Run a demo program to its end (a publisher, say) and expect it to exit with `code`. */
  async run(label: string, script: string, args: string[] = [], code = 0): Promise<Proc> {
    const proc = this.spawn(label, script, args)
    proc.ending = true
    const exit = await proc.finished()
    if (exit.code !== code) {
      throw this.failure(`${label} exited with ${exit.signal ?? `code ${exit.code}`}, expected code ${code}`, proc)
    }
    return proc
  }

  /**
   * Prove that `procs` received nothing more: publish a marker to `topic` and wait until each of them
   * prints it. The broker forwards messages in order, so anything a process printed before the marker,
   * since its last expectation, arrived although it should not have.
   */
  async barrier(topic: string, procs: Proc[], claim: string | undefined, says: string): Promise<void> {
    const marker = `marker-${++this.markers}`
    this.say(`the stage publishes ${marker} to ${topic}: anything printed before it would be a message that should not have arrived`)
    await (await this.controlClient()).publishAsync(topic, marker)
    for (const proc of procs) {
      // Markers of earlier barriers that reached this process too are not messages under test.
      const before = (await proc.until(`${topic} ${marker}`)).filter((line) => !/ marker-\d+$/.test(line))
      if (before.length > 0) {
        throw this.failure(`${proc.label} printed ${JSON.stringify(before[0])} before ${marker}: ${says} did not hold`, proc)
      }
    }
    this.ok(claim, says)
  }

  /**
   * Note that the scenario leaves a retained message on `topic`. close() clears it, so the scenario
   * can run again against the same broker, even after a failure halfway.
   */
  retains(topic: string): void {
    this.retainedTopics.add(topic)
  }

  /**
   * Point the stage at a broker that the scenario started itself, as a process it can stop and kill:
   * programs spawned from now on get `url` as MQTT_URL, and barriers publish their markers there.
   */
  /** Whether restartBroker() can work: the stage holds the bundled broker (not one behind MQTT_URL). */
  get canRestartBroker(): boolean {
    return Boolean(this.ownBroker ?? this.options.broker)
  }

  /** Restart the bundled broker as a crash and a restart would: every client loses its connection. */
  async restartBroker(): Promise<void> {
    const broker = this.ownBroker ?? this.options.broker
    if (!broker) throw this.failure('only the bundled broker can be restarted by the stage, not one given by MQTT_URL')
    await this.control?.endAsync(true)
    this.control = undefined
    await broker.restart()
    this.record({ kind: 'line', label: 'broker', text: readyLine(broker), stream: 'stdout' })
  }

  async useBroker(url: string): Promise<void> {
    await this.control?.endAsync(true)
    this.control = undefined
    this.url = url
  }

  /** A new empty directory under the system's temporary one; close() removes it with all it holds. */
  async tempDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'mqtt-by-example-'))
    this.tempDirs.push(dir)
    return dir
  }

  private async controlClient(): Promise<MqttClient> {
    if (!this.control) {
      this.control = await mqtt.connectAsync(this.url, { clientId: this.controlId, reconnectPeriod: 0, connectTimeout: 5000 })
      // A broker that a scenario kills resets the connection; the next publish fails with a clear error anyway.
      this.control.on('error', () => undefined)
    }
    return this.control
  }

  /** Mark an expectation met, with the claim it demonstrates. */
  ok(claim: string | undefined, text: string): void {
    this.record({ kind: 'ok', claim, text })
  }

  /** End every process, the control client and the bundled broker. Safe to call more than once. */
  async close(): Promise<void> {
    await Promise.all([...this.processes].map((proc) => proc.stop()))
    if (this.retainedTopics.size > 0) {
      // An empty retained payload deletes the topic's retained message (MQTT 3.1.1 §3.3.1.3). QoS 1,
      // awaited one by one: aedes can drop a retained QoS 0 publish followed at once by another.
      const control = await this.controlClient()
      for (const topic of this.retainedTopics) await control.publishAsync(topic, '', { qos: 1, retain: true })
      this.retainedTopics.clear()
    }
    await this.control?.endAsync(true)
    this.control = undefined
    this.stopHearingBroker?.()
    await this.ownBroker?.close()
    this.ownBroker = undefined
    this.removeTempDirs()
  }

  /** Synchronous, so that no process.exit() can cut it short, whichever of two close() calls gets here first. */
  private removeTempDirs(): void {
    for (const dir of this.tempDirs.splice(0)) {
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
      } catch {
        // A process killed a moment ago may still be writing there; the system's temporary directory is cleaned up anyway.
      }
    }
  }

  /** From now on a process that ends is no news (the show was interrupted, and Ctrl-C reached them all). */
  expectEveryEnd(): void {
    for (const proc of this.processes) proc.ending = true
  }

  /** Kill every process at once and remove the temporary directories: the last resort when the stage itself is exiting. */
  killAll(): void {
    for (const proc of this.processes) proc.child.kill('SIGKILL')
    this.removeTempDirs()
  }

  /** An error that names the step, the process, and everything that process printed. */
  failure(what: string, proc?: Proc): StageError {
    let text = `${this.stepTitle}: ${what}`
    if (proc) {
      const printed = proc.output.map((l) => `    ${l.stream === 'stderr' ? '(stderr) ' : ''}${l.text}`)
      text += `\n  ${proc.label} printed:\n${printed.length ? printed.join('\n') : '    (nothing)'}`
    }
    return new StageError(text)
  }

  record(event: Event): void {
    this.events.push(event)
    if (this.options.mode !== 'show') return
    switch (event.kind) {
      case 'step':
        return this.print(`\n${this.bold(`Step ${this.stepNumber}. ${event.text}`)}`)
      case 'command':
        return this.print(this.dim(`  ${event.label}$ ${event.text}`))
      case 'say':
        return this.print(this.dim(`  · ${event.text}`))
      case 'line': {
        const label = `[${event.label}]`
        const painted = event.stream === 'stderr' ? this.paint(31, label) : this.paint(labelColour(event.label), label)
        return this.print(`  ${painted} ${event.text}`)
      }
      case 'ok':
        return this.print(`  ${this.paint(32, '✓')} ${event.claim ? `${this.bold(event.claim)} ` : ''}${event.text}`)
      case 'died':
        return this.print(`  ${this.paint(31, '✗')} ${event.text}`)
    }
  }

  print(text: string): void {
    if (this.options.mode !== 'show') return
    process.stdout.write(`${text}\n`)
  }

  paint(code: number, text: string): string {
    return this.colour ? `\x1b[${code}m${text}\x1b[0m` : text
  }

  bold(text: string): string {
    return this.paint(1, text)
  }

  dim(text: string): string {
    return this.paint(2, text)
  }
}

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
  readonly exit: Promise<Exit>
  private result?: Exit
  /** Set when its end is expected: the stage stops it, or runs it to its end. */
  ending = false
  private cursor = 0
  private readonly lines = new Waiter()

  constructor(private readonly stage: Stage, readonly label: string, readonly child: ChildProcess) {
    for (const stream of ['stdout', 'stderr'] as const) {
      createInterface({ input: child[stream]! }).on('line', (text) => {
        this.output.push({ text, stream })
        stage.record({ kind: 'line', label, text, stream })
        this.lines.arrived()
      })
    }
    this.exit = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        // How it ended, as in "subscriber-1 was killed by SIGKILL".
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`
        // Something other than the stage ended it (Ctrl-C in its terminal, a kill, a crash): say so at once.
        if (!this.ending) stage.record({ kind: 'died', label, text: `${label} ${how}` })
        this.result = { code, signal }
        this.lines.end(how)
        resolve(this.result)
      })
    })
  }

  /** Wait for the program to end by itself; fails, naming it, if the run hangs. */
  finished(): Promise<Exit> {
    return this.lines.until(() => this.result, {
      timedOut: (ms) => this.stage.failure(`${this.label} did not finish within ${seconds(ms)}`, this),
    })
  }

  private get stdout(): string[] {
    return this.output.filter((l) => l.stream === 'stdout').map((l) => l.text)
  }

  /**
   * Wait until this process prints `line` on stdout (after the last expectation), then mark it met.
   * Fails, naming what was awaited, if the process exits first or the run hangs.
   */
  async expect(line: string | RegExp, claim: string | undefined, says: string): Promise<void> {
    await this.until(line)
    this.stage.ok(claim, says)
  }

  /**
   * Wait until this process prints every one of `lines`, in any order (a queued message may come before
   * or after the SUBACK, say), then mark them met. The cursor moves past the last of them.
   */
  async expectAll(lines: string[], claim: string | undefined, says: string): Promise<void> {
    const awaited = lines.map((l) => JSON.stringify(l)).join(' and ')
    await this.waitFor(awaited, () => {
      const printed = this.stdout
      const at = lines.map((line) => printed.indexOf(line, this.cursor))
      if (at.some((i) => i < 0)) return undefined
      this.cursor = Math.max(...at) + 1
      return true
    })
    this.stage.ok(claim, says)
  }

  /** Wait until the error line `line` is printed on stderr. */
  async expectError(line: string, claim: string | undefined, says: string): Promise<void> {
    await this.waitFor(`the error line ${JSON.stringify(line)}`, () =>
      this.output.some((l) => l.stream === 'stderr' && l.text === line) ? [] : undefined)
    this.stage.ok(claim, says)
  }

  /** Wait for `line` (or a line matching it) on stdout; returns the lines printed between the cursor and it. */
  async until(line: string | RegExp): Promise<string[]> {
    return this.waitFor(typeof line === 'string' ? JSON.stringify(line) : `a line matching ${line}`, () => {
      const lines = this.stdout
      const at = lines.findIndex((l, i) => i >= this.cursor && (typeof line === 'string' ? l === line : line.test(l)))
      if (at < 0) return undefined
      const before = lines.slice(this.cursor, at)
      this.cursor = at + 1
      return before
    })
  }

  private waitFor<T>(awaited: string, found: () => T | undefined): Promise<T> {
    return this.lines.until(found, {
      timedOut: (ms) => this.stage.failure(`${this.label} did not print ${awaited} within ${seconds(ms)}`, this),
      ended: (how) => this.stage.failure(`${this.label} ${how} before printing ${awaited}`, this),
    })
  }

  /** Stop the program as Ctrl-C would (SIGINT), and SIGKILL it if it is still there after a while. */
  async stop(signal: NodeJS.Signals = 'SIGINT'): Promise<void> {
    this.ending = true
    if (this.lines.ended !== undefined) return
    this.child.kill(signal)
    // Long enough for a busy machine: a program killed while it disconnects leaves other lines in the broker's log.
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS)
    await this.exit
    clearTimeout(timer)
  }
}

/** Run a scenario silently and return what happened; throws a StageError naming what was not met. */
export async function check(scenario: Scenario, options: Omit<StageOptions, 'mode'> = {}): Promise<Event[]> {
  const stage = new Stage({ ...options, needs: scenario.needs, mode: 'check' })
  const budget = budgetMs(scenario)
  let timer: NodeJS.Timeout | undefined
  const play = (async () => {
    await stage.open()
    await scenario.play(stage)
  })()
  try {
    await Promise.race([play, new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(stage.failure(`scenario ${scenario.name} did not finish within its budget of ${seconds(budget)}`)), budget)
    })])
    return stage.events
  } finally {
    clearTimeout(timer)
    // Past its budget the play is still waiting on its processes; close() ends them, and its failure is no news.
    play.catch(() => undefined)
    await stage.close()
  }
}

/** The claim IDs that a run demonstrated, each once, in the order they were first met. */
export function claimsMet(events: Event[]): string[] {
  return [...new Set(events.flatMap((e) => (e.kind === 'ok' && e.claim ? [e.claim] : [])))]
}

/**
 * Play scenarios for an audience, one after the other, each with a broker of its own: the entry point
 * of `npm run demo:<name>` (one scenario) and of `npm run demo` (all of them, the whole talk).
 */
export async function show(...scenarios: Scenario[]): Promise<void> {
  const [first] = scenarios
  const script = scenarios.length === 1 ? `demo:${first.name}` : 'demo'
  const title = scenarios.length === 1 ? first.title : `every experiment of the article, in order: ${scenarios.map((s) => s.name).join(', ')}`
  const stepByStep = showFlags(script, title)
  // Once after an edit (about a second), and the programs on stage start as fast as node itself.
  await buildBundles(programs())
  let stage = new Stage({ mode: 'show', stepByStep, url: process.env.MQTT_URL, needs: first.needs })
  process.on('exit', () => stage.killAll())
  // Output piped into `head` or a pager that quit: nobody is watching, so end the show quietly.
  process.stdout.on('error', () => process.exit(0))
  let interrupted = false
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    // `on`, not `once`: Ctrl-C reaches us twice under npm (from the terminal, and forwarded by npm), and
    // a second signal with no handler left would kill the show before it has cleaned up.
    process.on(signal, () => {
      if (interrupted) return
      interrupted = true
      stage.expectEveryEnd()
      stage.print(`\n${stage.paint(33, '■')} interrupted (${signal}): stopping every process and the broker`)
      void stage.close().finally(() => process.exit(130))
      setTimeout(() => process.exit(130), 2000).unref()
    })
  }
  const started = performance.now()
  const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`
  const shown: string[] = []
  const skipped: string[] = []
  for (const [i, scenario] of scenarios.entries()) {
    if (i > 0) {
      stage = new Stage({ mode: 'show', stepByStep, url: process.env.MQTT_URL, needs: scenario.needs })
      stage.print('')
    }
    const begun = performance.now()
    stage.print(stage.bold(`▶ ${scenario.name}: ${scenario.title}`))
    // In the whole talk, an experiment whose program is not installed is passed over, with the line
    // that says how to get it; played alone, it fails with that line (in play()).
    const missing = scenarios.length > 1 ? missingProgram(scenario) : undefined
    if (missing) {
      stage.print(`${stage.paint(33, '■')} skipped: ${missing}`)
      skipped.push(scenario.name)
      continue
    }
    try {
      await stage.open()
      await scenario.play(stage)
    } catch (error) {
      // Ctrl-C reaches the demo programs too, and the step that waited on them fails: that is no failure.
      if (interrupted) return new Promise<never>(() => {})
      stage.print(`\n${stage.paint(31, '✗')} ${messageOf(error)}`)
      await stage.close()
      process.exit(1)
    }
    await stage.close()
    const claims = claimsMet(stage.events)
    shown.push(...claims)
    stage.print(`\n${stage.paint(32, '✓')} ${scenario.name}: every expectation met (${claims.join(', ')}) in ${seconds(begun)}`)
  }
  if (scenarios.length > 1) {
    const all = [...new Set(shown)].sort(byClaimId)
    const passedOver = skipped.length ? `; skipped: ${skipped.join(', ')}` : ''
    stage.print(`\n${stage.paint(32, '✓')} ${scenarios.length - skipped.length} experiments, ${all.length} claims shown (${all.join(', ')}) in ${seconds(started)}${passedOver}`)
  }
}

/** C1 < C2 < C10 < S1: the order of ../shared/article/CLAIMS.md. */
export function byClaimId(a: string, b: string): number {
  return a[0] === b[0] ? Number(a.slice(1)) - Number(b.slice(1)) : a < b ? -1 : 1
}

function showFlags(script: string, title: string): boolean {
  const { values } = parseFlags({
    invocation: `npm run ${script} --`,
    description: title,
    notes: 'MQTT_URL=... uses that broker instead of starting the bundled one.',
  }, { step: { type: 'boolean', help: 'wait for Enter before each step' } })
  if (values.step && !process.stdin.isTTY) {
    fail('--step waits for Enter before each step and needs a terminal; run it in one, or leave --step out')
  }
  return Boolean(values.step)
}

function waitForEnter(prompt: string): Promise<void> {
  process.stdout.write(prompt)
  const rl = createInterface({ input: process.stdin })
  return new Promise((resolve) => rl.once('line', () => {
    rl.close()
    resolve()
  }))
}

/** An argument as a learner would type it in a POSIX shell. */
function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`
}

const palette = [36, 35, 34, 33, 96, 95, 94]
function labelColour(label: string): number {
  if (label === 'broker') return 90
  let hash = 0
  for (const c of label) hash = (hash * 31 + c.charCodeAt(0)) >>> 0
  return palette[hash % palette.length]
}
