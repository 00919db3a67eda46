// The MQTT 5 experiment, played by the same scenario as `npm run demo:mqtt5`, in check mode, on the
// bundled broker and on Mosquitto; then third-party MQTT 5 clients (mosquitto_sub and mosquitto_pub
// with -V mqttv5, and paho-mqtt with protocol=MQTTv5, test/interop/paho_mqtt5.py) with our MQTT 5
// demos on the bundled broker, seeing what they see; then what the MQTT 5 flags refuse.
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type RunningBroker } from '../../lib/broker/broker.ts'
import { HUNG_MS } from '../../scenarios/stage/waiter.ts'
import { mqtt5 } from '../../scenarios/mqtt5.ts'
import { ROOT } from '../../lib/build-cache.ts'
import type { Event } from '../../scenarios/stage/scenario.ts'
import { normalise } from '../docs/doc-blocks.ts'
import { interopClients } from '../interop/interop-clients.ts'
import { findProgram } from '../helpers/mosquitto.ts'
import { expectOneLineError, runScript, start } from '../helpers/processes.ts'
import { python } from '../helpers/python.ts'
import { scenarioSuite } from './scenario-suite.ts'
import { MQTT5_LIFELINES } from '../stage-view/plays.ts'
import { joined } from '../helpers/regexp.ts'

const CLAIMS = ['V1', 'V7', 'V2', 'V3', 'V4', 'V5', 'V6', 'V8']

/**
 * What `label` printed on stdout, markers left out, with the stage's topic prefix (Mosquitto's
 * round) taken off.
 */
function printedBy(events: Event[], label: string): string[] {
  return events.flatMap((e) =>
    e.kind === 'line' && e.label === label && e.stream === 'stdout' && !/\bmarker-\d+$/.test(e.text)
      ? [e.text.replace(/mqtt-by-example-[0-9a-f]+\//g, '')]
      : [],
  )
}

/** The messages a subscriber printed, without its connected and subscribed lines. */
const messages = (events: Event[], label: string) =>
  printedBy(events, label).filter((l) => !/^(connected|subscribed) /.test(l))

/**
 * For the docs: how long a message has left depends on when it is read (it may have waited a
 * second), and a returning session's queued message races the SUBACK of its new subscription (the
 * SUBACK line is put right after the CONNACK line).
 */
function docsOrder(text: string): string {
  const lines = normalise(text)
    .replace(/\(expires in \d+ s\)/g, '(expires in N s)')
    .split('\n')
  for (const [resumed, line] of lines.entries()) {
    if (!line.endsWith('session present: yes')) continue
    const suback = lines.findIndex((l, i) => i > resumed && l.startsWith('subscribed to '))
    if (suback > resumed + 1) lines.splice(resumed + 1, 0, ...lines.splice(suback, 1))
  }
  return lines.join('\n')
}

/** What every play shows, whatever the broker. */
function everywhere(events: Event[]): void {
  expect(messages(events, 'responder')).toEqual([
    'my_topic on (user property room=kitchen) (content type text/plain)',
    'my_topic are you on? (response topic replies/alice) (correlation data req-1)',
    'answered "yes" on replies/alice',
  ])
  expect(messages(events, 'requester').at(-1)).toBe(
    'reply on replies/alice: yes (correlation data req-1)',
  )
  // alice: nothing in her first two comebacks but what her 10 s session kept.
  expect(messages(events, 'alice')).toEqual(['my_topic kept for alice'])
  expect(messages(events, 'subscriber-2')).toEqual([])
  expect(messages(events, 'rh-0')).toEqual([
    'my_topic on (retained)',
    'my_topic on (retained)',
    'my_topic off',
  ])
  expect(messages(events, 'rh-1')).toEqual(['my_topic on (retained)'])
  expect(messages(events, 'rh-2')).toEqual(['my_topic off (retained)'])
  expect(messages(events, 'kitchen')).toEqual(['published "on" to home/kitchen/light'])
  expect(messages(events, 'observer')).toEqual(['home/kitchen/light on'])
  expect(messages(events, 'listener')).toEqual(['home/kitchen/status offline'])
}

scenarioSuite(
  mqtt5,
  'V1, V2, V3, V4, V5, V6, V7, V8: what MQTT 5 changes in each experiment, shown on the bundled ' +
    'broker',
  CLAIMS,
  {
    normalise: docsOrder,
    verify: (events) => {
      everywhere(events)
      // The stage view's test lays out the names of this show's lifelines: these, in this order.
      const programs = events.flatMap((e) => (e.kind === 'command' ? [e.label] : []))
      expect([...new Set(programs)]).toEqual(
        MQTT5_LIFELINES.filter((label) => label !== 'broker' && label !== 'stage'),
      )
      expect(printedBy(events, 'publisher')).toContain('acknowledged, reason code 0x00 success')
      // The bundled broker spread the four messages over the two members, in turn.
      expect(messages(events, 'member-1')).toEqual([
        'home/kitchen/light one',
        'home/kitchen/light three',
      ])
      expect(messages(events, 'member-2')).toEqual([
        'home/kitchen/light two',
        'home/kitchen/light four',
      ])
      // It heard each session end: alice's when her 2 s were up, the device's with its will.
      const broker = printedBy(events, 'broker')
      for (const id of ['alice', 'kitchen'])
        expect(broker).toContain(
          `client ${id} session expired: the broker dropped it, and what it had queued`,
        )
    },
    onMosquitto: [
      {
        prefixed: true,
        claims: CLAIMS,
        verify: (events) => {
          everywhere(events)
          // Mosquitto serves shared subscriptions: the four messages were spread over the two
          // members.
          const one = messages(events, 'member-1')
          const two = messages(events, 'member-2')
          expect([...one, ...two].sort()).toEqual([
            'home/kitchen/light four',
            'home/kitchen/light one',
            'home/kitchen/light three',
            'home/kitchen/light two',
          ])
          expect(one.length * two.length, 'each member got some').toBeGreaterThan(0)
          expect(printedBy(events, 'publisher')).toContain(
            'acknowledged, reason code 0x10 no matching subscribers',
          )
        },
      },
    ],
  },
)

const mosquittoSub = findProgram('mosquitto_sub')
const mosquittoPub = findProgram('mosquitto_pub')
const publisher = 'demos/mqtt5/publisher.ts'
const subscriber = 'demos/mqtt5/subscriber.ts'

describe('MQTT 5 clients that are not ours, with our MQTT 5 demos, on the bundled broker', () => {
  let broker: RunningBroker
  beforeAll(async () => {
    broker = await startBroker({ port: 0 })
  })
  afterAll(() => broker?.close())

  let topics = 0
  const fresh = (name: string) => `mqtt5-interop-${++topics}/${name}`
  const env = () => ({ MQTT_URL: broker.url })
  const { ours, theirs, runToEnd } = interopClients(env)
  const lines = (output: string) => output.trimEnd().split('\n')
  /** The properties our publisher sends in these tests, and how our subscriber prints them. */
  const sent = [
    '--message-expiry',
    '60',
    '--user-property',
    'room=kitchen',
    '--content-type',
    'text/plain',
  ]
  const shown = ' (expires in 60 s) (user property room=kitchen) (content type text/plain)'

  describe.skipIf(!mosquittoSub || !mosquittoPub)(
    mosquittoSub && mosquittoPub
      ? 'mosquitto_sub and mosquitto_pub -V mqttv5'
      : 'Mosquitto clients not installed: apt-get install mosquitto-clients to run these',
    () => {
      const at = () => ['-V', 'mqttv5', '-h', '127.0.0.1', '-p', String(broker.port)]

      it(
        'V3, V7: mosquitto_sub gets the expiry, user property and content type our publisher ' +
          'sends; our subscriber gets those mosquitto_pub sends',
        async () => {
          const topic = fresh('my_topic')
          const listener = theirs(mosquittoSub!, [
            ...at(),
            '-t',
            topic,
            '-C',
            '1',
            '-W',
            String(HUNG_MS / 1000),
            '-F',
            '%t %p|%E|%P|%C',
          ])
          // -E would make it exit on SUBACK; the broker says when it has subscribed.
          await new Promise<void>((resolve) => {
            const stop = broker.onClientEvent((line) => {
              if (!line.endsWith(`subscribed to ${topic} (QoS 0)`)) return
              stop()
              resolve()
            })
          })
          expect((await runScript(publisher, ['--topic', topic, ...sent], env())).code).toBe(0)
          expect((await listener.finish()).stdout).toBe(`${topic} on|60|room:kitchen|text/plain\n`)

          const ourListener = ours(subscriber, ['--topic', topic])
          await ourListener.waitForLine(`subscribed to ${topic}`)
          await runToEnd(mosquittoPub!, [
            ...at(),
            '-t',
            topic,
            '-m',
            'on',
            '-q',
            '1',
            '-D',
            'PUBLISH',
            'message-expiry-interval',
            '60',
            '-D',
            'PUBLISH',
            'user-property',
            'room',
            'kitchen',
            '-D',
            'PUBLISH',
            'content-type',
            'text/plain',
          ])
          expect(await ourListener.waitForLine(`${topic} on`)).toBe(`${topic} on${shown}`)
        },
      )

      it(
        'V2: mosquitto_sub with a session expiry (-c -x 10) gets the QoS 1 message our ' +
          'publisher sent while it was away',
        async () => {
          const topic = fresh('my_topic')
          const id = `ms5-alice-${topics}`
          const away = theirs(mosquittoSub!, [
            ...at(),
            '-i',
            id,
            '-c',
            '-x',
            '10',
            '-q',
            '1',
            '-t',
            topic,
          ])
          await new Promise<void>((resolve) => {
            const stop = broker.onClientEvent((line) => {
              if (line !== `client ${id} subscribed to ${topic} (QoS 1)`) return
              stop()
              resolve()
            })
          })
          const gone = new Promise<void>((resolve) => {
            const stop = broker.onClientEvent((line) => {
              if (line !== `client ${id} disconnected`) return
              stop()
              resolve()
            })
          })
          away.child.kill('SIGKILL')
          await gone
          expect(
            (await runScript(publisher, ['--topic', topic, '--message', 'kept'], env())).code,
          ).toBe(0)
          const back = await runToEnd(mosquittoSub!, [
            ...at(),
            '-i',
            id,
            '-c',
            '-x',
            '0',
            '-q',
            '1',
            '-t',
            topic,
            '-v',
            '-C',
            '1',
            '-W',
            String(HUNG_MS / 1000),
          ])
          expect(back.stdout).toBe(`${topic} kept\n`)
        },
      )

      it('V6: mosquitto_sub and our subscriber, one group, share the messages', async () => {
        const topic = fresh('light')
        const filter = `$share/group/${topic}`
        const listener = theirs(mosquittoSub!, [
          ...at(),
          '-t',
          filter,
          '-q',
          '1',
          '-v',
          '-C',
          '2',
          '-W',
          String(HUNG_MS / 1000),
        ])
        await new Promise<void>((resolve) => {
          const stop = broker.onClientEvent((line) => {
            if (!line.endsWith(`subscribed to ${filter} (QoS 1)`)) return
            stop()
            resolve()
          })
        })
        const our = ours(subscriber, ['--topic', filter])
        await our.waitForLine(`subscribed to ${filter}`)
        const four = ['one', 'two', 'three', 'four'].flatMap((m) => ['--message', m])
        expect((await runScript(publisher, ['--topic', topic, ...four], env())).code).toBe(0)
        // In turn, in the order they joined.
        expect((await listener.finish()).stdout).toBe(`${topic} one\n${topic} three\n`)
        await our.waitForLine(`${topic} four`)
        // It quits on its second message, maybe before its PUBACK has left: the broker then hands
        // that message, three, on to the other member (QoS 1: at least once).
        expect(
          lines(our.stdout).filter((l) => l.startsWith(topic) && l !== `${topic} three`),
        ).toEqual([`${topic} two`, `${topic} four`])
      })
    },
  )

  describe.skipIf(!python)(
    python
      ? 'paho-mqtt with protocol=MQTTv5'
      : 'paho-mqtt not installed: apt-get install python3-paho-mqtt to run these',
    () => {
      const script = join(ROOT, 'test', 'interop', 'paho_mqtt5.py')
      const pahoSub = async (...args: string[]) => {
        const program = theirs(python!, [script, broker.url, 'sub', ...args])
        await program.waitForLine('subscribed to')
        return program
      }

      it(
        "V3, V7: a paho subscriber prints the properties of our publisher's message as our " +
          "subscriber does, and ours prints paho's",
        async () => {
          const topic = fresh('my_topic')
          const paho = await pahoSub(topic, '--count', '1')
          const our = ours(subscriber, ['--topic', topic])
          await our.waitForLine(`subscribed to ${topic}`)
          expect((await runScript(publisher, ['--topic', topic, ...sent], env())).code).toBe(0)
          const expected = `${topic} on${shown}`
          expect(await our.waitForLine(`${topic} on`)).toBe(expected)
          expect(lines((await paho.finish()).stdout).at(-1)).toBe(expected)

          const theirPublish = await runToEnd(python!, [
            script,
            broker.url,
            'pub',
            topic,
            'from paho',
            '--message-expiry',
            '60',
            '--user-property',
            'room=kitchen',
            '--content-type',
            'text/plain',
          ])
          const ourPublish = await runScript(
            publisher,
            ['--topic', topic, '--message', 'from paho', ...sent],
            env(),
          )
          // Both print the same publish line; ours adds the PUBACK's.
          expect(lines(theirPublish.stdout)[1]).toBe(lines(ourPublish.stdout)[1])
          expect(await our.waitForLine(`${topic} from paho`)).toBe(`${topic} from paho${shown}`)
        },
      )

      it(
        'V7: our requester gets the reply of a paho responder, with its correlation data ' +
          'copied',
        async () => {
          const topic = fresh('lamp')
          await pahoSub(topic, '--answer', 'yes')
          const request = await runScript(
            publisher,
            [
              '--topic',
              topic,
              '--message',
              'are you on?',
              '--response-topic',
              `${topic}/replies`,
              '--correlation-data',
              'req-7',
            ],
            env(),
          )
          expect(lines(request.stdout).at(-1)).toBe(
            `reply on ${topic}/replies: yes (correlation data req-7)`,
          )
        },
      )

      it(
        'V4, V5: a paho subscriber with no local, retain handling 2 and retain as published ' +
          'sees what ours does',
        async () => {
          const topic = fresh('my_topic')
          expect(
            (
              await runScript(
                publisher,
                ['--topic', topic, '--retain', '--message', 'stored'],
                env(),
              )
            ).code,
          ).toBe(0)
          const options = ['--retain-handling', '2', '--retain-as-published', '--no-local']
          const paho = await pahoSub(topic, ...options, '--count', '1')
          const our = ours(subscriber, ['--topic', topic, ...options])
          await our.waitForLine(`subscribed to ${topic}`)
          expect(
            (await runScript(publisher, ['--topic', topic, '--retain', '--message', 'live'], env()))
              .code,
          ).toBe(0)
          // --count 1: the first message it gets is the live one, not the one stored before it
          // subscribed.
          expect(lines((await paho.finish()).stdout).at(-1)).toBe(`${topic} live (retained)`)
          expect(await our.waitForLine(`${topic} live`)).toBe(`${topic} live (retained)`)
          await runScript(publisher, ['--topic', topic, '--retain', '--message', ''], env())
        },
      )

      it('V6: a paho subscriber and ours, members of one group, share the messages', async () => {
        const topic = fresh('light')
        const filter = `$share/group/${topic}`
        const paho = await pahoSub(filter, '--count', '2')
        const our = ours(subscriber, ['--topic', filter])
        await our.waitForLine(`subscribed to ${filter}`)
        const four = ['one', 'two', 'three', 'four'].flatMap((m) => ['--message', m])
        expect((await runScript(publisher, ['--topic', topic, ...four], env())).code).toBe(0)
        expect(lines((await paho.finish()).stdout).slice(-2)).toEqual([
          `${topic} one`,
          `${topic} three`,
        ])
        await our.waitForLine(`${topic} four`)
        // It quits on its second message, maybe before its PUBACK has left: the broker then hands
        // that message, three, on to the other member (QoS 1: at least once).
        expect(
          lines(our.stdout).filter((l) => l.startsWith(topic) && l !== `${topic} three`),
        ).toEqual([`${topic} two`, `${topic} four`])
      })
    },
  )
})

describe(
  'MQTT 5 on the programs of the other experiments, and what the MQTT 5 flags ' + 'refuse',
  () => {
    let broker: RunningBroker
    beforeAll(async () => {
      broker = await startBroker({ port: 0 })
    })
    afterAll(() => broker?.close())
    const env = () => ({ MQTT_URL: broker.url })

    it(
      'V1: a subscriber whose client id another takes hears why from the broker: DISCONNECT 0x8E ' +
        'session taken over',
      async () => {
        const first = start('demos/basic-pubsub/subscriber.ts', ['-V', '5', '--id', 'twin5'], env())
        await first.waitForLine('subscribed to my_topic')
        const second = start(
          'demos/basic-pubsub/subscriber.ts',
          ['-V', '5', '--id', 'twin5'],
          env(),
        )
        try {
          await second.waitForLine('subscribed to my_topic')
          expectOneLineError(
            await first.finish(),
            new RegExp(
              `^error: the broker at ${broker.url} closed this connection: 0x8E session taken ` +
                `over; ` +
                'another client connected with the same client id, twin5, and took its session ' +
                'over; ' +
                'give each a different --id$',
            ),
          )
        } finally {
          second.child.kill('SIGINT')
          await second.finish()
        }
      },
    )

    it(
      "-V 3.1.1 and no -V print the same, as the article's programs always did; -V 5 says reason " +
        'codes',
      async () => {
        const plain = await runScript('demos/basic-pubsub/publisher.ts', ['--qos', '1'], env())
        const spelled = await runScript(
          'demos/basic-pubsub/publisher.ts',
          ['--qos', '1', '--mqtt-version', '3.1.1'],
          env(),
        )
        const five = await runScript(
          'demos/basic-pubsub/publisher.ts',
          ['--qos', '1', '-V', '5'],
          env(),
        )
        expect(plain.stdout).toBe(
          `connected to ${broker.url}, result code 0\npublished "on" to my_topic\n`,
        )
        expect(spelled.stdout).toBe(plain.stdout)
        expect(five.stdout).toBe(
          `connected to ${broker.url}, reason code 0x00 success\npublished "on" to ` +
            `my_topic\nacknowledged, reason code 0x00 success\n`,
        )
      },
    )

    it.each([
      [
        'demos/basic-pubsub/subscriber.ts',
        ['-V', '4'],
        /^error: -V \(--mqtt-version\) must be 5 or 3\.1\.1, not "4"$/,
      ],
      [
        publisher,
        ['-V', '3.1.1'],
        joined(
          /^error: the MQTT 5 demos speak MQTT 5 only; for MQTT 3\.1\.1 run demos\/basic-pubsub\/ /,
          /and the others$/,
        ),
      ],
      [
        publisher,
        ['--message-expiry', '0'],
        /^error: --message-expiry must be a whole number of seconds from 1 to 4294967295, not "0"$/,
      ],
      [
        publisher,
        ['--user-property', 'room'],
        /^error: --user-property takes NAME=VALUE, such as room=kitchen, not "room"$/,
      ],
      [
        publisher,
        ['--correlation-data', 'x'],
        /^error: --correlation-data goes with --response-topic/,
      ],
      [
        publisher,
        ['--response-topic', 'replies/#'],
        /^error: --response-topic "replies\/#" is not a topic name: /,
      ],
      [
        subscriber,
        ['--session-expiry', 'soon'],
        joined(
          /^error: --session-expiry must be a whole number of seconds from 0 to 4294967295, not /,
          /"soon"$/,
        ),
      ],
      [
        subscriber,
        ['--retain-handling', '3'],
        /^error: --retain-handling must be 0, 1 or 2, not "3"$/,
      ],
      [
        subscriber,
        ['--will-delay', '5'],
        /^error: --will-message and --will-delay need --will-topic/,
      ],
      [
        subscriber,
        ['--publish', 'home/+/light=on'],
        /^error: --publish "home\/\+\/light" is not a topic name: /,
      ],
      [subscriber, ['--no-clean'], /^error: --no-clean needs --id/],
    ])('%s %j is refused before anything is sent', async (script, args, line) => {
      expectOneLineError(await runScript(script, args, env()), line)
    })

    it(
      '-V 5 with --no-clean and no session expiry says, on stderr, that the session ends with ' +
        'the ' +
        'connection',
      async () => {
        const program = start('demos/ephemeral/subscriber.ts', ['-V', '5', '--id', 'alice5'], env())
        await program.waitForLine('subscribed to my_topic (QoS 1)')
        program.child.kill('SIGINT')
        const result = await program.finish()
        expect(result.stdout).toMatch(/, reason code 0x00 success, session present: no\n/)
        expect(result.stderr).toBe(
          'note: MQTT 5 keeps a session only for its Session Expiry Interval, and this one has ' +
            'none: ' +
            'it ends with the connection\n',
        )
      },
    )
  },
)
