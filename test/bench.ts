// `npm run bench`: the numbers behind every speed claim, measured side by side in one run. It starts the
// bundled broker and, where installed, a Mosquitto (each as a process of its own, on a free loopback
// port), plus any MQTT_URL broker, and measures on each: latency, throughput at QoS 0 and 1, fan-out,
// QoS 1 losses; then what a speaker feels: how long each demo program takes to connect and each
// `npm run demo:<name>` takes end to end, against the floor of starting node itself. Prints a table
// with the ratio bundled / Mosquitto, and writes the same as JSON (--json FILE) to compare commits.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import mqtt, { type MqttClient } from 'mqtt'
import { fail, messageOf } from '../lib/cli.ts'
import { scenarios } from '../scenarios/index.ts'
import { ROOT } from '../scenarios/stage.ts'

const { values: flags } = (() => {
  try {
    return parseArgs({ options: { json: { type: 'string' }, quick: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } })
  } catch (error) {
    return fail(`${messageOf(error).split('. ')[0]}; see npm run bench -- --help`)
  }
})()
if (flags.help) {
  console.log(`usage: npm run bench [-- --quick] [-- --json FILE]

Measure the bundled broker and Mosquitto (where installed; and MQTT_URL if set) side by side.

options:
  --quick      fewer messages and runs, for a quick look (about 20 s)
  --json FILE  also write the results as JSON to FILE
  -h, --help   show this help`)
  process.exit(0)
}

const scale = flags.quick ? 0.2 : 1
const counts = { latency: Math.round(1000 * scale), burst0: Math.round(20_000 * scale), burst1: Math.round(5_000 * scale), fanout: Math.round(2_000 * scale) }
const FANOUT_SUBSCRIBERS = 10
/** Every wait is bounded: a broker that stops delivering fails the run instead of hanging it. */
const WAIT_MS = 60_000

const progress = (text: string) => process.stderr.write(`· ${text}\n`)

interface Broker {
  name: string
  url: string
  stop(): Promise<void>
}

/** Start `command` and wait until `url` accepts MQTT connections (by connecting, not by sleeping). */
async function startProcess(name: string, command: string, args: string[], url: (output: string) => string | undefined): Promise<Broker> {
  const child: ChildProcess = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const found = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 10 s: ${output}`)), 10_000)
    const check = (chunk: Buffer) => {
      output += chunk
      const u = url(output)
      if (u) {
        clearTimeout(timer)
        resolve(u)
      }
    }
    child.stdout!.on('data', check)
    child.stderr!.on('data', check)
    child.once('exit', (code) => reject(new Error(`${name} exited with code ${code}: ${output}`)))
  })
  // The ready line may come before the listener accepts; a first connection proves it does.
  const probe = await connectWithin(found, 10_000)
  await probe.endAsync()
  return {
    name,
    url: found,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve()
      child.once('exit', () => resolve())
      child.kill('SIGTERM')
    }),
  }
}

async function connectWithin(url: string, ms: number): Promise<MqttClient> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      return await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 2000 })
    } catch (error) {
      if (Date.now() > deadline) throw error
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}

function freePortSync(): number {
  const out = spawnSync(process.execPath, ['-e', "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"])
  return Number(String(out.stdout).trim())
}

async function brokers(): Promise<Broker[]> {
  const list: Broker[] = []
  progress('starting the bundled broker')
  list.push(await startProcess('bundled', process.execPath, ['--import', 'tsx', 'lib/broker.ts', '--port', '0', '--quiet'],
    (out) => out.match(/broker ready on (mqtt:\/\/\S+?);/)?.[1]))
  if (spawnSync('mosquitto', ['-h']).error === undefined) {
    progress('starting Mosquitto')
    const dir = mkdtempSync(join(tmpdir(), 'bench-mosquitto-'))
    const port = freePortSync()
    writeFileSync(join(dir, 'mosquitto.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n`)
    const mosquitto = await startProcess('mosquitto', 'mosquitto', ['-c', join(dir, 'mosquitto.conf')], () => `mqtt://127.0.0.1:${port}`)
    list.push({ ...mosquitto, stop: async () => { await mosquitto.stop(); rmSync(dir, { recursive: true, force: true }) } })
  } else {
    progress('Mosquitto is not installed (apt-get install mosquitto): measuring the bundled broker alone')
  }
  if (process.env.MQTT_URL) list.push({ name: 'MQTT_URL', url: process.env.MQTT_URL, stop: async () => {} })
  return list
}

/** Resolve when `count` messages have arrived on `client`; rejects after WAIT_MS naming how many came. */
function receive(client: MqttClient, count: number, what: string): Promise<void> {
  let got = 0
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: ${got} of ${count} messages arrived within ${WAIT_MS / 1000} s`)), WAIT_MS)
    client.on('message', () => {
      if (++got === count) {
        clearTimeout(timer)
        resolve()
      }
    })
  })
}

const topicBase = `bench/${process.pid}`
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]

async function measure(broker: Broker): Promise<Record<string, number>> {
  const results: Record<string, number> = {}
  const connect = () => mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })

  progress(`${broker.name}: latency, ${counts.latency} sequential QoS 0 messages`)
  {
    const [sub, pub] = await Promise.all([connect(), connect()])
    await sub.subscribeAsync(`${topicBase}/latency`)
    const times: number[] = []
    for (let i = 0; i < counts.latency; i++) {
      const arrived = receive(sub, 1, 'latency')
      const sent = performance.now()
      await pub.publishAsync(`${topicBase}/latency`, String(i))
      await arrived
      sub.removeAllListeners('message')
      times.push(performance.now() - sent)
    }
    times.sort((a, b) => a - b)
    results['latency median (ms)'] = percentile(times, 50)
    results['latency p99 (ms)'] = percentile(times, 99)
    await Promise.all([sub.endAsync(), pub.endAsync()])
  }

  for (const qos of [0, 1] as const) {
    const n = qos === 0 ? counts.burst0 : counts.burst1
    progress(`${broker.name}: throughput, a burst of ${n} QoS ${qos} messages`)
    const [sub, pub] = await Promise.all([connect(), connect()])
    await sub.subscribeAsync(`${topicBase}/burst${qos}`, { qos })
    let got = 0
    sub.on('message', () => got++)
    const all = receive(sub, n, `QoS ${qos} burst`)
    const started = performance.now()
    await Promise.all(Array.from({ length: n }, (_, i) => pub.publishAsync(`${topicBase}/burst${qos}`, String(i), { qos })))
    // At QoS 1 every message was acknowledged by the broker: count the ones the subscriber never saw.
    await (qos === 1 ? all.catch(() => undefined) : all)
    results[`QoS ${qos} throughput (msg/s)`] = n / ((performance.now() - started) / 1000)
    if (qos === 1) results['QoS 1 messages lost'] = n - got
    await Promise.all([sub.endAsync(), pub.endAsync()])
  }

  progress(`${broker.name}: fan-out, ${counts.fanout} messages to ${FANOUT_SUBSCRIBERS} subscribers`)
  {
    const subs = await Promise.all(Array.from({ length: FANOUT_SUBSCRIBERS }, connect))
    await Promise.all(subs.map((s) => s.subscribeAsync(`${topicBase}/fanout`)))
    const pub = await connect()
    const all = Promise.all(subs.map((s) => receive(s, counts.fanout, 'fan-out')))
    const started = performance.now()
    for (let i = 0; i < counts.fanout; i++) void pub.publishAsync(`${topicBase}/fanout`, String(i))
    await all
    results['fan-out deliveries (msg/s)'] = (counts.fanout * FANOUT_SUBSCRIBERS) / ((performance.now() - started) / 1000)
    await Promise.all([...subs, pub].map((c) => c.endAsync()))
  }
  return results
}

/** Seconds from spawning `command` until a line containing `until` (or until it exits), over `runs` runs: the median. */
function startup(command: string, args: string[], until: string | undefined, env: NodeJS.ProcessEnv, runs: number): Promise<number> {
  const once = () => new Promise<number>((resolve, reject) => {
    const started = performance.now()
    const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${command} ${args.join(' ')} took over ${WAIT_MS / 1000} s`))
    }, WAIT_MS)
    const done = () => {
      clearTimeout(timer)
      resolve((performance.now() - started) / 1000)
    }
    if (until) {
      let out = ''
      child.stdout!.on('data', (chunk) => {
        out += chunk
        if (out.includes(until)) {
          done()
          child.kill('SIGINT')
        }
      })
    } else {
      child.once('exit', (code) => (code === 0 ? done() : reject(new Error(`${command} ${args.join(' ')} exited with code ${code}`))))
    }
  })
  return (async () => {
    const times: number[] = []
    for (let i = 0; i < runs; i++) times.push(await once())
    return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]
  })()
}

async function speakerTimes(bundled: Broker): Promise<Record<string, number>> {
  const runs = flags.quick ? 1 : 3
  const results: Record<string, number> = {}
  progress(`what the speaker feels: startup times (median of ${runs})`)
  results['node -e 0 (s)'] = await startup(process.execPath, ['-e', '0'], undefined, {}, runs)
  const env = { MQTT_URL: bundled.url }
  results['subscriber.ts until connected (s)'] = await startup(process.execPath, ['--import', 'tsx', 'demos/basic-pubsub/subscriber.ts'], 'connected to', env, runs)
  results['publisher.ts to its end (s)'] = await startup(process.execPath, ['--import', 'tsx', 'demos/basic-pubsub/publisher.ts'], undefined, env, runs)
  for (const scenario of scenarios) {
    progress(`npm run demo:${scenario.name}`)
    results[`npm run demo:${scenario.name} (s)`] = await startup('npm', ['run', '--silent', `demo:${scenario.name}`], undefined, { MQTT_URL: '' }, runs)
  }
  return results
}

function table(columns: string[], rows: Map<string, (number | undefined)[]>, ratio: boolean): string {
  const header = ['', ...columns, ...(ratio ? ['bundled / mosquitto'] : [])]
  const format = (n: number | undefined) =>
    n === undefined ? '—' : Number.isInteger(n) || n >= 100 ? Math.round(n).toLocaleString('en') : n.toFixed(n >= 10 ? 1 : 3)
  const body = [...rows].map(([name, values]) => [
    name, ...values.map(format),
    ...(ratio ? [values[0] !== undefined && values[1] ? `${(values[0] / values[1]).toFixed(2)}` : '—'] : []),
  ])
  const widths = header.map((_, i) => Math.max(...[header, ...body].map((row) => row[i].length)))
  const line = (row: string[]) => `| ${row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(' | ')} |`
  return [line(header), `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...body.map(line)].join('\n')
}

const started = new Date()
const list = await brokers()
try {
  const perBroker: Record<string, Record<string, number>> = {}
  for (const broker of list) perBroker[broker.name] = await measure(broker)
  const speaker = await speakerTimes(list[0])
  const names = list.map((b) => b.name)
  const metrics = Object.keys(perBroker[names[0]])
  const rows = new Map(metrics.map((m) => [m, names.map((n) => perBroker[n][m])]))
  const ratio = names[0] === 'bundled' && names[1] === 'mosquitto'
  console.log(`\nBrokers, ${started.toISOString().slice(0, 10)}, Node ${process.version}${flags.quick ? ' (--quick)' : ''}\n`)
  console.log(table(names, rows, ratio))
  console.log('\nWhat the speaker feels (bundled broker)\n')
  console.log(table(['seconds'], new Map(Object.entries(speaker).map(([k, v]) => [k, [v]])), false))
  if (flags.json) {
    writeFileSync(flags.json, `${JSON.stringify({ date: started.toISOString(), node: process.version, quick: Boolean(flags.quick), brokers: perBroker, speaker }, null, 2)}\n`)
    progress(`wrote ${flags.json}`)
  }
} finally {
  await Promise.all(list.map((b) => b.stop()))
}
