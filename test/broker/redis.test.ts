// The bundled broker on a shared Redis (--redis, lib/broker/redis.ts): every Redis it cannot use is
// one line and exit 1; while Redis is away, or stops answering, it says so, refuses what it could
// not keep and serves again once Redis is back; no QoS 1 message it acknowledged after Redis went
// away is lost; what a restart of a Redis that keeps nothing on disk does lose; and a client that
// moves to another broker after its broker crashed is not reported gone by its old will. Skipped in
// one line where redis-server is not installed, except the input that needs no Redis.
import { createServer, type AddressInfo, type Server } from 'node:net'
import { Aedes } from 'aedes'
import mqtt, { type MqttClient } from 'mqtt'
import { describe, expect, it } from 'vitest'
import { startBroker, type RunningBroker } from '../../lib/broker/broker.ts'
import { connectRedis } from '../../lib/broker/redis.ts'
import { inSeconds, Waiter } from '../../scenarios/stage/waiter.ts'
import { expectOneLineError, refusedPort, runScript } from '../helpers/processes.ts'
import { RawClient } from '../helpers/raw-client.ts'
import {
  REDIS_NOT_INSTALLED,
  redisServerPath,
  startRedis,
  type RunningRedis,
} from '../helpers/redis-server.ts'
import { joined } from '../helpers/regexp.ts'

const brokerScript = 'lib/broker/main.ts'
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

describe('--redis bad input: one line, exit 1, before listening', () => {
  it.each([
    ['not a URL', 'nonsense', '"nonsense" is not a URL; give one like redis://127.0.0.1:6379'],
    [
      'another protocol',
      'http://127.0.0.1:6379',
      'http://127.0.0.1:6379 is not a Redis URL: it must start with redis:// (or rediss:// for ' +
        'TLS), as in redis://127.0.0.1:6379',
    ],
    [
      'a path',
      'redis://127.0.0.1:6379/x',
      'redis://127.0.0.1:6379/x: after the port only a database number may follow, as in ' +
        'redis://127.0.0.1:6379/0',
    ],
    [
      'options',
      'redis://127.0.0.1:6379?db=1',
      'redis://127.0.0.1:6379?db=1: options after ? or # are not taken; give only ' +
        'redis://[:PASSWORD@]HOST[:PORT][/DB]',
    ],
  ])('%s', async (_what, url, line) => {
    expectOneLineError(
      await runScript(brokerScript, ['--port', '0', '--redis', url]),
      new RegExp(`^error: ${escapeRegExp(line)}$`),
    )
  })

  it('nobody listening, given as REDIS_URL', async () => {
    const port = await refusedPort()
    expectOneLineError(
      await runScript(brokerScript, ['--port', '0'], { REDIS_URL: `redis://127.0.0.1:${port}` }),
      new RegExp(
        `^error: cannot reach Redis at redis://127\\.0\\.0\\.1:${port} \\(connection refused\\); ` +
          `start it \\(redis-server --port ${port}\\), or check --redis or REDIS_URL$`,
      ),
    )
  })

  it('something that is not Redis (an MQTT broker)', async () => {
    const mqttBroker = await startBroker({ port: 0 })
    try {
      expectOneLineError(
        await runScript(brokerScript, [
          '--port',
          '0',
          '--redis',
          `redis://127.0.0.1:${mqttBroker.port}`,
        ]),
        new RegExp(
          `^error: redis://127\\.0\\.0\\.1:${mqttBroker.port} does not answer as Redis does; is ` +
            `Redis listening there\\? check --redis or REDIS_URL$`,
        ),
      )
    } finally {
      await mqttBroker.close()
    }
  })

  it('--persist and --redis together', async () => {
    expectOneLineError(
      await runScript(brokerScript, [
        '--port',
        '0',
        '--persist',
        'x',
        '--redis',
        'redis://127.0.0.1:6379',
      ]),
      joined(
        /^error: give --persist or --redis, not both: with --redis, Redis keeps retained messages /,
        /and sessions$/,
      ),
    )
  })
})

/** What a broker says, line by line, with a wait for a line that names what it waited for. */
class Said {
  readonly lines: string[] = []
  private readonly heard = new Waiter()
  readonly log = (line: string) => {
    this.lines.push(line)
    this.heard.arrived()
  }

  until(pattern: RegExp): Promise<string> {
    return this.heard.until(() => this.lines.find((l) => pattern.test(l)), {
      timedOut: (ms) => {
        const said = this.lines.join(' | ')
        return new Error(`no line matching ${pattern} within ${inSeconds(ms)}; said: ${said}`)
      },
    })
  }
}

/**
 * Connect until a CONNACK comes: a broker that is back on Redis serves clients again a moment
 * later. Bounded, and fails naming the broker.
 */
async function connectedOnceServing(
  url: string,
  options: Parameters<typeof RawClient.connect>[1] = {},
  timeoutMs = 10_000,
) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const attempt = await RawClient.connect(url, options).catch((error: Error) => error)
    if (!(attempt instanceof Error)) return attempt
    if (Date.now() > deadline)
      throw new Error(
        `${url} did not accept a connection within ${timeoutMs} ms: ${attempt.message}`,
      )
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * What one test starts: Redis servers, brokers and clients, each closed as the test ends, the last
 * started first. Each test has its own, so that the tests run side by side: most of their time is
 * spent waiting for Redis to go, come back or time out.
 */
function fixtures(onTestFinished: (fn: () => Promise<void>) => void) {
  const cleanups: (() => unknown)[] = []
  onTestFinished(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  const redisServer = async (extra: string[] = []) => {
    const redis = await startRedis(extra)
    cleanups.push(() => redis.close())
    return redis
  }
  const broker = async (redis: RunningRedis) => {
    const said = new Said()
    const running = await startBroker({ port: 0, redis: redis.url, log: said.log })
    cleanups.push(() => running.close())
    return { ...running, said, url: running.url, close: () => running.close() } as RunningBroker & {
      said: Said
    }
  }
  const client = async (url: string, options: mqtt.IClientOptions = {}) => {
    const c = await mqtt.connectAsync(url, {
      reconnectPeriod: 200,
      connectTimeout: 5000,
      ...options,
    })
    cleanups.push(() => c.endAsync(true))
    return c
  }
  return { cleanups, redisServer, broker, client }
}

describe.skipIf(!redisServerPath)(
  redisServerPath ? 'the bundled broker on Redis' : REDIS_NOT_INSTALLED,
  () => {
    it.concurrent(
      'a database number Redis does not have, a missing or wrong password: one line, ' + 'exit 1',
      async ({ onTestFinished }) => {
        const { redisServer } = fixtures(onTestFinished)
        const redis = await redisServer(['--requirepass', 'secret'])
        const at = `127.0.0.1:${redis.port}`
        const cases: [string, string][] = [
          [
            `redis://:secret@${at}/99`,
            `Redis at redis://:\\*\\*\\*@${escapeRegExp(at)}/99 has no such database; ` +
              `give a smaller number after the port \\(0 is the default\\)`,
          ],
          [
            `redis://${at}`,
            `Redis at redis://${escapeRegExp(at)} asks for a password; give it in the URL: ` +
              `redis://:PASSWORD@${escapeRegExp(at)}`,
          ],
          [
            `redis://:wrong@${at}`,
            `Redis at redis://:\\*\\*\\*@${escapeRegExp(at)} refused the user name or password ` +
              `in the URL; check them`,
          ],
        ]
        for (const [url, line] of cases)
          expectOneLineError(
            await runScript(brokerScript, ['--port', '0', '--redis', url]),
            new RegExp(`^error: ${line}$`),
          )
        const ok = await startBroker({ port: 0, redis: `redis://:secret@${at}` })
        await ok.close()
      },
    )

    it.concurrent(
      'the limits of the bundled broker hold on Redis: a wrong password gets return ' +
        'code 4, a packet over --max-packet-size closes the connection',
      async ({ expect, onTestFinished }) => {
        const { cleanups, redisServer, client } = fixtures(onTestFinished)
        const redis = await redisServer()
        const limited = await startBroker({
          port: 0,
          redis: redis.url,
          credentials: { username: 'speaker', password: 'secret' },
          maxPacketSize: 1024,
        })
        cleanups.push(() => limited.close())
        const refused = await mqtt
          .connectAsync(limited.url, { reconnectPeriod: 0, username: 'speaker', password: 'wrong' })
          .then(
            () => 'accepted',
            (error: { code?: number }) => error.code,
          )
        expect(refused).toBe(4)
        const speaker = await client(limited.url, {
          username: 'speaker',
          password: 'secret',
          reconnectPeriod: 0,
        })
        const closed = new Promise<void>((resolve) => speaker.once('close', () => resolve()))
        speaker.publish('big', 'x'.repeat(2048))
        await closed
      },
    )

    it.concurrent(
      "a retained message from one client, overtaken by another client's message " +
        'while Redis stores it, still reaches a subscriber of both (the fixes for a store that ' +
        'takes time, as with --persist)',
      async ({ expect, onTestFinished }) => {
        const { cleanups, redisServer, broker } = fixtures(onTestFinished)
        const redis = await redisServer()
        const a = await broker(redis)
        const clients = await Promise.all(
          [0, 1, 2].map(async () => (await RawClient.connect(a.url)).client),
        )
        cleanups.push(() => {
          for (const c of clients) c.end()
          return undefined
        })
        const [subscriber, storing, passing] = clients
        await subscriber.subscribe(['overtaken/#'])
        const lost: string[] = []
        for (let i = 0; i < 20; i++) {
          storing.send(storing.publishPacket('overtaken/retained', `r${i}`, { retain: true }))
          passing.send(passing.publishPacket('overtaken/live', `p${i}`))
          await passing.publish('overtaken/live', `marker-${i}`, { qos: 1 })
          const got = (await subscriber.publishesBefore(`marker-${i}`)).map((p) =>
            String(p.payload),
          )
          if (!got.includes(`r${i}`)) lost.push(`r${i}`)
        }
        expect(lost).toEqual([])
      },
    )

    it.concurrent(
      'while Redis is away a broker says so once, closes new connections unanswered, ' +
        'refuses publishes and subscriptions; back, it says Redis restarted and serves again',
      async ({ expect, onTestFinished }) => {
        const { cleanups, redisServer, broker } = fixtures(onTestFinished)
        const redis = await redisServer()
        const a = await broker(redis)
        const publisher = (await RawClient.connect(a.url)).client
        const subscriber = (await RawClient.connect(a.url)).client
        cleanups.push(
          () => publisher.end(),
          () => subscriber.end(),
        )

        await redis.kill()
        await a.said.until(
          joined(
            /^lost Redis at redis:\/\/127\.0\.0\.1:\d+( \(.+\))?; until it is back this broker /,
            /refuses connections, publishes and subscriptions, and messages from the other /,
            /brokers do not reach it; trying again every 1 s$/,
          ),
        )
        const refused = await RawClient.open(a.url)
        cleanups.push(() => refused.end())
        refused.send({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          keepalive: 0,
          clean: true,
          clientId: 'while-away',
        })
        expect(
          (await refused.closed()).map((p) => p.cmd),
          'closed without a CONNACK',
        ).toEqual([])
        expect(await subscriber.subscribe(['t']), 'SUBSCRIBE granted nothing').toEqual([128])
        publisher.send(publisher.publishPacket('t', 'while away', { qos: 1 }))
        expect(
          (await publisher.closed()).map((p) => p.cmd),
          'closed without a PUBACK',
        ).toEqual([])

        await redis.start()
        await a.said.until(
          joined(
            /^Redis at \S+ is back, but it restarted: the retained messages, sessions and queued /,
            /messages it held are gone unless it keeps them on disk; this broker serves clients /,
            /again in 2 s, once the other brokers are back on it too$/,
          ),
        )
        const { client: again } = await connectedOnceServing(a.url)
        cleanups.push(() => again.end())
        await again.publish('t', 'back', { qos: 1 })
        expect(
          a.said.lines.filter((l) => l.startsWith('lost Redis')),
          'said once',
        ).toHaveLength(1)
      },
    )

    it.concurrent('a Redis that stops answering without closing its connections: the QoS 1 ' +
      'message waiting on it is never acknowledged, the broker says Redis is away, and ' +
      'acknowledges it once Redis answers again', async ({ expect, onTestFinished }) => {
      const { redisServer, broker, client } = fixtures(onTestFinished)
      const redis = await redisServer()
      const a = await broker(redis)
      const publisher = await client(a.url)
      redis.freeze()
      let acknowledged = false
      const publishing = publisher
        .publishAsync('frozen/t', 'waits', { qos: 1 })
        .then(() => (acknowledged = true))
      await a.said.until(
        joined(
          /^client \S+'s QoS 1 message to frozen\/t could not be passed on \(Redis at \S+: /,
          /Command timed out\); closing its connection before the PUBACK, so that it sends the /,
          /message again$/,
        ),
      )
      await a.said.until(/^lost Redis at \S+ \(no answer within 7 s\); until it is back/)
      expect(acknowledged, 'no PUBACK while Redis did not answer').toBe(false)
      redis.thaw()
      await publishing
      // On a busy machine the thawed Redis may miss the next deadline too: each loss is then said,
      // and each return.
      const lost = a.said.lines.filter((l) => l.startsWith('lost Redis at '))
      expect(
        a.said.lines.filter((l) => l.startsWith('Redis at ') && l.includes(' is back; ')),
      ).toHaveLength(lost.length)
    }, 60_000)

    it.concurrent('QoS 1 messages published on B while Redis restarts all reach the subscribers ' +
      'on A, clean and persistent, once acknowledged', async ({ expect, onTestFinished }) => {
      const { cleanups, redisServer, broker, client } = fixtures(onTestFinished)
      const redis = await redisServer()
      const a = await broker(redis)
      const b = await broker(redis)
      // A clean session's messages go straight through Redis's PUBLISH; a persistent one's are also
      // queued in Redis.
      const subscribers = await Promise.all(
        [{ clean: true }, { clientId: 'through-restart', clean: false }].map(async (options) => {
          const received = new Set<string>()
          const subscriber = await client(a.url, options)
          subscriber.on('message', (_topic, payload) => received.add(String(payload)))
          await subscriber.subscribeAsync('count', { qos: 1 })
          return { subscriber, received, clean: options.clean }
        }),
      )
      const publisher = await client(b.url)

      // One message every 20 ms, from before Redis is killed until well after it is back.
      const acked: string[] = []
      let sent = 0
      const sending = setInterval(() => {
        const n = String(++sent)
        publisher.publish('count', n, { qos: 1 }, (error) => error || acked.push(n))
      }, 20)
      cleanups.push(() => clearInterval(sending))
      await waitFor(
        () => acked.length >= 10,
        () => `${acked.length} of ${sent} messages acknowledged before Redis was killed`,
      )
      await redis.kill()
      await Promise.all([a.said.until(/^lost Redis/), b.said.until(/^lost Redis/)])
      const sentWhenLost = sent
      await redis.start()
      await Promise.all([a.said.until(/is back/), b.said.until(/is back/)])
      expect(sent, 'messages were published while Redis was away').toBeGreaterThan(sentWhenLost)
      await connectedOnceServing(b.url).then(({ client: probe }) => probe.end())
      // Some more once B serves again.
      const ackedWhenServing = acked.length
      await waitFor(
        () => acked.length >= ackedWhenServing + 10,
        () => `${acked.length - ackedWhenServing} messages acknowledged since B served again`,
      )
      clearInterval(sending)

      // Every message is acknowledged in the end (MQTT.js sends again what was refused); then a
      // marker.
      await waitFor(
        () => acked.length === sent,
        () => `${sent - acked.length} of ${sent} messages still unacknowledged`,
      )
      const markers = subscribers.map(
        ({ subscriber }) =>
          new Promise<void>((resolve) =>
            subscriber.on('message', (_t, payload) => String(payload) === 'marker' && resolve()),
          ),
      )
      await publisher.publishAsync('count', 'marker', { qos: 1 })
      await Promise.all(markers)
      // Redis keeps no message it passes on: one that Redis took at the instant it died may not
      // have reached the other brokers, though it was acknowledged, and their broker said it lost
      // Redis. Every one sent after that must arrive.
      for (const { received, clean } of subscribers) {
        const missing = acked.filter((n) => !received.has(n) && Number(n) > sentWhenLost)
        expect(
          missing,
          `${clean ? 'clean' : 'persistent'} subscriber: acknowledged, never received`,
        ).toEqual([])
      }
    }, 60_000)

    it.concurrent('a restart of a Redis that keeps nothing on disk loses retained messages, ' +
      'sessions and queued messages; live clients carry on', async ({ expect, onTestFinished }) => {
      const { cleanups, redisServer, broker } = fixtures(onTestFinished)
      const redis = await redisServer()
      const a = await broker(redis)
      const b = await broker(redis)
      const publisher = (await RawClient.connect(b.url)).client
      cleanups.push(() => publisher.end())
      await publisher.publish('kept/t', 'retained before', { qos: 1, retain: true })
      const alice = (await RawClient.connect(a.url, { clientId: 'alice-restart', clean: false }))
        .client
      await alice.subscribe(['alice/t'], 1)
      await alice.disconnect()
      await publisher.publish('alice/t', 'queued before', { qos: 1 })
      const live = (await RawClient.connect(a.url)).client
      cleanups.push(() => live.end())
      await live.subscribe(['live/t'])
      await publisher.publish('live/t', 'before', { qos: 1 })
      expect((await live.publishesBefore('before')).length).toBe(0)

      publisher.end()
      await redis.kill()
      await Promise.all([a.said.until(/^lost Redis/), b.said.until(/^lost Redis/)])
      await redis.start()
      const { client: after } = await connectedOnceServing(b.url)
      cleanups.push(() => after.end())

      // The live subscriber is still connected and subscribed.
      await after.publish('live/t', 'after', { qos: 1 })
      expect((await live.publishesBefore('after')).map((p) => String(p.payload))).toEqual([])
      // No retained message: only the marker, stored after the restart, comes back.
      await after.publish('kept/marker', 'marker', { qos: 1, retain: true })
      const late = (await RawClient.connect(b.url)).client
      cleanups.push(() => late.end())
      await late.subscribe(['kept/t', 'kept/marker'])
      expect((await late.publishesBefore('marker')).map((p) => String(p.payload))).toEqual([])
      // alice's session is gone, and the message queued for her with it.
      const { client: back, connack } = await RawClient.connect(b.url, {
        clientId: 'alice-restart',
        clean: false,
      })
      cleanups.push(() => back.end())
      expect(connack.sessionPresent).toBe(false)
      await back.subscribe(['alice/t'], 1)
      await after.publish('alice/t', 'marker', { qos: 1 })
      expect((await back.publishesBefore('marker')).map((p) => String(p.payload))).toEqual([])
    }, 60_000)
  },
)

describe.skipIf(!redisServerPath)(
  redisServerPath ? 'a client that moves to B after A crashed' : REDIS_NOT_INSTALLED,
  () => {
    /**
     * aedes on Redis with a short heartbeat, so that B gives up on a crashed A in about a second,
     * not four minutes.
     */
    async function startAedes(redisUrl: string, guarded: boolean) {
      const shared = await connectRedis(redisUrl, () => undefined)
      const aedes = await Aedes.createBroker({ ...shared.aedesOptions, heartbeatInterval: 200 })
      if (guarded) shared.installHooks(aedes)
      // aedes reports a round of publishing wills that failed as 'error', which with no listener
      // (aedes alone) would end the run. Every one counts against the test but one: the round that
      // was under way when the test let go of Redis, whose commands fail as its connections close.
      const errors: Error[] = []
      let lettingGo = false
      ;(aedes as NodeJS.EventEmitter).on('error', (error: Error) => {
        if (!(lettingGo && error.message === 'Connection is closed.')) errors.push(error)
      })
      const server = createServer(aedes.handle)
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      const close = async () => {
        await new Promise<void>((resolve) => aedes.close(() => resolve()))
        server.close()
        lettingGo = true
        await shared.close()
      }
      return {
        aedes,
        server,
        shared,
        errors,
        close,
        url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`,
      }
    }
    /**
     * What a crash does: Redis let go, no more heartbeats, every connection dropped without its
     * will and unannounced.
     */
    async function crash({
      aedes,
      server,
      shared,
    }: {
      aedes: Aedes
      server: Server
      shared: { close(): Promise<void> }
    }) {
      const inside = aedes as unknown as {
        _heartbeatInterval: NodeJS.Timeout
        _clearWillInterval: NodeJS.Timeout
        clients: Record<string, { will: unknown; conn: { destroy(): void } }>
      }
      clearInterval(inside._heartbeatInterval)
      clearInterval(inside._clearWillInterval)
      // Its own Redis connections first, so that it cannot announce the clients it is about to
      // drop.
      await shared.close()
      // What it tries to store on the way is refused: a crashed broker's errors are nobody's
      // concern.
      ;(aedes as NodeJS.EventEmitter).on('error', () => undefined)
      for (const c of Object.values(inside.clients)) {
        c.will = null
        c.conn.destroy()
      }
      server.close()
    }

    it.each([
      [
        'with lib/broker/redis.ts, B forgets the will A left: the device stays "online"',
        true,
        ['online', 'online'],
      ],
      [
        'aedes alone (the departure): B publishes the will A left, "offline", though the device ' +
          'is back',
        false,
        ['online', 'online', 'offline'],
      ],
    ])(
      '%s',
      async (_title, guarded, expected) => {
        const redis = await startRedis()
        const a = await startAedes(redis.url, guarded)
        const b = await startAedes(redis.url, guarded)
        let device: MqttClient | undefined
        let watcher: MqttClient | undefined
        try {
          const seen: string[] = []
          watcher = await mqtt.connectAsync(b.url, { reconnectPeriod: 0 })
          watcher.on('message', (_topic, payload) => seen.push(String(payload)))
          await watcher.subscribeAsync('dev/availability', { qos: 1 })
          device = mqtt.connect({
            servers: [
              { host: '127.0.0.1', port: (a.server.address() as AddressInfo).port },
              { host: '127.0.0.1', port: (b.server.address() as AddressInfo).port },
            ],
            clientId: 'moving-device',
            reconnectPeriod: 100,
            will: {
              topic: 'dev/availability',
              payload: Buffer.from('offline'),
              qos: 1,
              retain: true,
            },
          })
          device.on('connect', () =>
            device!.publish('dev/availability', 'online', { qos: 1, retain: true }),
          )
          await waitFor(
            () => seen.length === 1,
            () => `the watcher saw ${JSON.stringify(seen)}`,
          )
          // B looks for the wills of brokers it has given up on every 4 heartbeats (0.8 s), once it
          // has not heard A for 3 (0.6 s). Count the rounds that no longer count A among the
          // living.
          const persistence = (
            b.aedes as unknown as {
              persistence: { streamWill(brokers: Record<string, number>): AsyncIterable<unknown> }
            }
          ).persistence
          const streamWill = persistence.streamWill.bind(persistence)
          let roundsWithoutA = 0
          persistence.streamWill = (brokers) =>
            (async function* () {
              const aGone = !(a.aedes.id in brokers)
              yield* streamWill(brokers)
              if (aGone) roundsWithoutA++
            })()
          await crash(a)
          await waitFor(
            () => seen.length === 2,
            () => `the watcher saw ${JSON.stringify(seen)} after the crash`,
          )
          // Two rounds: the wills the first one found are published before the second begins. Then
          // a marker from the device proves what the watcher got before it.
          await waitFor(
            () => roundsWithoutA >= 2,
            () => `B looked for A's wills ${roundsWithoutA} times`,
          )
          await device.publishAsync('dev/availability', 'marker', { qos: 1 })
          await waitFor(
            () => seen.includes('marker'),
            () => `the watcher saw ${JSON.stringify(seen)}, no marker`,
          )
          expect(seen.slice(0, -1)).toEqual(expected)
        } finally {
          await device?.endAsync(true)
          await watcher?.endAsync(true)
          await b.close()
          await redis.close()
        }
        expect(
          b.errors.map((e) => e.message),
          'errors B reported',
        ).toEqual([])
      },
      30_000,
    )
  },
)

/** Wait until `done()` holds, checked every 50 ms for up to 15 s; fails with `what()`. */
async function waitFor(done: () => boolean, what: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!done()) {
    if (Date.now() > deadline) throw new Error(what())
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

describe.skipIf(!redisServerPath)(
  redisServerPath ? 'shared subscriptions on two brokers' : REDIS_NOT_INSTALLED,
  () => {
    it(
      'a group of three with members on both brokers and a plain subscriber beside it: each ' +
        'message reaches one member, every member takes a share, none is lost when one leaves',
      async ({ onTestFinished }) => {
        const { redisServer, broker, client } = fixtures(onTestFinished)
        const redis = await redisServer()
        const [a, b] = [await broker(redis), await broker(redis)]
        const group = '$share/workers/jobs/+'
        const arrivals = new Waiter()
        const members = await Promise.all(
          [a, b, b].map(async (at) => {
            const member = heard(await client(at.url), arrivals)
            await member.client.subscribeAsync(group, { qos: 1 })
            return member
          }),
        )
        const plain = heard(await client(a.url), arrivals)
        await plain.client.subscribeAsync('jobs/+', { qos: 1 })
        const publisher = await client(a.url)
        const publish = async (names: string[]) => {
          for (const name of names) await publisher.publishAsync('jobs/x', name, { qos: 1 })
        }
        const first = jobs('first', 60)
        await publish(first)
        let shares = await sharesOf(members, publisher, arrivals, 'first-')
        expect(shares.flat().sort(), 'each message once over the group').toEqual(first.sort())
        for (const share of shares) expect(share.length, 'a share each').toBeGreaterThan(0)
        await plain.until('first-60')
        expect(plain.got.filter((m) => m.startsWith('first-')).sort()).toEqual(first.sort())

        // The second member on B leaves: the other two share what follows, and lose none.
        await members[2].client.endAsync()
        const second = jobs('second', 60)
        await publish(second)
        shares = await sharesOf(members.slice(0, 2), publisher, arrivals, 'second-')
        expect(shares.flat().sort(), 'none lost when a member left').toEqual(second.sort())
        for (const share of shares) expect(share.length, 'a share each').toBeGreaterThan(0)
      },
    )
  },
)

/** `<prefix>-1` to `<prefix>-<count>`. */
function jobs(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${i + 1}`)
}

/** A client and what it has heard, in order; `arrivals` hears of each message. */
function heard(client: MqttClient, arrivals: Waiter) {
  const got: string[] = []
  client.on('message', (_topic, payload) => {
    got.push(String(payload))
    arrivals.arrived()
  })
  const until = (message: string) =>
    arrivals.until(() => (got.includes(message) ? true : undefined), {
      timedOut: (ms) => new Error(`waited ${inSeconds(ms)} for ${message}`),
    })
  return { client, got, until }
}

/**
 * Each member's share of the messages that start with `prefix`: markers are sent to the group
 * until each member has got one; a member is sent its messages in order, so what it got before its
 * first marker is its share.
 */
async function sharesOf(
  members: ReturnType<typeof heard>[],
  publisher: MqttClient,
  arrivals: Waiter,
  prefix: string,
): Promise<string[][]> {
  const firstMarker = new Map<number, string>()
  for (let n = 1; firstMarker.size < members.length; n++) {
    const marker = `marker-${n}-${Math.random()}`
    await publisher.publishAsync('jobs/marker', marker, { qos: 1 })
    const who = await arrivals.until(
      () => {
        const i = members.findIndex((m) => m.got.includes(marker))
        return i < 0 ? undefined : i
      },
      { timedOut: (ms) => new Error(`waited ${inSeconds(ms)} for ${marker} to reach a member`) },
    )
    if (!firstMarker.has(who)) firstMarker.set(who, marker)
  }
  return members.map((m, i) =>
    m.got.slice(0, m.got.indexOf(firstMarker.get(i)!)).filter((m) => m.startsWith(prefix)),
  )
}
