// What happens on stage when an experiment of the article plays, written once as steps: the stage
// starts the bundled broker (or uses MQTT_URL), starts the demo programs as real processes
// (./proc.ts), waits for what they print, proves that nothing else arrived, and ends every one of
// them when it finishes, fails or is interrupted. It records everything as events: check() runs it
// silently for vitest, where every expectation is an assertion with a timeout; ./show.ts renders
// the events for an audience.
import { randomBytes } from 'node:crypto'
import { existsSync, rmSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { readyLine, startBroker, type RunningBroker } from '../../lib/broker/broker.ts'
import type { PacketRecord, RefusalRecord } from '../../lib/broker/record.ts'
import { LIFELINE } from '../../lib/cli.ts'
import { HUNG_MS, inSeconds, Waiter } from './waiter.ts'
import { ROOT } from '../../lib/build-cache.ts'
import { Proc, shellQuote, StartLimiter, type ProcStage } from './proc.ts'
import { subscribedFilter, toldByLine } from './packet-text.ts'
import type { TraceEntry } from './trace.ts'
import { TraceWriter } from './trace-writer.ts'
import {
  budgetMs,
  type Event,
  type Expectation,
  type Needs,
  type StageOptions,
} from './scenario.ts'

class StageError extends Error {}

/**
 * One experiment of the article, written once as steps: played silently by check(), or as a show
 * (./show.ts).
 */
export interface Scenario {
  /** The npm script is demo:<name>. */
  name: string
  /** One sentence: what the audience is about to see. */
  title: string
  /**
   * How many steps it plays, for the stage view's "step 3 of 7" (a test holds it to the steps
   * played).
   */
  steps: number
  play(stage: Stage): Promise<void>
  /** What the scenario needs of the stage beyond the bundled broker over TCP; see Needs. */
  needs?: Needs
  /**
   * How long one play may take, in seconds, on a machine much slower or busier than the one it was
   * measured on (default ./scenario.ts's DEFAULT_BUDGET_S): check() fails a play that outlasts it,
   * naming the step it was at.
   */
  budget?: number
}

/**
 * How a program plays: `background`, a server the experiment runs on (a broker, Redis), whose own
 * log the room sees with --verbose only; it sees the command and what the clients print.
 */
export interface Backstage {
  background?: boolean
}

/**
 * The programs that connect as MQTT clients and take --id: the stage names their client ids after
 * their labels.
 */
const CLIENT_PROGRAM = /^demos\/[^/]+\/(publisher|subscriber)\.ts$/

/** The bundled broker as a program (`npm run broker`): the stage reads its packet record. */
const BROKER_PROGRAM = 'lib/broker/main.ts'

/** Where a broker process started by the stage writes its record: the pipe the stage reads. */
const RECORD_FD = 3

/** What the trace says it cannot see, against a broker that is not the bundled one. */
const UNSEEN =
  'the broker is not the bundled one, so its packets cannot be read: the arrows are what the ' +
  'programs printed of themselves; acknowledgements, pings, wills and messages that reached ' +
  'nobody are not seen'

export class Stage implements ProcStage {
  readonly events: Event[] = []
  /** The play as the stage view draws it (./trace.ts), in the order it happened. */
  private readonly tracer: TraceWriter
  /** The lifeline of each program that has one: an MQTT client, or a broker. */
  private readonly lifelineOf = new Map<Proc, string>()
  /** Client id -> the lifeline of the program that connects with it. */
  private readonly byClientId = new Map<string, string>()
  /** Lifeline id -> its label. */
  private readonly labelOf = new Map<string, string>()
  /**
   * The lifelines of the programs no broker has told of a CONNECT of yet, oldest first, with the
   * port each connects to: a connection refused before MQTT has no client id, only its listener.
   */
  private readonly unheard = new Map<string, string>()
  /** Where a refusal goes that no program on stage can have made. */
  private stranger?: string
  /** The lifeline of the broker the stage started, was given, or was pointed at by MQTT_URL. */
  private brokerLifeline?: string
  private stopHearingPackets?: () => void
  /** The signal the stage stopped each program with, if it did. */
  private readonly stoppedWith = new Map<Proc, NodeJS.Signals>()
  /** Against MQTT_URL, the filters each program said it subscribed to: what it receives. */
  private readonly filtersOf = new Map<Proc, string[]>()
  /** The URL the demos connect to; set by open(). */
  url = ''
  /** The broker's WebSocket and Unix socket URLs, when it serves them (see Needs). */
  wsUrl?: string
  unixUrl?: string
  readonly waitMs: number
  /** The bundled broker this stage started, and so stops. */
  private ownBroker?: RunningBroker
  private stopHearingBroker?: () => void
  private control?: MqttClient
  /** Who the control client is, on a broker that asks (see useBroker()). */
  private credentials?: { username: string; password: string }
  private readonly controlId = `stage-${randomBytes(4).toString('hex')}`
  private readonly processes = new Set<Proc>()
  /**
   * The broker processes whose record the stage reads, and the last sync each answered (see
   * syncRecords()); `synced` hears each answer and each end.
   */
  private readonly recording = new Map<Proc, number>()
  private readonly synced = new Waiter()
  private syncs = 0
  /** The ticks and steps waiting for the broker processes' records, in order (ok(), step()). */
  private traced: Promise<void> = Promise.resolve()
  /** The pipes to broker processes' stdin that a write error cannot crash the stage on. */
  private readonly guarded = new WeakSet<NodeJS.WritableStream>()
  private stepNumber = 0
  private stepTitle = '(before the first step)'
  private readonly markers = new Set<string>()
  private readonly retainedTopics = new Set<string>()
  private readonly tempDirs: string[] = []
  private closing = false
  /** How many programs start at once (see StartLimiter). */
  private readonly starts = new StartLimiter()
  /**
   * Every event recorded: what waits on the lines of several processes, or of the broker, look at.
   */
  private readonly printing = new Waiter()

  readonly options: StageOptions

  constructor(options: StageOptions = {}) {
    this.options = options
    this.waitMs = options.waitMs ?? HUNG_MS
    this.tracer = new TraceWriter(options.onTrace)
    const { scenario } = options
    if (scenario) {
      const programs = options.url !== undefined && !options.needs?.none
      this.tracer.play({
        name: scenario.name,
        title: scenario.title,
        steps: scenario.steps,
        source: programs ? 'programs' : 'broker',
        ...(programs && { unseen: UNSEEN }),
      })
    }
  }

  /** The trace of the play so far (./trace.ts). */
  get trace(): TraceEntry[] {
    return this.tracer.entries
  }

  /** The play ended: every expectation met, or the first that failed. */
  result(ok: boolean, text: string): void {
    this.tracer.result(ok, text)
  }

  /** Start the bundled broker on a free port, or use options.url. */
  async open(): Promise<void> {
    if (this.options.needs?.none) return
    if (this.options.url) {
      this.url = this.options.url
      this.brokerLifeline = this.lifeline('broker', 'broker')
      this.say(`the broker is ${this.url} (from MQTT_URL)`)
      return
    }
    const listeners = this.options.needs?.listeners ?? []
    const broker =
      this.options.broker ??
      (this.ownBroker = await startBroker({
        port: 0,
        wsPort: listeners.includes('ws') ? 0 : undefined,
        unixPath: listeners.includes('unix')
          ? join(await this.tempDir(), 'broker.sock')
          : undefined,
      }))
    this.brokerLifeline = this.lifeline('broker', 'broker')
    this.stopHearingPackets = broker.onPacket((record) =>
      this.recorded(this.brokerLifeline!, record),
    )
    this.stopHearingBroker = broker.onClientEvent((line, clientId) => {
      if (clientId !== this.controlId)
        this.record({ kind: 'line', label: 'broker', text: line, stream: 'stdout' })
    })
    this.url = broker.url
    this.wsUrl = broker.wsUrl
    this.unixUrl = broker.unixUrl
    this.record({ kind: 'line', label: 'broker', text: readyLine(broker), stream: 'stdout' })
    this.record({
      kind: 'say',
      detail: true,
      text:
        'the stage started the bundled broker on a free port; every program below gets its URL ' +
        'as MQTT_URL',
    })
  }

  /** The article's topic, under the stage's prefix when it shares a broker with others. */
  topic(name: string): string {
    return `${this.options.topicPrefix ?? ''}${name}`
  }

  /**
   * The flag that points a demo whose default topic is `name` at the stage's topic: nothing, unless
   * the stage prefixes topics, so the commands the show prints stay the ones the docs give.
   */
  topicFlag(name: string): string[] {
    return this.prefixed ? ['--topic', this.topic(name)] : []
  }

  /** Whether topics are put under a prefix, because the broker is shared with others. */
  get prefixed(): boolean {
    return Boolean(this.options.topicPrefix)
  }

  /**
   * The flag that points a demo whose default client id is `name` at the stage's id for it:
   * nothing, unless the stage shares a broker, where the id is made unique per run (see
   * clientId()).
   */
  idFlag(name: string): string[] {
    return this.prefixed ? ['--id', this.clientId(name)] : []
  }

  /**
   * A fixed client id (for a persistent session), made unique per run when the stage shares a
   * broker.
   */
  clientId(name: string): string {
    const prefix = this.options.topicPrefix
    return prefix ? `${prefix.replace(/[^\w-]+/g, '-')}${name}` : name
  }

  /** Begin a step: narrate it, after what options.beforeStep does (wait for Enter, say). */
  async step(title: string): Promise<void> {
    this.stepNumber++
    this.stepTitle = `step ${this.stepNumber} "${title}"`
    await this.options.beforeStep?.(this.stepNumber, title)
    const synced = this.traced.then(() => this.syncRecords())
    this.traced = synced.catch(() => undefined)
    await synced
    this.record({ kind: 'step', number: this.stepNumber, text: title })
    this.tracer.step(this.stepNumber, title)
  }

  /**
   * Before a step begins, have every broker process the stage started write what it has recorded:
   * its record and the programs' lines come on pipes of their own, and without this a packet that
   * the broker handled before the step could be read after it, and drawn under the next step's
   * band. Each is asked `sync N` on its standard input and answers `{"sync":N}` after its lines
   * (lib/broker/main.ts); one that has not started yet, or has ended, has nothing to tell.
   */
  private async syncRecords(): Promise<void> {
    const asked: [Proc, number][] = []
    for (const [proc] of this.recording) {
      const stdin = proc.child?.stdin
      if (!stdin || proc.child?.exitCode !== null || proc.child.signalCode !== null) continue
      const sync = ++this.syncs
      // A broker that ends as it is asked closes the pipe: its end is what the wait hears then.
      if (!this.guarded.has(stdin)) stdin.on('error', () => undefined)
      this.guarded.add(stdin)
      stdin.write(`sync ${sync}\n`)
      asked.push([proc, sync])
    }
    const waiting = () =>
      asked.find(([proc, sync]) => this.recording.has(proc) && this.recording.get(proc)! < sync)
    await this.synced.until(() => (waiting() ? undefined : true), {
      timeoutMs: this.waitMs,
      timedOut: (ms) =>
        this.failure(
          `${waiting()?.[0].label} did not write its packet record within ${inSeconds(ms)}`,
        ),
    })
  }

  /** A sentence of narration for the audience. */
  say(text: string): void {
    this.record({ kind: 'say', text })
  }

  /**
   * Start a demo program that keeps running (a subscriber, say). `script` is relative to the repo.
   * The audience sees the command a learner types; the stage starts the program's bundle
   * (./bundle.ts) when the limiter lets it, and gives an MQTT client the client id `label` unless
   * `args` name one.
   */
  spawn(label: string, script: string, args: string[] = [], how: Backstage = {}): Proc {
    const twin = this.pythonTwin(script)
    const id =
      CLIENT_PROGRAM.test(script) && !args.includes('--id')
        ? this.clientId(this.freeId(label))
        : undefined
    const typed = twin ? ['python3', twin] : ['npx tsx', script]
    const text = [...typed, ...args.map(shellQuote)].join(' ')
    this.record({ kind: 'command', label, text, id, ...how })
    const proc = new Proc(this, label)
    this.processes.add(proc)
    const isBroker = script === BROKER_PROGRAM
    const clientId = id ?? (args.includes('--id') ? args[args.indexOf('--id') + 1] : undefined)
    if (isBroker || clientId !== undefined) {
      const lifeline = isBroker
        ? this.lifeline(label, 'broker')
        : this.lifeline(label, 'program', { clientId })
      this.lifelineOf.set(proc, lifeline)
      if (!isBroker && clientId) {
        this.byClientId.set(clientId, lifeline)
        const url = args.includes('--url') ? args[args.indexOf('--url') + 1] : this.url
        this.unheard.set(lifeline, portOf(url))
      }
    }
    void proc.exit.then((exit) => {
      this.processes.delete(proc)
      this.recording.delete(proc)
      this.synced.arrived()
      const lifeline = this.lifelineOf.get(proc)
      // As the stage stopped it, if it did: a broker stopped with Ctrl-C exits with code 0.
      const signal = this.stoppedWith.get(proc) ?? exit.signal
      if (lifeline && proc.child)
        this.tracer.end(lifeline, signal === 'SIGKILL' ? 'kill' : signal ? 'stop' : 'exit')
    })
    // A broker process writes its packet record to a pipe of its own, as JSON lines.
    const record = isBroker
      ? {
          fd: RECORD_FD,
          line: (line: string) => {
            const sync = /^\{"sync":(\d+)\}$/.exec(line)?.[1]
            if (sync === undefined)
              return this.recorded(
                this.lifelineOf.get(proc)!,
                JSON.parse(line) as PacketRecord | RefusalRecord,
              )
            this.recording.set(proc, Number(sync))
            this.synced.arrived()
          },
        }
      : undefined
    const recordArgs = isBroker ? ['--record', `/dev/fd/${RECORD_FD}`] : []
    if (isBroker) this.recording.set(proc, 0)
    // The lifeline (lib/cli.ts): the child ends when its stdin pipe closes, even if the stage is
    // SIGKILLed.
    const command = twin ? [this.options.python!, join(ROOT, twin)] : undefined
    const env = { ...process.env, MQTT_URL: this.url, NO_COLOR: '1', [LIFELINE]: '1' }
    const all = [...args, ...(id ? ['--id', id] : []), ...recordArgs]
    proc.start(this.starts, script, all, env, { command, record })
    return proc
  }

  /**
   * Start a program that is not ours (redis-server, say), as a learner would type it. It holds no
   * lifeline, so it is killed when this process exits, however it exits, except by SIGKILL.
   */
  spawnCommand(
    label: string,
    command: string,
    args: string[] = [],
    { chatter, ...how }: Backstage & { chatter?: RegExp } = {},
  ): Proc {
    const text = [command, ...args.map(shellQuote)].join(' ')
    this.record({ kind: 'command', label, text, ...how })
    const proc = new Proc(this, label)
    proc.chatter = chatter
    this.processes.add(proc)
    const kill = () => proc.child?.kill('SIGKILL')
    process.once('exit', kill)
    void proc.exit.then(() => {
      this.processes.delete(proc)
      process.removeListener('exit', kill)
    })
    proc.start(this.starts, command, args, process.env, { command: [command] })
    return proc
  }

  /** A lifeline in the trace, named with `label`. */
  private lifeline(
    label: string,
    role: 'program' | 'broker',
    more: { stage?: boolean; clientId?: string } = {},
  ): string {
    const id = this.tracer.lifeline(label, role, more)
    this.labelOf.set(id, label)
    return id
  }

  /**
   * A record of the broker whose lifeline is `broker`: a packet, the broker's own act, or a
   * connection refused before MQTT.
   */
  private recorded(broker: string, record: PacketRecord | RefusalRecord): void {
    if (record.act === 'refused') {
      this.refused(broker, record)
      return
    }
    const client = this.clientLifeline(record.client)
    // Its CONNECT, not any packet: a late one of an earlier program with the same client id would
    // be taken for the program that has that id now.
    if (record.dir === 'in' && record.packet.cmd === 'connect') this.unheard.delete(client)
    this.tracer.record(broker, client, this.labelOf.get(client) ?? client, record)
  }

  /**
   * A connection refused before MQTT: the first program on stage that connects to that listener's
   * port and that no broker has told of, as the stage starts them one by one. Its record comes
   * before the program ends, where the broker refused it; where the program hung up, the record
   * may come after its end, and the program is still the first one unheard of. (One that never
   * connected and was never refused would stay first: no show has one on a TLS port.)
   */
  private refused(broker: string, record: RefusalRecord): void {
    const port = portOf(record.listener)
    const program = [...this.unheard].find(([, on]) => on === port)?.[0]
    if (program) this.unheard.delete(program)
    const from = program ?? (this.stranger ??= this.lifeline('(unknown client)', 'program'))
    this.tracer.refusal(from, broker, record.listener, record.reason)
  }

  /**
   * The lifeline of the program that connects with `clientId`: the one the stage gave that id, the
   * stage's own client, or else the one program on stage that connects with an id of its own (the
   * dashboard's, made up by MQTT.js); failing that, a lifeline named after the id.
   */
  private clientLifeline(clientId: string): string {
    const known = this.byClientId.get(clientId)
    if (known) return known
    let lifeline: string
    if (clientId === this.controlId)
      lifeline = this.lifeline('stage', 'program', { stage: true, clientId })
    else {
      const unnamed = [...this.processes].filter(
        (p) => p.child && !p.command && !this.lifelineOf.has(p),
      )
      if (unnamed.length === 1) {
        lifeline = this.lifeline(unnamed[0].label, 'program', { clientId })
        this.lifelineOf.set(unnamed[0], lifeline)
      } else lifeline = this.lifeline(clientId || '(no client id)', 'program', { clientId })
    }
    this.byClientId.set(clientId, lifeline)
    return lifeline
  }

  /**
   * `label`, or `label-2` and so on while a running program holds it: two clients with one id would
   * throw each other off.
   */
  private freeId(label: string): string {
    const taken = new Set([...this.processes].map((p) => p.label))
    let id = label
    for (let n = 2; taken.has(id); n++) id = `${label}-${n}`
    return id
  }

  /**
   * demos/x/python/name.py for demos/x/name.ts, when the stage plays Python and that file exists.
   */
  private pythonTwin(script: string): string | undefined {
    if (!this.options.python) return undefined
    const twin = script.replace(/^(demos\/[^/]+)\/([^/]+)\.ts$/, '$1/python/$2.py')
    return twin !== script && existsSync(join(ROOT, twin)) ? twin : undefined
  }

  /** Run a demo program to its end (a publisher, say) and expect it to exit with `code`. */
  async run(label: string, script: string, args: string[] = [], code = 0): Promise<Proc> {
    const proc = this.spawn(label, script, args)
    proc.ending = true
    const exit = await proc.finished()
    if (exit.code !== code) {
      throw this.failure(
        `${label} exited with ${exit.signal ?? `code ${exit.code}`}, expected code ${code}`,
        proc,
      )
    }
    return proc
  }

  /**
   * Prove that `procs` received nothing more: publish a marker to `topic` and wait until each of
   * them prints it. The broker forwards messages in order, so anything a process printed before the
   * marker, since its last expectation, arrived although it should not have.
   */
  async barrier(topic: string, procs: Proc[], met: Expectation): Promise<void> {
    const marker = `marker-${this.markers.size + 1}`
    this.markers.add(marker)
    this.record({
      kind: 'say',
      detail: true,
      text:
        `the stage publishes ${marker} to ${topic}: anything printed before it would be a ` +
        `message that should not have arrived`,
    })
    await (await this.controlClient()).publishAsync(topic, marker)
    this.toldByStage(`published ${JSON.stringify(marker)} to ${topic}`)
    for (const proc of procs) {
      // Markers of earlier barriers that reached this process too are not messages under test.
      const before = (await proc.until(`${topic} ${marker}`)).filter((line) => !this.isMarker(line))
      if (before.length > 0) {
        const what = `${proc.label} printed ${JSON.stringify(before[0])} before ${marker}`
        throw this.failure(`${what}: ${met.says} did not hold`, proc)
      }
    }
    this.ok(met)
  }

  /**
   * Prove that the members of a shared subscription (`procs`, subscribed to `topic` through one
   * $share group) got each of `messages` once between them, and nothing more. A marker sent to a
   * group reaches one member only, so markers go one at a time until every member has printed one;
   * what a member printed before its first marker is its share, apart from retained messages, which
   * a broker may send to each member as it subscribes.
   */
  async groupBarrier(
    topic: string,
    procs: Proc[],
    messages: string[],
    met: Expectation,
  ): Promise<Map<Proc, string[]>> {
    const line = (text: string) => `${topic} ${text}`
    for (const message of messages) await this.untilOneOf(procs, line(message))
    const firsts = new Map<Proc, string>()
    while (firsts.size < procs.length) {
      const marker = `marker-${this.markers.size + 1}`
      this.markers.add(marker)
      this.record({
        kind: 'say',
        detail: true,
        text: `the stage publishes ${marker} to ${topic}: one member of the group gets it`,
      })
      await (await this.controlClient()).publishAsync(topic, marker, { qos: 1 })
      this.toldByStage(`published ${JSON.stringify(marker)} to ${topic}`)
      const member = await this.untilOneOf(procs, line(marker))
      if (!firsts.has(member)) firsts.set(member, line(marker))
    }
    const shares = new Map<Proc, string[]>()
    for (const proc of procs) {
      const before = (await proc.until(firsts.get(proc)!)).filter(
        (l) => !this.isMarker(l) && !l.endsWith(' (retained)'),
      )
      shares.set(
        proc,
        before.map((l) => (l.startsWith(`${topic} `) ? l.slice(topic.length + 1) : l)),
      )
    }
    const got = [...shares.values()].flat().sort()
    if (JSON.stringify(got) !== JSON.stringify([...messages].sort())) {
      const who = [...shares]
        .map(([proc, share]) => `${proc.label} printed ${JSON.stringify(share)}`)
        .join(', ')
      const sent = `the group was sent ${JSON.stringify(messages)} once each`
      throw this.failure(`${sent}, but ${who}: ${met.says} did not hold`)
    }
    this.ok(met)
    return shares
  }

  /**
   * Wait until one of `procs` prints `line` on stdout (after its last expectation); resolves with
   * that one.
   */
  private untilOneOf(procs: Proc[], line: string): Promise<Proc> {
    return this.printing.until(() => procs.find((proc) => proc.hasPrinted(line)), {
      timeoutMs: this.waitMs,
      timedOut: (ms) => {
        const labels = procs.map((p) => p.label).join(', ')
        const none = `none of ${labels} printed ${JSON.stringify(line)}`
        return this.failure(`${none} within ${inSeconds(ms)}`)
      },
    })
  }

  /**
   * Whether the stage hears what the broker says of its clients: it is the bundled broker, started
   * by the stage or given to it.
   */
  get hearsBroker(): boolean {
    return this.stopHearingBroker !== undefined
  }

  /**
   * Wait until the broker says `line` of a client, or has said it already (only where hearsBroker).
   */
  async brokerSays(line: string): Promise<void> {
    if (!this.hearsBroker)
      throw this.failure(`the stage cannot hear what the broker at ${this.url} says of its clients`)
    await this.printing.until(
      () =>
        this.events.some((e) => e.kind === 'line' && e.label === 'broker' && e.text === line)
          ? true
          : undefined,
      {
        timeoutMs: this.waitMs,
        timedOut: (ms) =>
          this.failure(`the broker did not say ${JSON.stringify(line)} within ${inSeconds(ms)}`),
      },
    )
  }

  /**
   * Let `seconds` pass, where no event marks the moment (a broker the stage does not hear keeps its
   * clocks to itself), and say so: what follows must prove what the time was for.
   */
  async waitOut(seconds: number, why: string): Promise<void> {
    this.say(`the stage waits ${seconds} s: ${why}`)
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
  }

  /**
   * Wait until the broker holds no retained message on `topic` any more (it expired, say), asking
   * it every quarter of a second: a new subscription gets the retained message, if there is one,
   * before a marker the stage publishes after subscribing. Nobody else may be subscribed to `topic`
   * meanwhile.
   */
  async untilNotRetained(topic: string): Promise<void> {
    const control = await this.controlClient()
    const started = Date.now()
    for (;;) {
      const marker = `marker-${this.markers.size + 1}`
      this.markers.add(marker)
      let retained = false
      const heard = new Promise<void>((resolve) => {
        const listen = (t: string, payload: Buffer, packet: { retain: boolean }) => {
          if (t !== topic) return
          if (packet.retain) retained = true
          if (payload.toString() === marker) {
            control.removeListener('message', listen)
            resolve()
          }
        }
        control.on('message', listen)
      })
      await control.subscribeAsync(topic, { qos: 1 })
      await control.publishAsync(topic, marker, { qos: 1 })
      await heard
      await control.unsubscribeAsync(topic)
      if (!retained) return
      if (Date.now() - started > this.waitMs) {
        const held = `the broker still held a retained message on ${topic}`
        throw this.failure(`${held} after ${inSeconds(this.waitMs)}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }

  /**
   * Against MQTT_URL, what the stage's own client sent, as a program's line would tell it (the
   * bundled broker's record has it already).
   */
  private toldByStage(line: string): void {
    if (this.options.url === undefined || this.options.needs?.none || !this.brokerLifeline) return
    const stage = this.clientLifeline(this.controlId)
    for (const told of toldByLine(line, []))
      this.tracer.packet(stage, this.brokerLifeline, told.type, told.text)
  }

  /** Whether `line` carries one of the stage's markers rather than a message of the experiment. */
  private isMarker(line: string): boolean {
    const last = line.match(/\bmarker-\d+$/)?.[0]
    return last !== undefined && this.markers.has(last)
  }

  /**
   * Note that the scenario leaves a retained message on `topic`. close() clears it, so the scenario
   * can run again against the same broker, even after a failure halfway.
   */
  retains(topic: string): void {
    this.retainedTopics.add(topic)
  }

  /**
   * Whether restartBroker() can work: the stage holds the bundled broker (not one behind MQTT_URL).
   */
  get canRestartBroker(): boolean {
    return Boolean(this.ownBroker ?? this.options.broker)
  }

  /**
   * Restart the bundled broker as a crash and a restart would: every client loses its connection.
   */
  async restartBroker(): Promise<void> {
    const broker = this.ownBroker ?? this.options.broker
    if (!broker)
      throw this.failure(
        'only the bundled broker can be restarted by the stage, not one given by MQTT_URL',
      )
    await this.control?.endAsync(true)
    this.control = undefined
    if (this.brokerLifeline) this.tracer.end(this.brokerLifeline, 'kill')
    await broker.restart()
    this.brokerLifeline = this.lifeline('broker', 'broker')
    this.record({ kind: 'line', label: 'broker', text: readyLine(broker), stream: 'stdout' })
  }

  /**
   * Point the stage at a broker that the scenario started itself, as a process it can stop and
   * kill: programs spawned from now on get `url` as MQTT_URL, and barriers publish their markers
   * there, as the user that `credentials` name, where the broker wants one (and the ACL lets that
   * user publish a marker where it goes).
   */
  async useBroker(
    url: string,
    credentials?: { username: string; password: string },
  ): Promise<void> {
    await this.control?.endAsync(true)
    this.control = undefined
    this.url = url
    this.credentials = credentials
  }

  /**
   * A new empty directory under the system's temporary one; close() removes it with all it holds.
   */
  async tempDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'mqtt-by-example-'))
    this.tempDirs.push(dir)
    return dir
  }

  private async controlClient(): Promise<MqttClient> {
    if (!this.control) {
      // As long as any wait: a busy machine may take a while to answer, and that is no reason to
      // give up. No number cache, as for the demos (lib/demo-flags.ts): a tenth of a second at the
      // show's first marker.
      this.control = await mqtt.connectAsync(this.url, {
        ...this.credentials,
        clientId: this.controlId,
        reconnectPeriod: 0,
        connectTimeout: this.waitMs,
        writeCache: false,
      })
      // A broker that a scenario kills resets the connection; the next publish fails with a clear
      // error anyway.
      this.control.on('error', () => undefined)
    }
    return this.control
  }

  /** Mark an expectation met, with the claim it demonstrates; `proc` is the program it is about. */
  ok(met: Expectation, proc?: Proc): void {
    this.record({ kind: 'ok', claim: met.claim, text: met.says })
    const about = proc && this.lifelineOf.get(proc)
    const tick = () => void this.tracer.tick(met.says, met.claim, about)
    // Beside the packet it proves, once the broker processes have written what they recorded: the
    // program's line that proved it may have come before the broker's record of that packet.
    if (this.recording.size === 0) tick()
    else this.traced = this.traced.then(() => this.syncRecords()).then(tick, tick)
  }

  /** End every process, the control client and the bundled broker. Safe to call more than once. */
  async close(): Promise<void> {
    this.closing = true
    // The last ticks, placed while their brokers still answer.
    await this.traced
    await Promise.all([...this.processes].map((proc) => proc.stop()))
    if (this.retainedTopics.size > 0) {
      // An empty retained payload deletes the topic's retained message (MQTT 3.1.1 §3.3.1.3,
      // [MQTT-3.3.1-10]). QoS 1, awaited one by one: aedes can drop a retained QoS 0 publish
      // followed at once by another.
      const control = await this.controlClient()
      for (const topic of this.retainedTopics)
        await control.publishAsync(topic, '', { qos: 1, retain: true })
      this.retainedTopics.clear()
    }
    await this.control?.endAsync(true)
    this.control = undefined
    this.stopHearingBroker?.()
    this.stopHearingPackets?.()
    if (this.ownBroker && this.brokerLifeline) this.tracer.end(this.brokerLifeline, 'stop')
    await this.ownBroker?.close()
    this.ownBroker = undefined
    this.removeTempDirs()
  }

  /**
   * Synchronous, so that no process.exit() can cut it short, whichever of two close() calls gets
   * here first.
   */
  private removeTempDirs(): void {
    for (const dir of this.tempDirs.splice(0)) {
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
      } catch {
        // A process killed a moment ago may still be writing there; the system's temporary
        // directory is cleaned up anyway.
      }
    }
  }

  /**
   * From now on a process that ends is no news (the show was interrupted, and Ctrl-C reached them
   * all).
   */
  expectEveryEnd(): void {
    for (const proc of this.processes) proc.ending = true
  }

  /**
   * Kill every process at once and remove the temporary directories: the last resort when the stage
   * itself is exiting.
   */
  killAll(): void {
    for (const proc of this.processes) proc.child?.kill('SIGKILL')
    this.removeTempDirs()
  }

  /** An error that names the step, the process, and everything that process printed. */
  failure(what: string, proc?: Proc): StageError {
    let text = `${this.stepTitle}: ${what}`
    if (proc) {
      const printed = proc.output.map(
        (l) => `    ${l.stream === 'stderr' ? '(stderr) ' : ''}${l.text}`,
      )
      text += `\n  ${proc.label} printed:\n${printed.length ? printed.join('\n') : '    (nothing)'}`
    }
    return new StageError(text)
  }

  /** A line `proc` printed. */
  heard(proc: Proc, text: string, stream: 'stdout' | 'stderr'): void {
    if (this.options.url !== undefined && !this.options.needs?.none && stream === 'stdout')
      this.told(proc, text)
    this.record({
      kind: 'line',
      label: proc.label,
      text,
      stream,
      ...(this.isMarker(text) && { marker: true }),
      ...(proc.chatter?.test(text) && { detail: true }),
    })
  }

  /**
   * Against MQTT_URL, where the broker's record cannot be read: the packets `proc`'s line tells of.
   */
  private told(proc: Proc, text: string): void {
    const lifeline = this.lifelineOf.get(proc)
    const broker = this.brokerLifeline
    if (!lifeline || !broker) return
    const filters = this.filtersOf.get(proc) ?? []
    const filter = subscribedFilter(text)
    if (filter) this.filtersOf.set(proc, [...filters, filter])
    for (const told of toldByLine(text, filters)) {
      const [from, to] = told.dir === 'out' ? [lifeline, broker] : [broker, lifeline]
      this.tracer.packet(from, to, told.type, told.text, told.retained ? 'retained' : undefined)
    }
  }

  /** The scenario stops `proc` with `signal` (not the stage's own clean-up at the end). */
  stopped(proc: Proc, signal: NodeJS.Signals): void {
    this.stoppedWith.set(proc, signal)
    if (!this.closing)
      this.record({ kind: 'stop', label: proc.label, signal, pid: proc.child!.pid! })
  }

  /** Whether close() has begun: programs that have not started yet never will. */
  get isClosing(): boolean {
    return this.closing
  }

  record(event: Event): void {
    this.events.push(event)
    this.options.onEvent?.(event)
    this.printing.arrived()
  }
}

/** The port of `url`, as a string; '' where it has none (mqtt+unix://) or is no URL. */
function portOf(url: string | undefined): string {
  try {
    return new URL(url ?? '').port
  } catch {
    return ''
  }
}

/**
 * Run a scenario silently and return what happened; throws a StageError naming what was not met.
 */
export async function check(scenario: Scenario, options: StageOptions = {}): Promise<Event[]> {
  const stage = new Stage({ ...options, needs: scenario.needs, scenario })
  const budget = budgetMs(scenario)
  let timer: NodeJS.Timeout | undefined
  let result = ''
  let failed: string | undefined
  const play = (async () => {
    await stage.open()
    await scenario.play(stage)
  })()
  try {
    await Promise.race([
      play,
      new Promise<never>((_, reject) => {
        const late = `scenario ${scenario.name} did not finish within its budget`
        timer = setTimeout(() => reject(stage.failure(`${late} of ${inSeconds(budget)}`)), budget)
      }),
    ])
    result = `${scenario.name}: every expectation met`
    return stage.events
  } catch (error) {
    failed = error instanceof Error ? error.message.split('\n')[0] : String(error)
    throw error
  } finally {
    clearTimeout(timer)
    // Past its budget the play is still waiting on its processes; close() ends them, and its
    // failure is no news.
    play.catch(() => undefined)
    await stage.close()
    // Last in the trace, after every program and the broker have ended.
    stage.result(failed === undefined, failed ?? result)
  }
}
