// `npm run bench`: the numbers behind every speed claim, measured side by side in one run. It
// starts four brokers, each as a process of its own on a free loopback port: the bundled broker,
// the same with its packet record on (lib/broker/record.ts, written to /dev/null: what the stage
// view's record costs), aedes alone (without lib/broker/fixes.ts: what the fixes cost) and, where
// installed, Mosquitto.
// Several load processes (test/bench/load.ts, bundled and started with plain node) then relay QoS 0
// and QoS 1 messages and fan them out, over MQTT 3.1.1 and MQTT 5, in windows of 200 messages,
// through each broker in turn, round after round, the broker on a CPU of its own and the load on
// the other (see pinning below); each figure is a broker's best round, as a busy machine can only
// slow a round down. Prints a table with each broker's ratio to aedes alone; --json FILE writes the
// numbers too; --startup adds what a speaker feels: how long demo programs and shows take to start.
// --cluster (test/bench/cluster.ts) and --a1 (test/bench/a1.ts) measure something else instead.
// Written with zx where it starts and waits on programs (test/helpers/daemon.ts); the load
// processes are forked, as they report over IPC.
import { fork, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { build, stop as stopEsbuild } from 'esbuild'
import { $, which } from 'zx'
import { fail, messageOf } from '../../lib/cli.ts'
import { parseFlags } from '../../lib/parse-flags.ts'
import { inSeconds, Waiter } from '../../scenarios/stage/waiter.ts'
import { scenarios } from '../../scenarios/index.ts'
import { missingProgram } from '../../scenarios/stage/scenario.ts'
import { ROOT } from '../../lib/build-cache.ts'
import type { Report, Task } from './load.ts'
import { startDaemon } from '../helpers/daemon.ts'
import { mosquittoPath } from '../helpers/mosquitto.ts'
import { markdownTable } from '../helpers/markdown-table.ts'
import { freePort } from '../helpers/processes.ts'

const { values: flags } = parseFlags(
  {
    invocation: 'npm run bench --',
    description:
      'Measure the bundled broker, aedes alone and Mosquitto (where installed) side by side.',
  },
  {
    quick: {
      type: 'boolean',
      help: 'one or two rounds of fewer messages, for a quick look (about 15 s)',
    },
    startup: {
      type: 'boolean',
      help:
        'also time what a speaker waits for: demo programs and every show, three times each ' +
        '(about two and a half minutes more; once each with --quick, about a minute)',
    },
    cluster: {
      type: 'boolean',
      help: 'instead: one bundled broker beside two sharing one Redis (test/bench/cluster.ts)',
    },
    a1: {
      type: 'boolean',
      help:
        "instead: the article's publisher (paho-mqtt), run --runs times through each broker, " +
        'and what arrived (A1)',
    },
    runs: {
      type: 'string',
      arg: 'N',
      help: 'how many runs of the publisher per broker with --a1 (default 100)',
    },
    json: { type: 'string', arg: 'FILE', help: 'also write the results as JSON to FILE' },
    rounds: {
      type: 'string',
      arg: 'N',
      help:
        'exactly N rounds of each row through each broker (default 3 to 8, as time allows): more ' +
        'for a ratio near its mark',
    },
    only: {
      type: 'string',
      arg: 'TEXT',
      help: 'only the rows whose name contains TEXT, e.g. --only "MQTT 5, QoS 0"',
    },
    trace: {
      type: 'boolean',
      help: "print every round's figures as it ends, not only each broker's best",
    },
    'no-pin': {
      type: 'boolean',
      help: 'leave the brokers and the load on whichever CPUs the system chooses',
    },
    profile: {
      type: 'string',
      arg: 'DIR',
      help:
        'write CPU profiles of the bundled broker and of aedes alone to DIR (for Chrome ' +
        'DevTools or speedscope): where a ratio below 1 comes from',
    },
  },
)
if (flags.runs !== undefined && !flags.a1)
  fail('--runs goes with --a1; see npm run bench -- --help')
if (flags.cluster) {
  const { benchCluster } = await import('./cluster.ts')
  console.log(
    await benchCluster({ quick: Boolean(flags.quick) }).catch((error: unknown) =>
      fail(messageOf(error)),
    ),
  )
  process.exit(0)
}
if (flags.a1) {
  const runs = Number(flags.runs ?? '100')
  if (!Number.isInteger(runs) || runs < 1)
    fail(`--runs must be a whole number of at least 1, not ${JSON.stringify(flags.runs)}`)
  const { benchA1 } = await import('./a1.ts')
  console.log(await benchA1(runs).catch((error: unknown) => fail(messageOf(error))))
  process.exit(0)
}

/**
 * Rounds of each workload through every broker; each broker's best round counts. More rounds while
 * a workload's share of the time lasts: the more rounds, the likelier each broker has met a quiet
 * moment of a busy machine. A warm-up comes first, so that no broker is measured before its code is
 * compiled.
 */
const ROUNDS: Rounds =
  roundsFlag() ??
  (flags.quick ? { least: 1, most: 2, seconds: 4 } : { least: 3, most: 8, seconds: 16 })

interface Rounds {
  least: number
  most: number
  /** How long a row may take, past its `least` rounds. */
  seconds: number
}

function roundsFlag(): Rounds | undefined {
  if (flags.rounds === undefined) return undefined
  const n = Number(flags.rounds)
  if (!Number.isInteger(n) || n < 1)
    fail(`--rounds must be a whole number of at least 1, not ${JSON.stringify(flags.rounds)}`)
  return { least: n, most: n, seconds: 0 }
}
/**
 * Messages per publisher: about a second of work per broker and workload on the project's 2-core
 * development machine at rest, so that a burst of load elsewhere on the machine weighs little in a
 * round.
 */
const counts = flags.quick
  ? { qos0: 5_000, qos1: 3_000, fanout: 1_000 }
  : { qos0: 25_000, qos1: 15_000, fanout: 6_000 }
const FANOUT_SUBSCRIBERS = 10
/** The members of the shared subscription's group (its row: deliveries per second over them). */
const GROUP_MEMBERS = 4
const PAYLOAD_BYTES = 16
/**
 * Load processes: for the QoS 0 relay two, each a publisher and its subscriber; for the QoS 1 relay
 * two publishers and two subscribers; for the fan-out the publisher with one subscriber connection,
 * and three hosts of the others.
 */
const LOAD_PROCESSES = 4
/** Every wait is bounded: a broker that stops delivering fails the run instead of hanging it. */
const WAIT_MS = 60_000

const progress = (text: string) => process.stderr.write(`· ${text}\n`)

interface Broker {
  name: string
  url: string
  /** CPU time the broker process has used so far, in seconds, where the system says (Linux). */
  cpuSeconds(): number | undefined
  stop(): Promise<void>
}

/**
 * CPU time of every thread of process `pid` (the main thread, the garbage collector's, libuv's), in
 * seconds.
 */
function cpuSecondsOf(pid: number | undefined): number | undefined {
  try {
    // The first field of schedstat is the nanoseconds a thread has run; threads that ended are not
    // counted.
    return (
      readdirSync(`/proc/${pid}/task`).reduce(
        (sum, task) =>
          sum + Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]),
        0,
      ) / 1e9
    )
  } catch {
    return undefined
  }
}

/**
 * The CPUs the brokers and the load each keep to. Left to the scheduler, a broker shares a CPU with
 * a load process in some rounds and not in others, and its rate moves between two levels almost a
 * factor of two apart (on the project's 2-core machine: 38k and 70k QoS 0 messages a second, for
 * either broker, from one round to the next); on CPUs of its own it keeps to one. So each broker in
 * turn has the last CPU to itself, and the load processes share the others. Needs taskset
 * (util-linux) and two CPUs; --no-pin turns it off.
 */
const cpus = availableParallelism()
const pinning =
  !flags['no-pin'] && cpus >= 2 && (await which('taskset', { nothrow: true })) !== null
    ? { broker: String(cpus - 1), load: cpus === 2 ? '0' : `0-${cpus - 2}` }
    : undefined

async function pin(pid: number, role: 'broker' | 'load'): Promise<void> {
  if (pinning) await $`taskset --all-tasks --cpu-list --pid ${pinning[role]} ${pid}`.quiet()
}

/**
 * Start `command` and wait for its ready line, whose first group is the broker's URL unless `url`
 * is given.
 */
async function startProcess(
  name: string,
  command: string[],
  ready: RegExp,
  url?: string,
): Promise<Broker> {
  const { daemon, match } = await startDaemon(name, command, ready, {
    cwd: ROOT,
    timeoutMs: WAIT_MS,
  })
  await pin(daemon.pid, 'broker')
  return {
    name,
    url: url ?? match[1],
    cpuSeconds: () => cpuSecondsOf(daemon.pid),
    stop: () => daemon.stop(),
  }
}

/** The bundled broker with its packet record on. */
const RECORDED = 'bundled, recorded'

async function startBrokers(): Promise<Broker[]> {
  const list: Broker[] = []
  progress('starting the bundled broker and aedes alone')
  // Both run the same way, from their TypeScript sources, so that the ratio is the fixes' alone. A
  // profile is written when the process ends: that is, at the bench's end.
  const profile = flags.profile ? ['--cpu-prof', '--cpu-prof-dir', flags.profile] : []
  // The plain bundled broker, and the same with the stage view's record made and serialized as a
  // show's broker process does it (`--record /dev/fd/3`), and written to /dev/null: main.ts writes
  // a device with a plain write every 10 ms at most, as it writes a show's pipe as a stream.
  const bundled = (name: string, more: string[]) =>
    startProcess(
      name,
      [
        process.execPath,
        ...profile,
        '--import',
        'tsx',
        'lib/broker/main.ts',
        '--port',
        '0',
        '--quiet',
        ...more,
      ],
      /broker ready on (mqtt:\/\/\S+?);/,
    )
  list.push(await bundled('bundled', []))
  list.push(await bundled(RECORDED, ['--record', '/dev/null']))
  list.push(
    await startProcess(
      'aedes alone',
      [
        process.execPath,
        ...profile,
        '--import',
        'tsx',
        'test/broker/aedes-alone.ts',
        '--port',
        '0',
      ],
      /aedes alone ready on (mqtt:\/\/\S+)/,
    ),
  )
  if (mosquittoPath) {
    progress('starting Mosquitto')
    const dir = mkdtempSync(join(tmpdir(), 'bench-mosquitto-'))
    const port = await freePort()
    // No limits on queues: a fan-out must not be measured by what Mosquitto chose to drop.
    writeFileSync(
      join(dir, 'mosquitto.conf'),
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages ` +
        `0\nmax_inflight_messages 0\nset_tcp_nodelay true\n`,
    )
    const mosquitto = await startProcess(
      'mosquitto',
      [mosquittoPath, '-c', join(dir, 'mosquitto.conf')],
      /mosquitto version \S+ running/,
      `mqtt://127.0.0.1:${port}`,
    )
    list.push({
      ...mosquitto,
      stop: async () => {
        await mosquitto.stop()
        rmSync(dir, { recursive: true, force: true })
      },
    })
  } else {
    console.log('Mosquitto is not installed (apt-get install mosquitto): its column is left out')
  }
  return list
}

/** One load process: send it a task, await its reports in order. */
class Load {
  private readonly reports: Report[] = []
  private readonly arriving = new Waiter()

  private readonly child: ChildProcess

  constructor(child: ChildProcess) {
    this.child = child
    child.on('message', (report: Report) => {
      this.reports.push(report)
      this.arriving.arrived()
    })
    child.on('exit', (code) => this.arriving.end(`exited with code ${code}`))
  }

  send(task: Task): void {
    this.child.send(task)
  }

  /** The next report; rejects on an error report, on timeout, or if the process dies. */
  async next(event: 'ready' | 'done', what: string): Promise<void> {
    const report = await this.arriving.until(() => this.reports.shift(), {
      timeoutMs: WAIT_MS,
      timedOut: (ms) => new Error(`${what}: no '${event}' within ${inSeconds(ms)}`),
      ended: (how) => new Error(`${what}: a load process ${how}`),
    })
    if (report.event === 'error') throw new Error(`${what}: ${report.message}`)
    if (report.event !== event)
      throw new Error(`${what}: expected '${event}', got '${report.event}'`)
  }

  stop(): void {
    this.child.disconnect()
  }
}

/** Bundle the load program and start LOAD_PROCESSES copies of it with plain node. */
async function startLoad(dir: string): Promise<Load[]> {
  const file = join(dir, 'bench-load.cjs')
  await build({
    entryPoints: [join(ROOT, 'test', 'bench', 'load.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: file,
    logLevel: 'silent',
  })
  await stopEsbuild()
  const loads = Array.from({ length: LOAD_PROCESSES }, () =>
    fork(file, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  )
  // The bench itself is left alone: it only passes messages between rounds, and the programs that
  // --startup times are its children, which must start as they would anywhere.
  for (const load of loads) await pin(load.pid!, 'load')
  return loads.map((l) => new Load(l))
}

interface Workload {
  name: string
  qos: 0 | 1
  /** The brokers that serve it, by name; every one when undefined. */
  brokers?: string[]
  /** The deliveries a round makes, and the tasks that make them. */
  plan(
    url: string,
    protocolVersion: 4 | 5,
    topic: string,
  ): { deliveries: number; subscribers: [Load, Task][]; publishers: [Load, Task][] }
}

function workloads(load: Load[], share = 1): Workload[] {
  /**
   * Two publishers, each to a topic of its own, and a subscriber for each: a broker's relay in its
   * simplest form. At QoS 1 each publisher's window is its PUBACKs, and its subscriber is in
   * another process; at QoS 0 the subscriber shares its publisher's process, which paces itself by
   * it.
   */
  const relay = (qos: 0 | 1, count: number): Workload => ({
    name: `QoS ${qos} relay`,
    qos,
    plan: (url, protocolVersion, topic) => ({
      deliveries: 2 * count,
      subscribers: [0, 1].map((i) => [
        load[qos === 1 ? 2 + i : i],
        {
          kind: 'subscribe',
          url,
          protocolVersion,
          qos,
          topic: `${topic}/${i}`,
          connections: 1,
          expect: count,
          pacer: qos === 0 ? 'relay' : undefined,
        },
      ]),
      publishers: [0, 1].map((i) => [
        load[i],
        {
          kind: 'publish',
          url,
          protocolVersion,
          qos,
          topic: `${topic}/${i}`,
          count,
          payloadBytes: PAYLOAD_BYTES,
          pacedBy: qos === 0 ? 'relay' : undefined,
        },
      ]),
    }),
  })
  const fanoutCount = Math.round(counts.fanout * share)
  /**
   * One publisher and its pacing subscriber in one process; the other subscriber connections spread
   * over the rest.
   */
  const fanout: Workload = {
    name: `fan-out to ${FANOUT_SUBSCRIBERS}`,
    qos: 0,
    plan: (url, protocolVersion, topic) => {
      const hosts = load.slice(1)
      const others = FANOUT_SUBSCRIBERS - 1
      const subscribe = (host: Load, connections: number, pacer?: string): [Load, Task] => [
        host,
        {
          kind: 'subscribe',
          url,
          protocolVersion,
          qos: 0,
          topic,
          expect: fanoutCount,
          connections,
          pacer,
        },
      ]
      return {
        deliveries: fanoutCount * FANOUT_SUBSCRIBERS,
        subscribers: [
          subscribe(load[0], 1, 'fan-out'),
          ...hosts.map((host, i) =>
            subscribe(
              host,
              Math.floor(others / hosts.length) + (i < others % hosts.length ? 1 : 0),
            ),
          ),
        ],
        publishers: [
          [
            load[0],
            {
              kind: 'publish',
              url,
              protocolVersion,
              qos: 0,
              topic,
              count: fanoutCount,
              payloadBytes: PAYLOAD_BYTES,
              pacedBy: 'fan-out',
            },
          ],
        ],
      }
    },
  }
  const groupCount = GROUP_MEMBERS * Math.round((counts.qos1 * share) / GROUP_MEMBERS)
  /**
   * One QoS 1 publisher and a shared subscription's group of members, each in a process of its
   * own: every message goes to one member, in turn, so each expects its quarter. aedes alone serves
   * no shared subscription.
   */
  const group: Workload = {
    name: `group of ${GROUP_MEMBERS}`,
    qos: 1,
    brokers: ['bundled', 'mosquitto'],
    plan: (url, protocolVersion, topic) => ({
      deliveries: groupCount,
      subscribers: Array.from({ length: GROUP_MEMBERS }, (_, i) => [
        load[(i + 1) % load.length],
        {
          kind: 'subscribe',
          url,
          protocolVersion,
          qos: 1,
          topic: `$share/bench/${topic}`,
          connections: 1,
          expect: groupCount / GROUP_MEMBERS,
        },
      ]),
      publishers: [
        [
          load[0],
          {
            kind: 'publish',
            url,
            protocolVersion,
            qos: 1,
            topic,
            count: groupCount,
            payloadBytes: PAYLOAD_BYTES,
          },
        ],
      ],
    }),
  }
  return [
    relay(0, Math.round(counts.qos0 * share)),
    relay(1, Math.round(counts.qos1 * share)),
    fanout,
    group,
  ]
}

let runs = 0

/**
 * One round of `workload` through `broker`: deliveries per second, from the go to the last
 * delivery, and per second of the CPU time the broker used meanwhile (what it would relay with a
 * core to itself).
 */
async function runOnce(
  broker: Broker,
  workload: Workload,
  protocolVersion: 4 | 5,
): Promise<{ wall: number; cpu?: number }> {
  const what = `${broker.name}, ${workload.name}, MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}`
  const { deliveries, subscribers, publishers } = workload.plan(
    broker.url,
    protocolVersion,
    `bench/${process.pid}/${++runs}`,
  )
  const involved = [...subscribers, ...publishers].map(([load]) => load)
  try {
    for (const [load, task] of subscribers) load.send(task)
    for (const [load] of subscribers) await load.next('ready', what)
    for (const [load, task] of publishers) load.send(task)
    for (const [load] of publishers) await load.next('ready', what)
    const started = performance.now()
    const cpuBefore = broker.cpuSeconds()
    for (const [load] of publishers) load.send({ kind: 'go' })
    await Promise.all(subscribers.map(([load]) => load.next('done', what)))
    const seconds = (performance.now() - started) / 1000
    const cpuAfter = broker.cpuSeconds()
    for (const [load] of publishers) await load.next('done', what)
    return {
      wall: deliveries / seconds,
      cpu:
        cpuBefore === undefined || cpuAfter === undefined
          ? undefined
          : deliveries / (cpuAfter - cpuBefore),
    }
  } finally {
    for (const load of involved) load.send({ kind: 'close' })
    for (const load of involved) await load.next('done', what)
  }
}

const versions = [
  [4, 'MQTT 3.1.1'],
  [5, 'MQTT 5'],
] as const

const serves = (workload: Workload, broker: Broker) =>
  !workload.brokers || workload.brokers.includes(broker.name)

/** Per table row (version, workload), per broker: the best round. */
type Results = Map<string, Record<string, number>>

/** How many rounds each row had. */
const rounds = new Map<string, number>()

async function measure(brokers: Broker[], load: Load[]): Promise<{ wall: Results; cpu: Results }> {
  const wall: Results = new Map()
  const cpu: Results = new Map()
  const keep = (results: Results, row: string, broker: string, value: number | undefined) => {
    if (value === undefined) return
    const values = results.get(row) ?? {}
    values[broker] = Math.max(values[broker] ?? 0, value)
    results.set(row, values)
  }
  progress(`warming up: ${brokers.map((b) => b.name).join(', ')}`)
  for (const broker of brokers) {
    for (const [protocolVersion, version] of versions)
      for (const workload of workloads(load, 0.3)) {
        if (flags.only && !`${version}, ${workload.name}`.includes(flags.only)) continue
        if (serves(workload, broker)) await runOnce(broker, workload, protocolVersion)
      }
  }
  for (const [protocolVersion, version] of versions) {
    for (const workload of workloads(load)) {
      const row = `${version}, ${workload.name}`
      if (flags.only && !row.includes(flags.only)) continue
      // The brokers take turns, round after round, so that each meets the same load on the machine
      // (whatever else it runs), and who goes first changes from round to round.
      const until = performance.now() + ROUNDS.seconds * 1000
      let round = 0
      while (round < ROUNDS.least || (round < ROUNDS.most && performance.now() < until)) {
        for (const broker of brokers.map((_, i) => brokers[(i + round) % brokers.length])) {
          if (!serves(workload, broker)) continue
          const result = await runOnce(broker, workload, protocolVersion)
          if (flags.trace)
            progress(
              `${row}, ${broker.name}: ${format(result.wall)} per second, ${format(result.cpu)} ` +
                `per CPU second`,
            )
          keep(wall, row, broker.name, result.wall)
          keep(cpu, row, broker.name, result.cpu)
        }
        round++
      }
      progress(`${row}: best of ${round} round${round > 1 ? 's' : ''} through each broker`)
      rounds.set(row, round)
    }
  }
  return { wall, cpu }
}

/**
 * Seconds from starting `command` until a line containing `until` (or until it exits), over `runs`
 * runs: the median.
 */
async function startup(
  command: string,
  args: string[],
  until: string | undefined,
  env: NodeJS.ProcessEnv,
  runs: number,
): Promise<number> {
  const once = async () => {
    const started = performance.now()
    const program = $({
      cwd: ROOT,
      env: { ...process.env, ...env },
      quiet: true,
      nothrow: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    })`exec ${command} ${args}`
    const what = `${command} ${args.join(' ')}`
    if (until) {
      let out = ''
      const printed = new Waiter()
      program.stdout.on('data', (chunk: Buffer) => {
        out += chunk
        printed.arrived()
      })
      void program.then((end) => printed.end(`exited with code ${end.exitCode}`))
      try {
        await printed.until(() => (out.includes(until) ? true : undefined), {
          timeoutMs: WAIT_MS,
          timedOut: (ms) =>
            new Error(`${what} printed no ${JSON.stringify(until)} within ${inSeconds(ms)}`),
          ended: (how) => new Error(`${what} ${how} before printing ${JSON.stringify(until)}`),
        })
        return (performance.now() - started) / 1000
      } finally {
        program.child?.kill('SIGINT')
        await program
      }
    }
    const end = await program.timeout(WAIT_MS, 'SIGKILL')
    if (end.exitCode !== 0)
      throw new Error(`${what} exited with ${end.signal ?? `code ${end.exitCode}`}`)
    return (performance.now() - started) / 1000
  }
  const times: number[] = []
  for (let i = 0; i < runs; i++) times.push(await once())
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]
}

/**
 * Startup times, in seconds; a program that failed under a busy machine is reported, and the others
 * still measured.
 */
async function speakerTimes(bundled: Broker): Promise<Record<string, number | string>> {
  const runs = flags.quick ? 1 : 3
  const results: Record<string, number | string> = {}
  const time = async (name: string, ...args: Parameters<typeof startup>) => {
    results[name] = await startup(...args).catch((error: unknown) => `failed: ${messageOf(error)}`)
  }
  progress(`what the speaker feels: startup times (median of ${runs})`)
  await time('node -e 0 (s)', process.execPath, ['-e', '0'], undefined, {}, runs)
  const env = { MQTT_URL: bundled.url }
  await time(
    'subscriber.ts until connected (s)',
    process.execPath,
    ['--import', 'tsx', 'demos/basic-pubsub/subscriber.ts'],
    'connected to',
    env,
    runs,
  )
  await time(
    'publisher.ts to its end (s)',
    process.execPath,
    ['--import', 'tsx', 'demos/basic-pubsub/publisher.ts'],
    undefined,
    env,
    runs,
  )
  for (const scenario of scenarios.filter((s) => !missingProgram(s))) {
    progress(`npm run demo:${scenario.name}`)
    await time(
      `npm run demo:${scenario.name} (s)`,
      'npm',
      ['run', '--silent', `demo:${scenario.name}`, '--', '--dashboard-port', '0'],
      undefined,
      { MQTT_URL: '' },
      runs,
    )
  }
  return results
}

const format = (n: number | undefined) =>
  n === undefined
    ? '—'
    : Number.isInteger(n) || n >= 100
      ? Math.round(n).toLocaleString('en')
      : n.toFixed(n >= 10 ? 1 : 3)

const started = new Date()
const dir = mkdtempSync(join(tmpdir(), 'bench-'))
const brokers = await startBrokers()
let load: Load[] = []
let failure: unknown
try {
  load = await startLoad(dir)
  const results = await measure(brokers, load)
  const names = brokers.map((b) => b.name)
  const others = names.filter((n) => n !== 'aedes alone' && n !== RECORDED)
  const ratio = (row: Record<string, number>, name: string) => row[name] / row['aedes alone']
  const recordCost = (row: Record<string, number>) => row[RECORDED] / row.bundled
  const recorded: number[] = []
  const print = (title: string, rows: Results) => {
    console.log(`\n${title}\n`)
    console.log(
      markdownTable(
        ['', ...names, ...others.map((n) => `${n} / aedes alone`), `${RECORDED} / bundled`],
        [...rows].map(([row, values]) => [
          row,
          ...names.map((n) => format(values[n])),
          ...others.map((n) => (values['aedes alone'] ? ratio(values, n).toFixed(2) : '—')),
          values[RECORDED] ? recordCost(values).toFixed(2) : '—',
        ]),
      ),
    )
    recorded.push(...[...rows.values()].filter((values) => values[RECORDED]).map(recordCost))
    const ratios = [...rows.values()].filter((values) => values['aedes alone'])
    return Math.min(...ratios.map((values) => ratio(values, 'bundled')))
  }
  const fewest = Math.min(...rounds.values())
  console.log(
    [
      `\nNode ${process.version}`,
      started.toISOString().slice(0, 10),
      `${LOAD_PROCESSES} load processes`,
      `best of ${fewest}${Math.max(...rounds.values()) > fewest ? ' or more' : ''} ` +
        `round${fewest > 1 ? 's' : ''} per broker${flags.quick ? ' (--quick)' : ''}`,
      pinning
        ? `each broker on CPU ${pinning.broker}, the load on CPU ${pinning.load}`
        : 'not pinned to CPUs',
    ].join(', '),
  )
  const lowest = [print('Messages delivered per second', results.wall)]
  if (results.cpu.size > 0)
    lowest.push(print("Messages delivered per second of the broker's own CPU time", results.cpu))
  // Rows that aedes alone cannot serve (a shared subscription's group) have no ratio.
  const least = Math.min(...lowest)
  if (Number.isFinite(least))
    console.log(
      `\nLowest ratio of the bundled broker to aedes alone: ${least.toFixed(2)} (the fixes ` +
        `should cost at most a tenth: 0.90 or more)`,
    )
  console.log(
    `Lowest ratio of the bundled broker with its packet record to without: ` +
      `${Math.min(...recorded).toFixed(2)} (the stage view's record should cost at most a ` +
      `tenth: 0.90 or more)`,
  )
  // The brokers' numbers are printed before the startup times are taken: a show that fails to start
  // on a busy machine loses none of them.
  const speaker = flags.startup ? await speakerTimes(brokers[0]) : undefined
  if (speaker) {
    console.log('\nWhat the speaker feels (bundled broker)\n')
    console.log(
      markdownTable(
        ['', 'seconds'],
        Object.entries(speaker).map(([k, v]) => [k, typeof v === 'number' ? format(v) : v]),
      ),
    )
  }
  if (flags.json) {
    writeFileSync(
      flags.json,
      `${JSON.stringify(
        {
          date: started.toISOString(),
          node: process.version,
          quick: Boolean(flags.quick),
          pinned: pinning ?? null,
          rounds: Object.fromEntries(rounds),
          perSecond: Object.fromEntries(results.wall),
          perCpuSecond: Object.fromEntries(results.cpu),
          speaker,
        },
        null,
        2,
      )}\n`,
    )
    progress(`wrote ${flags.json}`)
  }
} catch (error) {
  failure = error
} finally {
  for (const l of load) l.stop()
  await Promise.all(brokers.map((b) => b.stop()))
  rmSync(dir, { recursive: true, force: true })
}
if (failure !== undefined) fail(messageOf(failure))
