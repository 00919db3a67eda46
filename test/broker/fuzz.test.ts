// Malformed and random packets must not take the bundled broker down in front of an audience.
// Batches of connections send mutations of valid packets (built with mqtt-packet), truncated
// packets, wrong lengths and plain garbage; after each batch a normal client must still be served,
// and the retained messages stored before must be intact. Bounded in count; the seed is in the
// title, and FUZZ_SEED=<seed> npx vitest run test/broker/fuzz.test.ts replays a run.
import { connect as tcpConnect } from 'node:net'
import mqtt from 'mqtt'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startBroker, type RunningBroker } from '../../lib/broker/broker.ts'

const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))
const BATCHES = 40
const CONNECTIONS_PER_BATCH = 25
const RETAINED = ['fuzz/retained/a', 'fuzz/retained/b', 'fuzz/retained/c']

/** mulberry32: a small seeded generator, so that a failing run can be replayed exactly. */
function generator(state: number) {
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const random = generator(seed)
const int = (n: number) => Math.floor(random() * n)
const pick = <T>(items: T[]): T => items[int(items.length)]
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)))

const valid: Packet[] = [
  {
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: true,
    clientId: 'fuzz',
    keepalive: 30,
  },
  {
    cmd: 'connect',
    protocolId: 'MQIsdp',
    protocolVersion: 3,
    clean: false,
    clientId: 'fuzz-31',
    keepalive: 0,
    will: { topic: 'noise/will', payload: Buffer.from('gone'), qos: 1, retain: false },
  },
  {
    cmd: 'publish',
    topic: 'noise/a',
    payload: Buffer.from('on'),
    qos: 0,
    retain: false,
    dup: false,
  },
  {
    cmd: 'publish',
    topic: 'noise/b',
    payload: Buffer.from('x'.repeat(300)),
    qos: 1,
    messageId: 7,
    retain: true,
    dup: false,
  },
  {
    cmd: 'publish',
    topic: 'noise/c',
    payload: Buffer.alloc(0),
    qos: 2,
    messageId: 9,
    retain: true,
    dup: true,
  },
  {
    cmd: 'subscribe',
    messageId: 3,
    subscriptions: [
      { topic: 'noise/#', qos: 1 },
      { topic: '+/x', qos: 2 },
    ],
  },
  { cmd: 'unsubscribe', messageId: 4, unsubscriptions: ['noise/#'] },
  { cmd: 'puback', messageId: 1 },
  { cmd: 'pubrec', messageId: 2 },
  { cmd: 'pubrel', messageId: 2 },
  { cmd: 'pubcomp', messageId: 2 },
  { cmd: 'pingreq' },
  { cmd: 'disconnect' },
]

/** One malformed (or occasionally valid) chunk of bytes. */
function noise(): Buffer {
  const packet = mqttPacket.generate(pick(valid))
  switch (int(6)) {
    case 0: {
      // flip a few bytes
      const copy = Buffer.from(packet)
      for (let i = 0; i <= int(3); i++) copy[int(copy.length)] = int(256)
      return copy
    }
    case 1:
      return packet.subarray(0, int(packet.length)) // truncated
    case 2: {
      // a wrong remaining length, shorter, longer or absurd
      const copy = Buffer.from(packet)
      copy[1] = pick([0, 1, 0x7f, 0xff, int(256)])
      return copy
    }
    case 3:
      return Buffer.concat([
        Buffer.from([pick([0x10, 0x30, 0x82, 0xc0]), 0xff, 0xff, 0xff, 0x7f]),
        bytes(int(32)),
      ]) // a 256 MB promise
    case 4:
      return bytes(1 + int(64)) // garbage
    default:
      return packet // valid, perhaps out of order (PUBLISH before CONNECT, two CONNECTs)
  }
}

/**
 * Open a connection, write a few chunks, close it; resolves once the socket is closed either way.
 */
function assault(url: string): Promise<void> {
  const { hostname, port } = new URL(url)
  const chunks = Array.from({ length: 1 + int(4) }, noise)
  if (random() < 0.5) chunks.unshift(mqttPacket.generate(valid[0]))
  return new Promise((resolve) => {
    const socket = tcpConnect(Number(port), hostname, () => {
      for (const chunk of chunks) socket.write(chunk)
      // Once the bytes are on their way, hang up: a broker left waiting for the rest of a packet
      // would otherwise hold the connection until its own timeout.
      socket.end(() => socket.destroy())
    })
    socket.on('error', () => undefined)
    socket.on('close', () => resolve())
  })
}

let broker: RunningBroker
beforeAll(async () => {
  broker = await startBroker({ port: 0 })
  const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
  for (const topic of RETAINED)
    await client.publishAsync(topic, `kept ${topic}`, { qos: 1, retain: true })
  await client.endAsync()
})
afterAll(() => broker.close())

it(
  `survives ${BATCHES} batches of ${CONNECTIONS_PER_BATCH} connections sending malformed ` +
    `packets (seed ${seed})`,
  async () => {
    for (let batch = 0; batch < BATCHES; batch++) {
      await Promise.all(Array.from({ length: CONNECTIONS_PER_BATCH }, () => assault(broker.url)))

      // Still serving: a normal client connects, gets every retained message intact, and a round
      // trip works. Retained messages and the probe are on different topics, so they may come in
      // any order: wait for all of them, then check that nothing else and nothing altered came.
      const client = await mqtt.connectAsync(broker.url, {
        reconnectPeriod: 0,
        connectTimeout: 5000,
      })
      const expected = {
        ...Object.fromEntries(RETAINED.map((topic) => [topic, `kept ${topic}`])),
        'fuzz/probe': `batch ${batch} done`,
      }
      const received = new Map<string, string>()
      const all = new Promise<void>((resolve) =>
        client.on('message', (topic, payload) => {
          received.set(topic, String(payload))
          if (Object.keys(expected).every((t) => received.has(t))) resolve()
        }),
      )
      await client.subscribeAsync('fuzz/#')
      await client.publishAsync('fuzz/probe', expected['fuzz/probe'])
      await all
      expect(Object.fromEntries(received), `after batch ${batch} (seed ${seed})`).toEqual(expected)
      await client.endAsync()
    }
  },
)
