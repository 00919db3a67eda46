// `npm run bench -- --cluster`: what sharing one Redis costs, measured side by side in one run. It
// starts a Redis (nothing on disk) and three bundled brokers as processes of their own: one in
// memory, as `npm run broker` runs, and two, A and B, on the Redis. Then from one MQTT.js client
// process: latency and QoS 1 throughput from a publisher to a subscriber on the same broker in
// memory, on the same broker on Redis, and from A to B; fan-out deliveries per second from one
// publisher to ten subscribers, all on the broker in memory, then on A, then split between A and B.
// Round after round, as test/bench/bench.ts does, and the best round counts. Its clients are
// MQTT.js, in this one process: its figures compare the three arrangements with each other, not
// with those of npm run bench.
import mqtt, { type MqttClient } from 'mqtt'
import { inSeconds, Waiter } from '../../scenarios/stage/waiter.ts'
import { programArgs } from '../../scenarios/stage/bundle.ts'
import { ROOT } from '../../lib/build-cache.ts'
import { startDaemon } from '../helpers/daemon.ts'
import { markdownTable } from '../helpers/markdown-table.ts'
import { REDIS_NOT_INSTALLED, redisServerPath, startRedis } from '../helpers/redis-server.ts'

/** Every wait is bounded: a broker that stops delivering fails the run instead of hanging it. */
const WAIT_MS = 60_000
const FANOUT_SUBSCRIBERS = 10

const progress = (text: string) => process.stderr.write(`· ${text}\n`)

interface Broker {
  url: string
  stop(): Promise<void>
}

/**
 * A bundled broker as `npm run broker -- --port 0 --quiet [args]`, once its ready line is printed
 * and it accepts a connection.
 */
async function startBroker(args: string[]): Promise<Broker> {
  const { daemon, match } = await startDaemon(
    `the broker (${args.join(' ') || 'in memory'})`,
    [process.execPath, ...programArgs('lib/broker/main.ts'), '--port', '0', '--quiet', ...args],
    /broker ready on (mqtt:\/\/\S+?);/,
    { cwd: ROOT },
  )
  const url = match[1]
  await (await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000 })).endAsync()
  return { url, stop: () => daemon.stop() }
}

/**
 * Resolve when `count` messages have arrived on `client`; rejects after WAIT_MS naming how many
 * came.
 */
function receive(client: MqttClient, count: number, what: string): Promise<void> {
  let got = 0
  const arriving = new Waiter()
  client.on('message', () => {
    got++
    arriving.arrived()
  })
  return arriving
    .until(() => (got >= count ? true : undefined), {
      timeoutMs: WAIT_MS,
      timedOut: (ms) =>
        new Error(`${what}: ${got} of ${count} messages arrived within ${inSeconds(ms)}`),
    })
    .then(() => undefined)
}

const connect = (url: string) =>
  mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000 })
const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
const topic = (name: string) => `bench-cluster/${process.pid}/${name}`

/** Latency and QoS 1 throughput from a publisher on `from` to a subscriber on `to`. */
async function pointToPoint(
  name: string,
  from: string,
  to: string,
  counts: { latency: number; burst: number },
): Promise<Record<string, number>> {
  const results: Record<string, number> = {}
  progress(`${name}: latency, ${counts.latency} QoS 0 messages one at a time`)
  {
    const [sub, pub] = await Promise.all([connect(to), connect(from)])
    await sub.subscribeAsync(topic('latency'))
    // The first messages through Redis pay for its connection warming up: they are not counted.
    const times: number[] = []
    for (let i = -20; i < counts.latency; i++) {
      const arrived = receive(sub, 1, `${name} latency`)
      const sent = performance.now()
      await pub.publishAsync(topic('latency'), String(i))
      await arrived
      sub.removeAllListeners('message')
      if (i >= 0) times.push(performance.now() - sent)
    }
    times.sort((a, b) => a - b)
    results['latency median (ms)'] = percentile(times, 50)
    results['latency p99 (ms)'] = percentile(times, 99)
    await Promise.all([sub.endAsync(), pub.endAsync()])
  }
  progress(`${name}: a burst of ${counts.burst} QoS 1 messages`)
  {
    const [sub, pub] = await Promise.all([connect(to), connect(from)])
    await sub.subscribeAsync(topic('burst'), { qos: 1 })
    let got = 0
    sub.on('message', () => got++)
    const all = receive(sub, counts.burst, `${name} QoS 1 burst`)
    const started = performance.now()
    await Promise.all(
      Array.from({ length: counts.burst }, (_, i) =>
        pub.publishAsync(topic('burst'), String(i), { qos: 1 }),
      ),
    )
    // Every message was acknowledged by the broker: count the ones the subscriber never saw.
    await all.catch(() => undefined)
    results['QoS 1 throughput (msg/s)'] = counts.burst / ((performance.now() - started) / 1000)
    results['QoS 1 messages lost'] = counts.burst - got
    await Promise.all([sub.endAsync(), pub.endAsync()])
  }
  return results
}

/** Deliveries per second from one publisher on `from` to subscribers on `to` (taken in turn). */
async function fanOut(name: string, from: string, to: string[], messages: number): Promise<number> {
  progress(`${name}: fan-out, ${messages} messages to ${FANOUT_SUBSCRIBERS} subscribers`)
  const subs = await Promise.all(
    Array.from({ length: FANOUT_SUBSCRIBERS }, (_, i) => connect(to[i % to.length])),
  )
  await Promise.all(subs.map((s) => s.subscribeAsync(topic('fanout'))))
  const pub = await connect(from)
  const all = Promise.all(subs.map((s) => receive(s, messages, `${name} fan-out`)))
  const started = performance.now()
  for (let i = 0; i < messages; i++) void pub.publishAsync(topic('fanout'), String(i))
  await all
  const perSecond = (messages * FANOUT_SUBSCRIBERS) / ((performance.now() - started) / 1000)
  await Promise.all([...subs, pub].map((c) => c.endAsync()))
  return perSecond
}

/**
 * Run the whole measurement and return the table, with a column per arrangement and the ratio of
 * the two brokers on Redis to the one broker in memory.
 */
export async function benchCluster({ quick }: { quick: boolean }): Promise<string> {
  if (!redisServerPath) throw new Error(REDIS_NOT_INSTALLED)
  const scale = quick ? 0.2 : 1
  const rounds = quick ? 1 : 3
  const counts = { latency: Math.round(1000 * scale), burst: Math.round(5000 * scale) }
  const fanoutMessages = Math.round(2000 * scale)
  progress('starting Redis and three bundled brokers: one in memory, A and B on Redis')
  const redis = await startRedis()
  const stops: (() => Promise<void>)[] = [() => redis.close()]
  try {
    const [memory, a, b] = await Promise.all([
      startBroker([]),
      startBroker(['--redis', redis.url]),
      startBroker(['--redis', redis.url]),
    ])
    stops.push(memory.stop, a.stop, b.stop)
    const columns = ['one broker', 'one broker on Redis', 'A to B on one Redis']
    const arrangements = [
      { name: 'one broker', from: memory.url, to: memory.url, fanoutTo: [memory.url] },
      { name: 'one broker on Redis', from: a.url, to: a.url, fanoutTo: [a.url] },
      { name: 'A to B', from: a.url, to: b.url, fanoutTo: [a.url, b.url] },
    ]
    // Round after round, the arrangements taking turns; each figure is its best round, as a busy
    // machine can only slow a round down (losses: the worst round).
    const best: Record<string, number>[] = arrangements.map(() => ({}))
    const keep = (i: number, metric: string, value: number) => {
      const before = best[i][metric] ?? value
      best[i][metric] = metric.startsWith('latency')
        ? Math.min(before, value)
        : Math.max(before, value)
    }
    for (let round = 1; round <= rounds; round++) {
      progress(`round ${round} of ${rounds}`)
      for (const [i, { name, from, to, fanoutTo }] of arrangements.entries()) {
        for (const [metric, value] of Object.entries(await pointToPoint(name, from, to, counts)))
          keep(i, metric, value)
        keep(i, 'fan-out deliveries (msg/s)', await fanOut(name, from, fanoutTo, fanoutMessages))
      }
    }
    const rows = new Map<string, number[]>(
      Object.keys(best[0]).map((metric) => [metric, best.map((m) => m[metric])]),
    )
    const date = new Date().toISOString().slice(0, 10)
    return [
      `Brokers on one Redis, ${date}, Node ${process.version}, ` +
        `best of ${rounds} round${rounds > 1 ? 's' : ''}${quick ? ' (--quick)' : ''}; ` +
        `fan-out: ${FANOUT_SUBSCRIBERS} subscribers, in the last column half on A and half on B`,
      '',
      table(columns, rows),
    ].join('\n')
  } finally {
    for (const stop of stops.reverse()) await stop()
  }
}

function table(columns: string[], rows: Map<string, number[]>): string {
  const header = ['', ...columns, 'A to B / one broker']
  const format = (n: number) =>
    Number.isInteger(n) || n >= 100
      ? Math.round(n).toLocaleString('en')
      : n.toFixed(n >= 10 ? 1 : 3)
  const body = [...rows].map(([name, values]) => [
    name,
    ...values.map(format),
    values[0] ? (values[2] / values[0]).toFixed(2) : '—',
  ])
  return markdownTable(header, body)
}
