// Third-party clients against the bundled broker: Mosquitto's command-line clients (mosquitto_sub
// and mosquitto_pub) and a paho-mqtt client of our own (test/interop/paho_client.py, the article's
// library) talk to it, alone and with our demos, and see what our demos see. Where a client is not
// installed, its tests are skipped under a title that says how to install it.
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type RunningBroker } from '../../lib/broker/broker.ts'
import { HUNG_MS, inSeconds, Waiter } from '../../scenarios/stage/waiter.ts'
import { ROOT } from '../../lib/build-cache.ts'
import { interopClients } from './interop-clients.ts'
import { findProgram } from '../helpers/mosquitto.ts'
import { type Program, runScript } from '../helpers/processes.ts'
import { python } from '../helpers/python.ts'

const mosquittoSub = findProgram('mosquitto_sub')
const mosquittoPub = findProgram('mosquitto_pub')

const missing = [
  ...(mosquittoSub && mosquittoPub ? [] : ['mosquitto-clients']),
  ...(python ? [] : ['python3-paho-mqtt']),
]
if (missing.length > 0)
  console.warn(
    `third-party clients not installed: apt-get install ${missing.join(' ')} ` +
      'to run the interop tests with them',
  )

const publisher = 'demos/basic-pubsub/publisher.ts'
const subscriber = 'demos/basic-pubsub/subscriber.ts'
/** mosquitto_sub -W: it gives up after this many seconds, should its message never come. */
const CAP_S = String(HUNG_MS / 1000)

let broker: RunningBroker
beforeAll(async () => {
  broker = await startBroker({ port: 0 })
})
afterAll(() => broker?.close())

let topics = 0
/** A topic (or a first level) no other test of this file uses. */
const fresh = (name: string) => `interop-${++topics}/${name}`

/**
 * Our demo programs, pointed at the bundled broker, and the others: each test's leftovers are
 * stopped after it.
 */
const env = () => ({ MQTT_URL: broker.url })
const { ours, theirs: launch, runToEnd } = interopClients(env)

/**
 * Resolves when the broker reports `line` (such as "client x subscribed to t (QoS 0)"). Call it
 * before causing it.
 */
async function brokerSays(line: string): Promise<void> {
  let said = false
  const reports = new Waiter()
  const stop = broker.onClientEvent((report) => {
    if (report !== line) return
    said = true
    reports.arrived()
  })
  try {
    await reports.until(() => (said ? true : undefined), {
      timedOut: (ms) =>
        new Error(`the broker did not report ${JSON.stringify(line)} within ${inSeconds(ms)}`),
    })
  } finally {
    stop()
  }
}

/** The lines a program printed, without the last newline. */
const lines = (output: string) => output.trimEnd().split('\n')

describe.skipIf(!mosquittoSub || !mosquittoPub)(
  mosquittoSub && mosquittoPub
    ? 'mosquitto_sub and mosquitto_pub with the bundled broker'
    : 'Mosquitto clients not installed: apt-get install mosquitto-clients to run these',
  () => {
    const at = () => ['-h', '127.0.0.1', '-p', String(broker.port)]
    /**
     * mosquitto_sub as `id`, started and subscribed; -W caps its life, should a message never come.
     */
    async function sub(id: string, args: string[]): Promise<Program> {
      const filters = args.flatMap((arg, i) => (args[i - 1] === '-t' ? [arg] : []))
      const subscribed = Promise.all(
        filters.map((filter) =>
          brokerSays(
            `client ${id} subscribed to ${filter} ` +
              `(QoS ${args.includes('-q') ? args[args.indexOf('-q') + 1] : 0})`,
          ),
        ),
      )
      const program = launch(mosquittoSub!, [...at(), '-i', id, '-W', CAP_S, ...args])
      await subscribed
      return program
    }
    const pub = (args: string[]) => runToEnd(mosquittoPub!, [...at(), ...args])

    it('C7: mosquitto_sub, started first, prints what our publisher sends', async () => {
      const topic = fresh('my_topic')
      const listener = await sub('ms-first', ['-t', topic, '-v', '-C', '1'])
      expect((await runScript(publisher, ['--topic', topic], env())).code).toBe(0)
      const result = await listener.finish()
      expect({ code: result.code, stdout: result.stdout }).toEqual({
        code: 0,
        stdout: `${topic} on\n`,
      })
    })

    it('C7: our subscriber, started first, prints what mosquitto_pub sends', async () => {
      const topic = fresh('my_topic')
      const listener = ours(subscriber, ['--topic', topic])
      await listener.waitForLine(`subscribed to ${topic} (QoS 0)`)
      await pub(['-t', topic, '-m', 'on'])
      expect(await listener.waitForLine(`${topic} on`)).toBe(`${topic} on`)
    })

    it(
      'C8, C10: mosquitto_sub started after mosquitto_pub sent a message gets nothing of it, ' +
        'and gets the next one',
      async () => {
        const topic = fresh('my_topic')
        await pub(['-t', topic, '-m', 'nobody listens'])
        const listener = await sub('ms-late', ['-t', topic, '-v', '-C', '1'])
        await pub(['-t', topic, '-m', 'next'])
        // -C 1: it prints the first message it gets, and that is the one sent after it subscribed.
        expect((await listener.finish()).stdout).toBe(`${topic} next\n`)
      },
    )

    it(
      'C11, S2: mosquitto_pub -r leaves a retained message that our late subscriber and ' +
        'mosquitto_sub get flagged, live ones unflagged; -n deletes it',
      async () => {
        const topic = fresh('my_topic')
        await pub(['-t', topic, '-m', 'on', '-r'])
        const late = ours(subscriber, ['--topic', topic])
        expect(await late.waitForLine(`${topic} on`)).toBe(`${topic} on (retained)`)
        // -F: %r is the RETAIN flag of the PUBLISH as it arrived.
        expect(
          (
            await runToEnd(mosquittoSub!, [
              ...at(),
              '-t',
              topic,
              '-C',
              '1',
              '-W',
              CAP_S,
              '-F',
              '%t %p retain=%r',
            ])
          ).stdout,
        ).toBe(`${topic} on retain=1\n`)

        await pub(['-t', topic, '-m', 'off', '-r'])
        expect(await late.waitForLine(`${topic} off`)).toBe(`${topic} off`)
        await pub(['-t', topic, '-r', '-n'])
        expect(await late.waitForLine(`${topic} (empty)`)).toBe(`${topic} (empty)`)

        // Proof that nothing is retained any more: a retained marker stored after it on another
        // topic, subscribed to in the same SUBSCRIBE, comes first (the broker sends retained
        // messages filter by filter).
        const marker = fresh('marker')
        await pub(['-t', marker, '-m', 'marker', '-r'])
        const last = await runToEnd(mosquittoSub!, [
          ...at(),
          '-t',
          topic,
          '-t',
          marker,
          '-v',
          '-C',
          '1',
          '-W',
          CAP_S,
        ])
        expect(last.stdout).toBe(`${marker} marker\n`)
        await pub(['-t', marker, '-r', '-n'])
      },
    )

    it(
      'C15, C16, C17, S3: mosquitto_sub with + and # filters gets exactly the topics they ' +
        'match',
      async () => {
        const home = fresh('home')
        const light = await sub('ms-light', ['-t', `${home}/+/light`, '-v', '-C', '2'])
        const room = await sub('ms-room', ['-t', `${home}/living_room/+`, '-v', '-C', '2'])
        const house = await sub('ms-house', ['-t', `${home}/#`, '-v', '-C', '4'])
        const everything = await sub('ms-all', ['-t', '#', '-v', '-C', '4'])
        // QoS 1: each message is with the broker before the next mosquitto_pub starts.
        const sent = [
          `${home}/living_room/tv`,
          `${home}/bedroom/light`,
          `${home}/living_room/light`,
          home,
        ]
        for (const topic of sent) await pub(['-t', topic, '-m', 'on', '-q', '1'])
        const printed = async (program: Program) =>
          lines((await program.finish()).stdout).map((line) => line.replace(/ on$/, ''))
        // -C N: each prints the first N messages it gets; one it should not have got would push one
        // out.
        expect(await printed(light)).toEqual([`${home}/bedroom/light`, `${home}/living_room/light`])
        expect(await printed(room)).toEqual([`${home}/living_room/tv`, `${home}/living_room/light`])
        expect(await printed(house)).toEqual(sent)
        expect(await printed(everything)).toEqual(sent)
      },
    )

    it(
      'S4: mosquitto_sub -t "#" gets no $SYS message; -t $SYS/broker/version gets ' + 'it',
      async () => {
        // The broker stored $SYS/broker/version when it started; a retained marker stored now comes
        // after it.
        const marker = fresh('marker')
        await pub(['-t', marker, '-m', 'marker', '-r'])
        expect(
          (await runToEnd(mosquittoSub!, [...at(), '-t', '#', '-v', '-C', '1', '-W', CAP_S]))
            .stdout,
        ).toBe(`${marker} marker\n`)
        const version = await runToEnd(mosquittoSub!, [
          ...at(),
          '-t',
          '$SYS/broker/version',
          '-C',
          '1',
          '-W',
          CAP_S,
          '-F',
          '%t retain=%r',
        ])
        expect(version.stdout).toBe('$SYS/broker/version retain=1\n')
        await pub(['-t', marker, '-r', '-n'])
      },
    )

    it(
      'S1: mosquitto_sub -c keeps its session: a QoS 1 message our publisher sends while it is ' +
        'away arrives when it returns',
      async () => {
        const topic = fresh('my_topic')
        const id = `ms-alice-${topics}`
        const away = await sub(id, ['-t', topic, '-c', '-q', '1', '-v'])
        const gone = brokerSays(`client ${id} disconnected`)
        // SIGKILL: mosquitto_sub 2.0 sometimes hangs for good on SIGTERM (its signal handler waits
        // for a lock the code it interrupted holds), and the broker keeps a persistent session
        // however the connection ends.
        away.child.kill('SIGKILL')
        await gone
        expect(
          (
            await runScript(
              publisher,
              ['--topic', topic, '--qos', '1', '--message', 'kept for alice'],
              env(),
            )
          ).code,
        ).toBe(0)
        const back = await runToEnd(mosquittoSub!, [
          ...at(),
          '-i',
          id,
          '-c',
          '-q',
          '1',
          '-t',
          topic,
          '-v',
          '-C',
          '1',
          '-W',
          CAP_S,
        ])
        expect(back.stdout).toBe(`${topic} kept for alice\n`)
      },
    )
  },
)

describe.skipIf(!python)(
  python
    ? "a paho-mqtt client (the article's library) with the bundled broker"
    : 'paho-mqtt not installed: apt-get install python3-paho-mqtt to run these',
  () => {
    const script = join(ROOT, 'test', 'interop', 'paho_client.py')
    const paho = (...args: string[]) => launch(python!, [script, broker.url, ...args])
    /** A paho subscriber, started and subscribed. */
    async function pahoSub(...args: string[]): Promise<Program> {
      const program = paho('sub', ...args)
      await program.waitForLine('subscribed to')
      return program
    }
    /**
     * A paho client run to its end: a publisher, or a subscriber that stops after --count messages.
     */
    const pahoRun = (...args: string[]) => runToEnd(python!, [script, broker.url, ...args])
    const pahoPub = (...args: string[]) => pahoRun('pub', ...args)

    it(
      'C6, C7: a paho-mqtt subscriber, started first, prints what our publisher sends, line for ' +
        'line as our subscriber would',
      async () => {
        const topic = fresh('my_topic')
        const listener = await pahoSub(topic, '--count', '1')
        expect((await runScript(publisher, ['--topic', topic], env())).code).toBe(0)
        const result = await listener.finish()
        expect(lines(result.stdout)).toEqual([
          `connected to ${broker.url}, result code 0`,
          `subscribed to ${topic} (QoS 0)`,
          `${topic} on`,
        ])
      },
    )

    it(
      'C5, C11: paho-mqtt publishes like our publisher, and retained messages cross over: ' +
        'theirs to our late subscriber, ours to theirs',
      async () => {
        const topic = fresh('my_topic')
        const theirs = await pahoPub(topic, 'on', '--retain')
        const our = await runScript(publisher, ['--topic', topic, '--retain'], env())
        expect(lines(theirs.stdout)).toEqual(lines(our.stdout))

        await pahoPub(topic, 'from paho', '--retain')
        const late = ours(subscriber, ['--topic', topic])
        expect(await late.waitForLine(`${topic} from paho`)).toBe(`${topic} from paho (retained)`)
        expect(
          (
            await runScript(
              publisher,
              ['--topic', topic, '--retain', '--message', 'from us'],
              env(),
            )
          ).code,
        ).toBe(0)
        expect(await late.waitForLine(`${topic} from us`)).toBe(`${topic} from us`)
        const pahoLate = await pahoRun('sub', topic, '--count', '1')
        expect(lines(pahoLate.stdout).at(-1)).toBe(`${topic} from us (retained)`)
        await pahoPub(topic, '', '--retain', '--qos', '1')
      },
    )

    it(
      'C16: a paho-mqtt subscriber on home/+/light gets the light, not the ' + 'television',
      async () => {
        const home = fresh('home')
        const listener = await pahoSub(`${home}/+/light`, '--count', '1')
        // QoS 1: the television's message is with the broker before the light's is sent.
        await pahoPub(`${home}/living_room/tv`, 'on', '--qos', '1')
        await pahoPub(`${home}/bedroom/light`, 'on', '--qos', '1')
        // --count 1: it prints the first message it gets; the television's would have come first.
        expect(lines((await listener.finish()).stdout).at(-1)).toBe(`${home}/bedroom/light on`)
      },
    )

    it(
      'C8, C9: a paho-mqtt subscriber started after a message was sent gets nothing of it, and ' +
        'gets the next one',
      async () => {
        const topic = fresh('my_topic')
        await pahoPub(topic, 'nobody listens', '--qos', '1')
        const listener = await pahoSub(topic, '--count', '1')
        await pahoPub(topic, 'next')
        expect(lines((await listener.finish()).stdout).at(-1)).toBe(`${topic} next`)
      },
    )

    it(
      'S1: a paho-mqtt persistent session (clean_session=False, QoS 1) gets the message our ' +
        'publisher sent while it was away',
      async () => {
        const topic = fresh('my_topic')
        const id = `paho-alice-${topics}`
        const away = await pahoSub(topic, '--id', id, '--no-clean', '--qos', '1')
        const gone = brokerSays(`client ${id} disconnected`)
        away.child.kill('SIGTERM')
        await gone
        expect(
          (
            await runScript(
              publisher,
              ['--topic', topic, '--qos', '1', '--message', 'kept for alice'],
              env(),
            )
          ).code,
        ).toBe(0)
        const back = await pahoRun(
          'sub',
          topic,
          '--id',
          id,
          '--no-clean',
          '--qos',
          '1',
          '--count',
          '1',
        )
        // It subscribes again on connecting; the SUBACK may come before or after the queued
        // message.
        const printed = lines(back.stdout).filter((line) => !line.startsWith('subscribed to'))
        expect(printed).toEqual([
          `connected to ${broker.url}, result code 0, session present: yes`,
          `${topic} kept for alice`,
        ])
      },
    )
  },
)
