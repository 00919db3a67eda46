// The demo programs as a reader meets them: each experiment's pair is the basic pair with the lines
// the article changes, and no more; each program is short enough for a slide, and makes its MQTT
// calls itself (lib/ parses flags and words failures, never connects, subscribes or publishes for
// it).
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from '../../lib/build-cache.ts'
import { lineDiff } from '../docs/doc-blocks.ts'

const read = (file: string) => readFileSync(join(ROOT, file), 'utf8')
/** The code of a program: its lines without comments, docstrings and blank lines. */
const code = (file: string) =>
  read(file)
    .split('\n')
    .filter((l) => l.trim() !== '' && !/^\s*(\/\/|#|""")/.test(l))
    .join('\n')
/** The code lines that differ from `from` to `to`, as lineDiff shows them. */
const changes = (from: string, to: string) =>
  lineDiff(code(from), code(to))
    .split('\n')
    .filter((l) => l !== '')

describe('each experiment changes the basic programs by the lines the article changes', () => {
  it.each([
    ['ephemeral/publisher.ts', ['-      qos: flags.qos ?? 0,', '+      qos: flags.qos ?? 1,']],
    [
      'ephemeral/subscriber.ts',
      [
        '-const client = mqtt.connect(flags.url, flags.connection)',
        '+const client = mqtt.connect(flags.url, {',
        '+  ...flags.connection,',
        "+  clientId: flags.id ?? 'alice',",
        '+  clean: flags.clean ?? false,',
        '+})',
        "-  client.subscribe(flags.topic ?? 'my_topic', { qos: flags.qos ?? 0 })",
        "+  client.subscribe(flags.topic ?? 'my_topic', { qos: flags.qos ?? 1 })",
      ],
    ],
    [
      'retained/publisher.ts',
      ['-      retain: flags.retain ?? false,', '+      retain: flags.retain ?? true,'],
    ],
    ['retained/subscriber.ts', []],
    [
      'wildcards/publisher.ts',
      [
        "-    await client.publishAsync(flags.topic ?? 'my_topic', message, {",
        "+    await client.publishAsync(flags.topic ?? 'home/living_room/light', message, {",
      ],
    ],
    [
      'wildcards/subscriber.ts',
      [
        "-  client.subscribe(flags.topic ?? 'my_topic', { qos: flags.qos ?? 0 })",
        "+  client.subscribe(flags.topic ?? 'home/living_room/+', { qos: flags.qos ?? 0 })",
      ],
    ],
    [
      'security/publisher.ts',
      [
        '-const client = mqtt.connect(flags.url, flags.connection)',
        '+const client = mqtt.connect(flags.url, {',
        '+  ...flags.connection,',
        "+  username: flags.username ?? 'alice',",
        '+  password: flags.password,',
        '+  ca: flags.ca,',
        '+  cert: flags.cert,',
        '+  key: flags.key,',
        '+})',
        "-    await client.publishAsync(flags.topic ?? 'my_topic', message, {",
        '-      qos: flags.qos ?? 0,',
        "+    await client.publishAsync(flags.topic ?? 'users/alice/notes', message, {",
        '+      qos: flags.qos ?? 1,',
      ],
    ],
    [
      'security/subscriber.ts',
      [
        '-const client = mqtt.connect(flags.url, flags.connection)',
        '+const client = mqtt.connect(flags.url, {',
        '+  ...flags.connection,',
        "+  username: flags.username ?? 'alice',",
        '+  password: flags.password,',
        '+  ca: flags.ca,',
        '+  cert: flags.cert,',
        '+  key: flags.key,',
        '+})',
        "-  client.subscribe(flags.topic ?? 'my_topic', { qos: flags.qos ?? 0 })",
        "+  client.subscribe(flags.topic ?? 'users/alice/#', { qos: flags.qos ?? 0 })",
      ],
    ],
    [
      'security/python/publisher.py',
      [
        '-        publish = dict(topic=flags.get("topic", "my_topic"), payload=message,',
        '-                       qos=flags.get("qos", 0), retain=flags.get("retain", False))',
        '+        publish = dict(topic=flags.get("topic", "users/alice/notes"), payload=message,',
        '+                       qos=flags.get("qos", 1), retain=flags.get("retain", False))',
        '+client.username_pw_set(flags.get("username", "alice"), flags.password)',
        '+if flags.tls:',
        '+    client.tls_set(ca_certs=flags.cafile, certfile=flags.cert, keyfile=flags.key)',
      ],
    ],
    [
      'security/python/subscriber.py',
      [
        '-    subscribe = dict(topic=flags.get("topic", "my_topic"), qos=flags.get("qos", 0))',
        '+    subscribe = dict(topic=flags.get("topic", "users/alice/#"), qos=flags.get("qos", 0))',
        '+client.username_pw_set(flags.get("username", "alice"), flags.password)',
        '+if flags.tls:',
        '+    client.tls_set(ca_certs=flags.cafile, certfile=flags.cert, keyfile=flags.key)',
      ],
    ],
    [
      'ephemeral/python/publisher.py',
      [
        '-                       qos=flags.get("qos", 0), retain=flags.get("retain", False))',
        '+                       qos=flags.get("qos", 1), retain=flags.get("retain", False))',
      ],
    ],
    [
      'ephemeral/python/subscriber.py',
      [
        '-    subscribe = dict(topic=flags.get("topic", "my_topic"), qos=flags.get("qos", 0))',
        '+    subscribe = dict(topic=flags.get("topic", "my_topic"), qos=flags.get("qos", 1))',
        `-${' '.repeat(21)}client_id=flags.get("id", ""), clean_session=flags.get("clean", True))`,
        `+${' '.repeat(21)}client_id=flags.get("id", "alice"), ` +
          'clean_session=flags.get("clean", False))',
      ],
    ],
    [
      'retained/python/publisher.py',
      [
        '-                       qos=flags.get("qos", 0), retain=flags.get("retain", False))',
        '+                       qos=flags.get("qos", 0), retain=flags.get("retain", True))',
      ],
    ],
    ['retained/python/subscriber.py', []],
    [
      'wildcards/python/publisher.py',
      [
        '-        publish = dict(topic=flags.get("topic", "my_topic"), payload=message,',
        '+        publish = dict(topic=flags.get("topic", "home/living_room/light"), ' +
          'payload=message,',
      ],
    ],
    [
      'wildcards/python/subscriber.py',
      [
        '-    subscribe = dict(topic=flags.get("topic", "my_topic"), qos=flags.get("qos", 0))',
        '+    subscribe = dict(topic=flags.get("topic", "home/living_room/+"), ' +
          'qos=flags.get("qos", 0))',
      ],
    ],
  ])('demos/%s', (program, lines) => {
    const basic = `demos/basic-pubsub/${program.slice(program.indexOf('/') + 1)}`
    expect(changes(basic, `demos/${program}`)).toEqual(lines)
  })

  it(
    'demos/discovery/subscriber.ts, the listener: the basic subscriber that speaks MQTT 5 with ' +
      'a will and a birth message, follows what each config names, rides out a restart, and ' +
      'names the broker of a list it is on',
    () => {
      expect(changes('demos/basic-pubsub/subscriber.ts', 'demos/discovery/subscriber.ts')).toEqual([
        "-import { connackResult, messageProperties } from '../../lib/mqtt5-print.ts'",
        "-import { subscriberFlags } from '../../lib/demo-flags.ts'",
        "-import { reportProblems } from '../../lib/problems.ts'",
        '-const flags = subscriberFlags()',
        '-const client = mqtt.connect(flags.url, flags.connection)',
        "+import { listenerFlags } from '../../lib/discovery/flags.ts'",
        "+import { statusTopic } from '../../lib/discovery/format.ts'",
        "+import { Discoveries } from '../../lib/discovery/home-assistant.ts'",
        "+import { brokerUrl, reportProblems } from '../../lib/problems.ts'",
        '+const flags = listenerFlags()',
        '+const status = statusTopic(flags.prefix)',
        '+const qos = flags.qos ?? 0',
        '+let discovered: Discoveries',
        '+const client = mqtt.connect(flags.url, {',
        '+  ...flags.connection,',
        '+  protocolVersion: 5,',
        "+  will: { topic: status, payload: 'offline', qos: 0, retain: false },",
        '+  reconnectPeriod: 1000,',
        '+})',
        '+let queue = Promise.resolve()',
        '-  console.log(`connected to ${flags.url}, ${connackResult(connack)}${kept}`)',
        "-  client.subscribe(flags.topic ?? 'my_topic', { qos: flags.qos ?? 0 })",
        '-})',
        "-let filter = ''",
        "-client.on('packetsend', (packet) => {",
        "-  if (packet.cmd === 'subscribe') filter = packet.subscriptions[0].topic",
        '-})',
        "-client.on('packetreceive', (packet) => {",
        "-  if (packet.cmd === 'suback') " +
          'console.log(`subscribed to ${filter} (QoS ${packet.granted[0]})`)',
        '+  const broker = brokerUrl(client, flags.url)',
        '+  console.log(`connected to ${broker}, result code ${connack.reasonCode}${kept}`)',
        '+  queue = queue.then(async () => {',
        '+    const [granted] = ' +
          "await client.subscribeAsync(flags.topic ?? 'homeassistant/#', { qos })",
        '+    console.log(`subscribed to ${granted.topic} (QoS ${granted.qos})`)',
        '+    discovered ??= new Discoveries(flags.prefix, granted.topic)',
        "+    client.publish(status, 'online', { qos: 0, retain: false })",
        '+    console.log(`published "online" to ${status}, the birth message`)',
        '+  })',
        "-  const text = payload.length > 0 ? payload.toString() : '(empty)'",
        "-  console.log(`${topic} ${text}${packet.retain ? ' (retained)' : " +
          "''}${messageProperties(packet)}`)",
        '+  queue = queue.then(async () => {',
        '+    const news = discovered.read(topic, payload.toString(), packet.retain)',
        '+    for (const unused of news.unfollow) await client.unsubscribeAsync(unused)',
        '+    for (const line of news.lines) console.log(line)',
        '+    for (const next of news.follow) await client.subscribeAsync(next, { qos })',
        '+  })',
        "-process.once('SIGINT', () => client.end())",
        "+process.once('SIGINT', () => client.end(false, { reasonCode: 4 }))",
      ])
    },
  )

  it(
    'demos/discovery/publisher.ts, the device: a program of its own, that keeps the basic ' +
      "publisher's connect and its problems",
    () => {
      const basic = code('demos/basic-pubsub/publisher.ts').split('\n')
      const kept = code('demos/discovery/publisher.ts')
        .split('\n')
        .filter((line) => basic.includes(line))
      expect(kept).toEqual([
        "import mqtt from 'mqtt'",
        'reportProblems(client, flags.url)',
        '  }',
        "client.on('connect', async (connack) => {",
        '})',
        '    })',
        '})',
        '  await client.endAsync()',
        '})',
      ])
    },
  )
})

describe('every demo program is short, and makes its MQTT calls itself', () => {
  const experiments = [
    'basic-pubsub',
    'ephemeral',
    'retained',
    'wildcards',
    'discovery',
    'security',
  ]
  const programs = [
    ...experiments.flatMap((e) => [
      ...readdirSync(join(ROOT, 'demos', e))
        .filter((f) => f.endsWith('.ts'))
        .map((f) => `demos/${e}/${f}`),
      ...readdirSync(join(ROOT, 'demos', e, 'python'))
        .filter((f) => f.endsWith('.py'))
        .map((f) => `demos/${e}/python/${f}`),
    ]),
    'demos/mqtt5/publisher.ts',
    'demos/mqtt5/subscriber.ts',
  ]

  it('each of these experiments has a publisher and a subscriber, in TypeScript and Python', () => {
    for (const e of experiments) {
      for (const file of [
        'publisher.ts',
        'subscriber.ts',
        'python/publisher.py',
        'python/subscriber.py',
      ]) {
        expect(programs).toContain(`demos/${e}/${file}`)
      }
    }
  })

  it.each(programs)(
    '%s fits a slide: 100 columns, and says what it is for in its first line',
    (program) => {
      const lines = read(program).trimEnd().split('\n')
      expect(
        lines.filter((l) => l.length > 100),
        'lines over 100 columns',
      ).toEqual([])
      expect(lines[0]).toMatch(program.endsWith('.py') ? /^""".+/ : /^\/\/ .+/)
      // The discovery pair does more (a will, announcements, commands, Home Assistant's birth
      // message; following entities), and paho needs a callback for each; so does the MQTT 5 pair
      // (a request and its reply, a message of its own). The others print what MQTT 5 adds with -V
      // 5 too, write their change in the call, one option a line, and name the filter of a SUBACK;
      // the security pair writes five options (who it is, whom it trusts), paho two calls for them.
      const discovery = program.startsWith('demos/discovery/')
      const security = program.startsWith('demos/security/')
      const most =
        discovery && program.endsWith('.py')
          ? 100
          : security && program.endsWith('.py')
            ? 55
            : discovery || security || program.startsWith('demos/mqtt5/') || program.endsWith('.py')
              ? 50
              : 45
      expect(lines.length).toBeLessThanOrEqual(most)
    },
  )

  it.each(programs)(
    '%s connects, and subscribes or publishes, with calls of its own',
    (program) => {
      const text = read(program)
      if (program.endsWith('.ts')) {
        expect(text).toMatch(/^import mqtt from 'mqtt'$/m)
        expect(text).toMatch(/mqtt\.connect\(flags\.url, /)
        expect(text).toMatch(/client\.(publishAsync|subscribe|subscribeAsync)\(/)
      } else {
        expect(text).toMatch(/^import paho\.mqtt\.client as mqtt\b/m)
        expect(text).toMatch(/mqtt\.Client\(\*CALLBACK_API, /)
        expect(text).toMatch(/client\.connect\(flags\.host, flags\.port/)
        expect(text).toMatch(/client\.(publish|subscribe)\(/)
      }
    },
  )
})
