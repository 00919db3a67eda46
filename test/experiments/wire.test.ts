// The wire experiment, played by the same scenario as `npm run demo:wire`, in check mode: the sizes
// of the packets are measured on the bytes the tap captured, each parsed again with mqtt-packet,
// the topic aliases of the MQTT 5 subscriber's session among them. Then the tap's, --keepalive's
// and --topic-aliases' bad input.
import mqttPacket, { type Packet } from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import type { Event } from '../../scenarios/stage/scenario.ts'
import { wire } from '../../scenarios/wire.ts'
import { normalise } from '../docs/doc-blocks.ts'
import { expectOneLineError, refusedPort, runScript } from '../helpers/processes.ts'
import { scenarioSuite } from './scenario-suite.ts'
import { joined } from '../helpers/regexp.ts'

interface Captured {
  /** The tap's connection: 1 for the MQTT 3.1.1 subscriber, 2 for the MQTT 5 one. */
  connection: number
  direction: string
  type: string
  /** The size the tap printed. */
  size: number
  bytes: Buffer
}

/** Every packet the tap printed, with the bytes read back from its hex. */
function captured(events: Event[]): Captured[] {
  return events.flatMap((e) => {
    const m =
      e.kind === 'line' && e.label === 'tap'
        ? e.text.match(
            /^(client (\d) → broker|broker → client (\d)) {2}([A-Z]+) +(\d+) bytes: ([0-9a-f ]+)$/,
          )
        : null
    return m
      ? [
          {
            connection: Number(m[2] ?? m[3]),
            direction: m[1],
            type: m[4],
            size: Number(m[5]),
            bytes: Buffer.from(m[6].replaceAll(' ', ''), 'hex'),
          },
        ]
      : []
  })
}

/** The one packet that mqtt-packet's parser finds in `bytes`, which must hold nothing else. */
function parseOne(bytes: Buffer, protocolVersion = 4): Packet {
  const found: Packet[] = []
  const parser = mqttPacket.parser({ protocolVersion })
  parser.on('packet', (packet) => found.push(packet))
  parser.on('error', (error) => {
    throw error
  })
  expect(parser.parse(bytes), 'bytes left over after the packet').toBe(0)
  expect(found).toHaveLength(1)
  return found[0]
}

/**
 * The tap's output with the packet identifier of SUBSCRIBE and SUBACK (the two bytes after their
 * fixed header) blanked: MQTT.js picks it at random, so it is the one thing that differs from the
 * docs.
 */
function withoutPacketIds(text: string): string {
  return withoutEarlyPings(normalise(text)).replace(
    joined(
      /^((?:client \d → broker|broker → client \d) {2}(?:SUBSCRIBE|SUBACK) +\d+ bytes: )/gm,
      /(\w\w \w\w) \w\w \w\w/,
    ),
    '$1$2 ·· ··',
  )
}

/**
 * The output of a step without its keepalive pings, unless pings are all it printed (step 4, where
 * the show waits for one): on a busy machine, starting the publisher of step 3 can take more than
 * the subscriber's 5 s keepalive, and it pings during that step, as a learner's subscriber pings
 * while they type.
 */
function withoutEarlyPings(text: string): string {
  const lines = text.split('\n')
  const ping = / {2}(PINGREQ|PINGRESP) +\d+ bytes: /
  return lines.every((l) => ping.test(l) || l === '')
    ? text
    : lines.filter((l) => !ping.test(l)).join('\n')
}

scenarioSuite(
  wire,
  'C2, S6: PINGREQ, PINGRESP and DISCONNECT are 2 bytes on the wire, the smallest of the ' +
    'session; a PUBLISH of "on" is larger',
  ['S6', 'C2'],
  {
    normalise: withoutPacketIds,
    verify: (events) => {
      // Pings before the pair step 4 waits for are a busy machine's (see withoutEarlyPings).
      const all = captured(events).filter((p) => p.connection === 1)
      const last = (type: string) => all.findLastIndex((p) => p.type === type)
      const packets = all.filter((p, i) => !p.type.startsWith('PING') || i === last(p.type))
      expect(packets.map((p) => p.type)).toEqual([
        'CONNECT',
        'CONNACK',
        'SUBSCRIBE',
        'SUBACK',
        'PUBLISH',
        'PINGREQ',
        'PINGRESP',
        'DISCONNECT',
      ])
      for (const packet of packets) {
        // The size the tap printed is the number of bytes it captured, and they hold exactly one
        // packet of that type.
        expect(packet.bytes.length, packet.type).toBe(packet.size)
        expect(parseOne(packet.bytes).cmd).toBe(packet.type.toLowerCase())
      }
      const sizes = Object.fromEntries(packets.map((p) => [p.type, p.bytes.length]))
      const smallest = Math.min(...Object.values(sizes))
      expect(smallest).toBe(2)
      expect(
        packets
          .filter((p) => p.bytes.length === smallest)
          .map((p) => `${p.type} ${p.bytes.toString('hex')}`),
      ).toEqual(['PINGREQ c000', 'PINGRESP d000', 'DISCONNECT e000'])
      // --keepalive reached the wire: the subscriber asked for 5 seconds, and pinged.
      expect(parseOne(packets[0].bytes)).toMatchObject({
        cmd: 'connect',
        keepalive: 5,
        clientId: 'wire-subscriber',
      })
      const publish = packets.find((p) => p.type === 'PUBLISH')!
      expect(parseOne(publish.bytes)).toMatchObject({
        cmd: 'publish',
        topic: 'my_topic',
        payload: Buffer.from('on'),
        qos: 0,
      })
      expect(publish.bytes.length).toBeGreaterThan(smallest)
      // The show's ticks quote the captured sizes, not constants.
      expect(events).toContainEqual({
        kind: 'ok',
        claim: 'S6',
        text:
          `the PUBLISH of "on" to my_topic is ${publish.bytes.length} bytes: the fixed ` +
          `header, the topic with its length, the payload`,
      })
      // Which direction each packet went, as the protocol has it.
      expect(packets.map((p) => (p.direction.startsWith('client') ? '→' : '←')).join('')).toBe(
        '→←→←←→←→',
      )
      aliases(events)
    },
    onMosquitto: [{ prefixed: true, claims: ['S6', 'C2'], verify: noAliases }],
  },
)

/** The MQTT 5 subscriber's two PUBLISH packets, from the bytes the tap captured. */
function publishes(events: Event[]): { bytes: Buffer; packet: Packet }[] {
  const sent = captured(events).filter((p) => p.connection === 2 && p.type === 'PUBLISH')
  expect(sent).toHaveLength(2)
  return sent.map((p) => {
    expect(p.bytes.length).toBe(p.size)
    return { bytes: p.bytes, packet: parseOne(p.bytes, 5) }
  })
}

/**
 * The bundled broker names the topic once with Topic Alias 1, then sends the alias alone, and the
 * tick quotes the bytes that saves as the tap captured them.
 */
function aliases(events: Event[]): void {
  const [first, second] = publishes(events)
  expect(first.packet).toMatchObject({ topic: 'my_topic', properties: { topicAlias: 1 } })
  expect(second.packet).toMatchObject({ topic: '', properties: { topicAlias: 1 } })
  const saved = first.bytes.length - second.bytes.length
  expect(saved).toBe(Buffer.byteLength('my_topic'))
  expect(events).toContainEqual({
    kind: 'ok',
    text:
      `the second, ${second.bytes.length} bytes, carries the alias, not the topic: ` +
      `${saved} bytes fewer`,
  })
}

/**
 * Mosquitto 2.0.11 sends every topic in full, two PUBLISH packets of one size (the prefixed topic
 * makes them too long for the tap to print whole), and the step says so instead of failing.
 */
function noAliases(events: Event[]): void {
  const sizes = events.flatMap((e) => {
    const size =
      e.kind === 'line' && e.label === 'tap'
        ? /^broker → client 2 {2}PUBLISH +(\d+) bytes: /.exec(e.text)?.[1]
        : undefined
    return size === undefined ? [] : [Number(size)]
  })
  expect(sizes).toEqual([sizes[0], sizes[0]])
  expect(events).toContainEqual({
    kind: 'ok',
    text: `this broker sent both in full, ${sizes[0]} bytes each: no alias`,
  })
  expect(events).toContainEqual(
    expect.objectContaining({ kind: 'say', text: expect.stringMatching(/^not applicable here: /) }),
  )
}

describe('bad input', () => {
  const tap = 'demos/wire/tap.ts'
  it.each([
    [
      ['--listen-port', 'abc'],
      /^error: --listen-port must be a port number from 0 to 65535, not "abc"$/,
    ],
    [
      ['--to', 'ws://127.0.0.1:8080'],
      joined(
        /^error: cannot tap ws:\/\/127\.0\.0\.1:8080: the tap passes TCP, so --to must be /,
        /an mqtt:\/\/ or mqtts:\/\/ URL/,
      ),
    ],
    [
      ['--to', 'not a url'],
      /^error: "not a url" is not a URL; pass --to like mqtt:\/\/127\.0\.0\.1:1883$/,
    ],
    [['--bogus'], /^error: Unknown option '--bogus'; see --help$/],
  ])('the tap refuses %j with one line', async (args, line) => {
    expectOneLineError(await runScript(tap, args), line)
  })

  it('the tap refuses to start without a broker behind it', async () => {
    const url = `mqtt://127.0.0.1:${await refusedPort()}`
    expectOneLineError(
      await runScript(tap, ['--listen-port', '0', '--to', url]),
      new RegExp(
        `^error: cannot reach the broker at ${url} \\(connection refused\\); start one with npm ` +
          `run broker, or pass --to$`,
      ),
    )
  })

  it.each(['-1', 'abc', '70000'])(
    '--topic-aliases %s is refused before anything is sent',
    async (value) => {
      expectOneLineError(
        await runScript('demos/mqtt5/subscriber.ts', [`--topic-aliases=${value}`]),
        new RegExp(`^error: --topic-aliases must be a number from 0 to 65535, not "${value}"$`),
      )
    },
  )

  it.each(['-1', 'abc', '70000', '1.5'])(
    '--keepalive %s is refused before anything is sent',
    async (value) => {
      expectOneLineError(
        await runScript('demos/basic-pubsub/subscriber.ts', [`--keepalive=${value}`]),
        new RegExp(
          '^error: --keepalive must be a number of seconds from 0 to 65535, ' +
            `not "${value.replace('.', '\\.')}"$`,
        ),
      )
    },
  )
})
