// No message lost at a close. The article's publisher connects, publishes and ends, with no network loop
// and no DISCONNECT: its CONNECT, its PUBLISH and the end of its connection reach the broker together.
// Here hundreds of raw connections each send CONNECT and PUBLISH in one write and end (or reset, or
// DISCONNECT) the connection at once, and a subscriber counts what arrives, against the bundled broker, a private
// Mosquitto and aedes alone (which loses them: without broker-fixes.ts the test must fail). Then the
// A1 test runs a paho-mqtt publisher that behaves as the article's, many times, where it is installed.
import { spawn, spawnSync } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import type { Aedes } from 'aedes'
import mqttPacket from 'mqtt-packet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker } from '../lib/broker.ts'
import { ROOT } from '../scenarios/stage.ts'
import { startPlainAedes } from './aedes-alone.ts'
import { mosquittoPath, NOT_INSTALLED, startMosquitto } from './mosquitto.ts'
import { RawClient } from './raw-client.ts'

/** Connections per case: enough that a loss one time in a hundred shows. */
const CONNECTIONS = 200
/** Connections open at once; each one is short. */
const AT_ONCE = 10

type Publish = { qos: 0 | 1; retain: boolean }

/** How a connection ends: FIN; RST, as from a peer that quits with data unread; DISCONNECT (in the same write), then FIN. */
type Ending = 'end' | 'reset' | 'disconnect'

const endings: Record<Ending, string> = {
  end: 'the connection ended (FIN) right behind',
  reset: 'the connection reset (RST) right behind',
  disconnect: 'then DISCONNECT and FIN',
}

interface Case {
  id: string
  /** The PUBLISH packets, in a few words. */
  says: string
  publishes: Publish[]
  ending: Ending
}

const cases: Case[] = [
  { id: 'qos0', says: 'a QoS 0 PUBLISH', publishes: [{ qos: 0, retain: false }], ending: 'end' },
  { id: 'qos1', says: 'a QoS 1 PUBLISH', publishes: [{ qos: 1, retain: false }], ending: 'end' },
  { id: 'retained', says: 'a retained QoS 0 PUBLISH', publishes: [{ qos: 0, retain: true }], ending: 'end' },
  { id: 'reset', says: 'a QoS 0 PUBLISH', publishes: [{ qos: 0, retain: false }], ending: 'reset' },
  // The second waits for the first to be stored (the order fix), while DISCONNECT asks for the close.
  { id: 'disconnect', says: 'a retained QoS 1 PUBLISH and a QoS 1 PUBLISH', publishes: [{ qos: 1, retain: true }, { qos: 1, retain: false }], ending: 'disconnect' },
]

interface Broker {
  url: string
  /** Connections closed on the broker's side, where the test can watch them (brokers in this process). */
  brokerSide?: CloseCounter
  close(): Promise<void>
}

interface Target {
  title: string
  installed: boolean
  start(): Promise<Broker>
  /** Cases it loses messages in (the test then expects a loss), by id, with what it does. */
  departures: Record<string, string>
  /** Cases not run on it: the broker's side of a reset connection cannot be watched from outside. */
  skip?: string[]
}

interface CloseCounter {
  /** How many so far. */
  count(): number
  /** Resolves once `count` connections have closed since the broker started. */
  until(count: number): Promise<void>
}

/** Count the connections an in-process aedes is handed as they close on its side. */
function watchConnections(aedes: { handle: Aedes['handle'] }): CloseCounter {
  let closed = 0
  const waiters = new Set<() => void>()
  // Wrapped outside any fix: the listener hands the socket itself to aedes.handle.
  const handle = aedes.handle
  aedes.handle = (stream, request) => {
    stream.once('close', () => {
      closed++
      for (const waiter of [...waiters]) waiter()
    })
    return handle(stream, request)
  }
  return {
    count: () => closed,
    until(count: number): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (closed < count) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve()
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`waited 10 s for the broker to close ${count} connections; it closed ${closed}`))
        }, 10_000)
        waiters.add(check)
        check()
      })
    },
  }
}

const targets: Target[] = [
  {
    title: 'the bundled broker (lib/broker.ts)', installed: true, departures: {},
    async start() {
      const broker = await startBroker({ port: 0 })
      return { url: broker.url, brokerSide: watchConnections(broker.aedes), close: () => broker.close() }
    },
  },
  {
    title: 'Mosquitto', installed: Boolean(mosquittoPath), departures: {}, skip: ['reset'],
    start: startMosquitto,
  },
  {
    title: 'aedes alone, without the fixes of lib/broker-fixes.ts', installed: true,
    departures: Object.fromEntries(cases.map((c) => [c.id, 'closes the client as soon as it reads the end, and drops the PUBLISH'])),
    async start() {
      const broker = await startPlainAedes()
      return { url: broker.url, brokerSide: watchConnections(broker.aedes), close: () => broker.close() }
    },
  },
]

/**
 * Open a connection, send CONNECT and the case's PUBLISH packets (payloads `<n>`, `<n>.1`, ...) in a
 * single write, and end the connection right behind them; resolves once it is closed on this side.
 */
function publishAndQuit(url: string, clientId: string, topic: string, n: number, c: Case): Promise<void> {
  const { hostname, port } = new URL(url)
  const bytes = Buffer.concat([
    mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 0 }),
    ...c.publishes.map(({ qos, retain }, k) => mqttPacket.generate({
      cmd: 'publish', topic, payload: Buffer.from(payloadOf(n, k)), qos, retain, dup: false, ...(qos === 1 && { messageId: k + 1 }),
    })),
    ...(c.ending === 'disconnect' ? [mqttPacket.generate({ cmd: 'disconnect' })] : []),
  ])
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: hostname, port: Number(port) }, () => {
      if (c.ending === 'reset') socket.write(bytes, () => socket.resetAndDestroy())
      else socket.end(bytes)
    })
    // Read what the broker answers, so that our side closes when the broker closes its own.
    socket.resume()
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') reject(error)
    })
    socket.on('close', () => resolve())
  })
}

/** The payload of the k-th PUBLISH of connection n. */
const payloadOf = (n: number, k: number) => (k === 0 ? String(n) : `${n}.${k}`)

let runs = 0

for (const target of targets) {
  describe.skipIf(!target.installed)(target.installed ? target.title : NOT_INSTALLED, () => {
    let broker: Broker
    beforeAll(async () => {
      broker = await target.start()
    })
    afterAll(() => broker?.close())

    for (const c of cases.filter((c) => !target.skip?.includes(c.id))) {
      const departure = target.departures[c.id]
      const title = `${c.says}, sent with CONNECT in one write, ${endings[c.ending]}, reaches a subscriber ${CONNECTIONS} times of ${CONNECTIONS}`
      it(departure ? `${title} (departs: ${departure})` : title, async () => {
        const topic = `no-loss-at-close/${process.pid}-${++runs}/${c.id}`
        const subscriber = await RawClient.connected(broker.url)
        await subscriber.subscribe([topic], 1)
        const closedBefore = broker.brokerSide?.count() ?? 0
        for (let first = 0; first < CONNECTIONS; first += AT_ONCE) {
          await Promise.all(Array.from({ length: Math.min(AT_ONCE, CONNECTIONS - first) }, (_, k) =>
            publishAndQuit(broker.url, `quitter-${runs}-${first + k}`, topic, first + k, c)))
        }
        // Every connection is closed on the broker's side too: what it was going to route, it has.
        await broker.brokerSide?.until(closedBefore + CONNECTIONS)
        const marker = `marker-${runs}`
        const publisher = await RawClient.connected(broker.url)
        await publisher.publish(topic, marker, { qos: 1 })
        const received = new Set((await subscriber.publishesBefore(marker)).map((p) => String(p.payload)))
        if (c.publishes.some((p) => p.retain)) await publisher.publish(topic, '', { qos: 1, retain: true })
        subscriber.end()
        publisher.end()
        const sent = Array.from({ length: CONNECTIONS }, (_, n) => c.publishes.map((_p, k) => payloadOf(n, k))).flat()
        const lost = sent.filter((payload) => !received.has(payload))
        if (departure) {
          expect(lost.length, `${target.title} now delivers them all: remove its departure from test/no-loss-at-close.test.ts`).toBeGreaterThan(0)
        } else {
          expect(lost, `messages lost out of ${sent.length}`).toEqual([])
        }
      })
    }
  })
}

/** A Python that has paho-mqtt: the one on PATH, or Debian's, where apt installs python3-paho-mqtt. */
const python = ['python3', '/usr/bin/python3'].find((candidate) =>
  spawnSync(candidate, ['-c', 'import paho.mqtt.client'], { stdio: 'ignore' }).status === 0)
const publishAndQuitScript = join(ROOT, 'test', 'interop', 'paho_publish_and_quit.py')
/** Runs of the Python publisher through the bundled broker (the measure: 100 of 100), and through Mosquitto, for comparison. */
const PYTHON_RUNS = 100
const PYTHON_RUNS_MOSQUITTO = 20
/** Python publishers running at once: each is a process of its own, as a reader's runs are. */
const PYTHON_AT_ONCE = 4

/** Run the paho publisher `runs` times against `url` and return the payloads a subscriber missed. */
async function pahoRuns(url: string, topic: string, runs: number): Promise<string[]> {
  const subscriber = await RawClient.connected(url)
  await subscriber.subscribe([topic], 0)
  const { hostname, port } = new URL(url)
  const runOnce = (n: number) => new Promise<void>((resolve, reject) => {
    const child = spawn(python!, [publishAndQuitScript, hostname, port, topic, `run ${n}`], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (chunk) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`the paho publisher exited with ${code}: ${stderr}`))))
  })
  for (let first = 0; first < runs; first += PYTHON_AT_ONCE) {
    await Promise.all(Array.from({ length: Math.min(PYTHON_AT_ONCE, runs - first) }, (_, k) => runOnce(first + k)))
  }
  const expected = Array.from({ length: runs }, (_, n) => `run ${n}`)
  const received = new Set<string>()
  // Every run's message must arrive; a lost one never does, so the wait for the next one ends after a while.
  while (received.size < expected.length) {
    const packet = await subscriber.next('publish', 5000).catch(() => undefined)
    if (!packet) break
    received.add(String(packet.payload))
  }
  subscriber.end()
  return expected.filter((payload) => !received.has(payload))
}

describe.skipIf(!python)(python ? 'the article\'s publisher, as a Python program of our own' : 'paho-mqtt not installed: apt-get install python3-paho-mqtt to run these', () => {
  it(`A1: a paho-mqtt publisher that connects, publishes and quits (no loop, no DISCONNECT) delivers every message through the bundled broker, ${PYTHON_RUNS} runs of ${PYTHON_RUNS}`, async () => {
    const broker = await startBroker({ port: 0 })
    try {
      expect(await pahoRuns(broker.url, `no-loss-at-close/${process.pid}/paho`, PYTHON_RUNS), `messages lost out of ${PYTHON_RUNS} runs`).toEqual([])
    } finally {
      await broker.close()
    }
  }, 180_000)

  it.skipIf(!mosquittoPath)(`A1: the same publisher delivers every message through Mosquitto, the article's broker, ${PYTHON_RUNS_MOSQUITTO} runs of ${PYTHON_RUNS_MOSQUITTO}`, async () => {
    const mosquitto = await startMosquitto()
    try {
      expect(await pahoRuns(mosquitto.url, `no-loss-at-close/${process.pid}/paho`, PYTHON_RUNS_MOSQUITTO), `messages lost out of ${PYTHON_RUNS_MOSQUITTO} runs`).toEqual([])
    } finally {
      await mosquitto.close()
    }
  }, 120_000)
})
