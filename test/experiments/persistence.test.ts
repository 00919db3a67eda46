// The persistence experiment, played by the same scenario as `npm run demo:persistence`, in check
// mode: brokers as real processes, stopped and killed. Then messages that wait for the store on
// their way through a broker with --persist: none is lost or overtaken (aedes alone, on the same
// store, loses or shuffles them). Then the bad input of --persist: each directory it cannot use
// gives one line and exit 1, and a directory in use is refused without harm to it.
import { spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { programArgs } from '../../scenarios/stage/bundle.ts'
import { startBroker } from '../../lib/broker/broker.ts'
import { openStore } from '../../lib/broker/store.ts'
import { check } from '../../scenarios/stage/stage.ts'
import { claimsMet, type Event } from '../../scenarios/stage/scenario.ts'
import { ROOT } from '../../lib/build-cache.ts'
import { persistence } from '../../scenarios/persistence.ts'
import { normalise, printed } from '../docs/doc-blocks.ts'
import { startPlainAedes } from '../broker/aedes-alone.ts'
import {
  expectOneLineError,
  isListening,
  Program,
  runScript,
  start,
  type Finished,
} from '../helpers/processes.ts'
import { collect, playTimeout, quotingSuite, traceSuite } from './scenario-suite.ts'
import type { TraceEntry } from '../../scenarios/stage/trace.ts'
import { RawClient } from '../helpers/raw-client.ts'

const brokerScript = 'lib/broker/main.ts'

/** Where the scenario kept its store: the --persist argument of its broker commands. */
const storeOf = (events: Event[]) =>
  events
    .flatMap((e) => (e.kind === 'command' ? [e.text.match(/--persist (\S+)/)?.[1]] : []))
    .find(Boolean)!

/** Ports and the scenario's temporary directory differ between runs. */
const stable = (text: string) => normalise(text).replace(/\/\S*mqtt-by-example-\w+/g, '<tmp>')

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mqtt-by-example-test-'))
})
afterAll(() => rm(dir, { recursive: true, force: true }))

describe('scenario persistence', () => {
  let first: Event[]
  const trace: TraceEntry[] = []
  // Twenty programs start one after another (eight brokers, publishers, subscribers), each about
  // half a second of node and tsx, and more when the machine is busy: a play took 13 s at rest and
  // over 30 s (the default for a hook) beside other test files on two cores, with aedes 1.2 as with
  // 2.0.
  beforeAll(async () => {
    // Given an MQTT_URL where nobody listens: the scenario runs brokers of its own whatever it is
    // given.
    first = await check(persistence, { url: 'mqtt://127.0.0.1:1', onTrace: collect(trace) })
  }, playTimeout(persistence))

  traceSuite(persistence, () => first, trace)

  it(
    'C11, S2, S1: with --persist, retained messages and queued messages outlive a restart and a ' +
      'kill; without it they are lost, on brokers of its own',
    async () => {
      expect(claimsMet(first)).toEqual(['C11', 'S2', 'S1'])
      const received = (step: number) =>
        printed(first, 'subscriber', { from: step, to: step })
          .split('\n')
          .filter((l) => l.startsWith('my_topic'))
      expect(received(2)).toEqual([]) // in memory: lost with the restart
      expect(received(4)).toEqual(['my_topic on (retained)']) // --persist, Ctrl-C
      // --persist, SIGKILL right after it was acknowledged
      expect(received(5)).toEqual(['my_topic off (retained)'])
      expect(received(6)).toEqual([]) // deleted by an empty retained message before the kill
      expect(printed(first, 'alice', { from: 9, to: 9 }).split('\n')).toContain(
        'my_topic kept for alice',
      )
      // Nothing outlives the scenario: no broker listening, no temporary directory.
      const port = Number(printed(first, 'broker').match(/127\.0\.0\.1:(\d+)/)![1])
      expect(await isListening(port)).toBe(false)
      expect(existsSync(dirname(storeOf(first)))).toBe(false)
    },
  )

  quotingSuite(persistence, () => first, stable)
})

describe('with --persist, messages that wait for the store on their way', () => {
  const ROUNDS = 50
  const brokers = [
    {
      title: 'the bundled broker',
      departs: false,
      start: async (store: string) => startBroker({ port: 0, persist: store }),
    },
    {
      title: 'aedes alone on the same store',
      departs: true,
      async start(store: string) {
        const opened = await openStore(store)
        const aedes = await startPlainAedes(0, opened.persistence)
        return {
          url: aedes.url,
          close: async () => {
            await aedes.close()
            await opened.close()
          },
        }
      },
    },
  ]

  /**
   * Run `test` against `broker` in a store of its own; it returns what went wrong in each round, if
   * anything.
   */
  async function within(
    broker: (typeof brokers)[number],
    test: (url: string) => Promise<string[]>,
  ): Promise<string[]> {
    const running = await broker.start(join(await mkdtemp(join(dir, 'order-')), 'store'))
    try {
      return await test(running.url)
    } finally {
      await running.close()
    }
  }

  /**
   * What went wrong, or nothing: a departure is expected to find something, the bundled broker
   * nothing.
   */
  function judge(broker: (typeof brokers)[number], wrong: string[]): void {
    if (broker.departs)
      expect(wrong.length, `${broker.title} keeps this now: remove its departure`).toBeGreaterThan(
        0,
      )
    else expect(wrong).toEqual([])
  }

  const overtaken =
    '§4.3 [MQTT-4.5.0-1]: a retained message being written reaches a subscriber that another ' +
    "client's message reached first ($title)"
  it.each(brokers)(overtaken, async (broker) => {
    judge(
      broker,
      await within(broker, async (url) => {
        const subscriber = await RawClient.connected(url)
        await subscriber.subscribe(['lights/#'])
        const [kitchen, hall] = [await RawClient.connected(url), await RawClient.connected(url)]
        const wrong: string[] = []
        for (let round = 0; round < ROUNDS; round++) {
          // The kitchen's retained message goes to the store; the hall's, sent right after, does
          // not wait.
          kitchen.send(kitchen.publishPacket('lights/kitchen', `on ${round}`, { retain: true }))
          hall.send(hall.publishPacket('lights/hall', `on ${round}`))
          // A marker from the kitchen, after its message: that message has arrived before it, or
          // never will.
          await kitchen.publish('lights/kitchen', `marker ${round}`, { qos: 1 })
          const got = (await subscriber.publishesBefore(`marker ${round}`)).map(
            (p) => `${p.topic} ${p.payload}`,
          )
          if (!got.includes(`lights/kitchen on ${round}`))
            wrong.push(`round ${round}: got ${got.join(', ')}`)
        }
        for (const client of [subscriber, kitchen, hall]) client.end()
        return wrong
      }),
    )
  })

  const inOrder =
    '§4.6 [MQTT-4.6.0-6]: QoS 1 messages from one client on a topic that a session away from the ' +
    'broker follows reach a subscriber in the order sent ($title)'
  it.each(brokers)(inOrder, async (broker) => {
    judge(
      broker,
      await within(broker, async (url) => {
        // Three sessions away: each message is written three times before it is routed.
        for (const clientId of ['away-1', 'away-2', 'away-3']) {
          const away = await RawClient.connect(url, { clientId, clean: false })
          await away.client.subscribe(['lights/kitchen'], 1)
          await away.client.disconnect()
        }
        const subscriber = await RawClient.connected(url)
        await subscriber.subscribe(['lights/kitchen'], 1)
        const publisher = await RawClient.connected(url)
        const wrong: string[] = []
        // How often the writes finish out of order depends on the disk and the machine (from 1
        // burst in 25 to 1 in 2 here): where a departure is expected, bursts go on until it shows,
        // up to ten times as many as the bundled broker must get through in order.
        for (
          let round = 0;
          round < (broker.departs ? 20 : 2) * ROUNDS && !(broker.departs && wrong.length > 0);
          round++
        ) {
          const burst = Array.from({ length: 20 }, (_, i) => `${round}.${i}`)
          publisher.sendAll(
            [...burst, `end ${round}`].map((payload) =>
              publisher.publishPacket('lights/kitchen', payload, { qos: 1 }),
            ),
          )
          const got = (await subscriber.publishesBefore(`end ${round}`)).map((p) =>
            String(p.payload),
          )
          if (got.join(' ') !== burst.join(' ')) wrong.push(`burst ${round}: ${got.join(' ')}`)
        }
        // The sessions are left for the store to be thrown away with its directory.
        subscriber.end()
        publisher.end()
        return wrong
      }),
    )
  })
})

describe('--persist bad input: one line, exit 1', () => {
  /**
   * `npm run broker -- --persist <path>`, as a user that file permissions apply to (root ignores
   * them).
   */
  function brokerAsUser(path: string): Promise<Finished> {
    const asRoot = process.getuid?.() === 0
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' }
    delete env.MQTT_URL
    const child = spawn(
      process.execPath,
      [...programArgs(brokerScript), '--port', '0', '--persist', path],
      {
        cwd: ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(asRoot && { uid: 65534, gid: 65534 }),
      },
    )
    return new Program(child, `broker --persist ${path}`).finish()
  }

  it('a directory that cannot be written', async () => {
    const readOnly = join(dir, 'read-only')
    await mkdir(readOnly)
    await chmod(dir, 0o755)
    await chmod(readOnly, 0o555)
    const store = join(readOnly, 'store')
    expectOneLineError(
      await brokerAsUser(store),
      new RegExp(
        `^error: --persist ${store} cannot be written \\(permission denied\\); give a directory ` +
          `you can write to$`,
      ),
    )
  })

  it('a damaged store', async () => {
    const store = join(dir, 'damaged')
    const broker = start(brokerScript, ['--port', '0', '--persist', store, '--quiet'])
    await broker.waitForLine('broker ready on')
    broker.child.kill('SIGTERM')
    expect((await broker.finish()).code).toBe(0)
    for (const file of readdirSync(store).filter(
      (f) => f === 'CURRENT' || f.startsWith('MANIFEST'),
    )) {
      await writeFile(join(store, file), 'scrambled')
    }
    expectOneLineError(
      await runScript(brokerScript, ['--port', '0', '--persist', store]),
      new RegExp(
        `^error: --persist ${store} holds a damaged store \\(Corruption: .+\\); move it away and ` +
          `start with an empty directory$`,
      ),
    )
  })

  it.each([
    [
      'a file',
      async () => {
        await writeFile(join(dir, 'a-file'), 'not a directory')
        return join(dir, 'a-file')
      },
      'is not a directory; give it a directory (it is created if missing)',
    ],
    [
      'a directory of other things',
      async () => {
        await mkdir(join(dir, 'other-things'), { recursive: true })
        await writeFile(join(dir, 'other-things', 'notes.txt'), 'mine')
        return join(dir, 'other-things')
      },
      'is not empty and holds no broker store; give it an empty or a new directory',
    ],
  ])('%s', async (_what, make, problem) => {
    const path = await make()
    const result = await runScript(brokerScript, ['--port', '0', '--persist', path])
    expectOneLineError(
      result,
      new RegExp(`^error: --persist ${path} ${problem.replace(/[()]/g, '\\$&')}$`),
    )
    expect(readdirSync(dirname(path)).includes('LOCK'), 'LevelDB made no files beside it').toBe(
      false,
    )
  })

  it('an empty --persist', async () => {
    expectOneLineError(
      await runScript(brokerScript, ['--port', '0', '--persist', '']),
      /^error: --persist needs a directory, such as \.\/broker-store \(it is created if missing\)$/,
    )
  })

  it('a directory a running broker holds is refused, and left unharmed', async () => {
    const store = join(dir, 'held')
    const holder = start(brokerScript, ['--port', '0', '--persist', store, '--quiet'])
    const url = (await holder.waitForLine('broker ready on')).match(/(mqtt:\/\/\S+);/)![1]
    const retainedOn = async (brokerUrl: string) => {
      const client = await mqtt.connectAsync(brokerUrl, { reconnectPeriod: 0 })
      const message = new Promise<string>((resolve) =>
        client.on('message', (_topic, payload) => resolve(String(payload))),
      )
      await client.subscribeAsync('my_topic')
      const payload = await message
      await client.endAsync()
      return payload
    }
    try {
      const publisher = await mqtt.connectAsync(url, { reconnectPeriod: 0 })
      await publisher.publishAsync('my_topic', 'kept', { qos: 1, retain: true })
      await publisher.endAsync()

      expectOneLineError(
        await runScript(brokerScript, ['--port', '0', '--persist', store]),
        new RegExp(
          `^error: --persist ${store} is in use by another running broker \\(it holds the LOCK ` +
            `file\\); stop that broker, or give another directory$`,
        ),
      )
      expect(await retainedOn(url), 'the running broker still serves its store').toBe('kept')
    } finally {
      holder.child.kill('SIGTERM')
      await holder.finish()
    }
    const next = start(brokerScript, ['--port', '0', '--persist', store, '--quiet'])
    try {
      const nextUrl = (await next.waitForLine('broker ready on')).match(/(mqtt:\/\/\S+);/)![1]
      expect(await retainedOn(nextUrl), 'the store opens again with what it held').toBe('kept')
    } finally {
      next.child.kill('SIGTERM')
      await next.finish()
    }
  })
})
