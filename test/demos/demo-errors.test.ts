// Bad input to the demo programs, run as real processes: one line on stderr that says what is wrong
// and what to do, exit code 1, never a stack trace and never a hang.
import { createServer, type Server } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type RunningBroker } from '../../lib/broker/broker.ts'
import { expectOneLineError, refusedPort, runScript, start } from '../helpers/processes.ts'
import { joined } from '../helpers/regexp.ts'

const publisher = 'demos/basic-pubsub/publisher.ts'
const subscriber = 'demos/basic-pubsub/subscriber.ts'

let broker: RunningBroker
beforeAll(async () => {
  broker = await startBroker({ port: 0 })
})
afterAll(() => broker.close())

describe('an unreachable broker', () => {
  it.each([publisher, subscriber])(
    '%s names the URL and suggests npm run broker',
    async (script) => {
      const url = `mqtt://127.0.0.1:${await refusedPort()}`
      expectOneLineError(
        await runScript(script, ['--url', url]),
        new RegExp(`cannot reach the broker at ${url}.*npm run broker`),
      )
    },
  )

  it('MQTT_URL is the default URL, and named in the error', async () => {
    const url = `mqtt://127.0.0.1:${await refusedPort()}`
    expectOneLineError(
      await runScript(subscriber, [], { MQTT_URL: url }),
      new RegExp(`cannot reach the broker at ${url}`),
    )
  })

  it('a server that does not speak MQTT is named as such', async () => {
    const server: Server = createServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`
    try {
      expectOneLineError(
        await runScript(publisher, ['--url', url]),
        /is an MQTT broker listening there\? check --url/,
      )
    } finally {
      server.close()
    }
  })
})

describe('a connection that ends', () => {
  it(
    'a subscriber whose client id another client takes says the session was taken over, not ' +
      'that the broker is gone',
    async () => {
      const first = start(subscriber, ['--id', 'twin'], { MQTT_URL: broker.url })
      await first.waitForLine('subscribed to my_topic')
      const second = start(subscriber, ['--id', 'twin'], { MQTT_URL: broker.url })
      try {
        await second.waitForLine('subscribed to my_topic')
        expectOneLineError(
          await first.finish(),
          new RegExp(
            `^error: the broker at ${broker.url} closed this connection: another client ` +
              `connected ` +
              `with the same client id, twin, and took its session over; .*give each a different ` +
              `--id$`,
          ),
        )
      } finally {
        second.child.kill('SIGINT')
        await second.finish()
      }
    },
  )

  it('a subscriber whose broker stops says so, and how to start one', async () => {
    const own = await startBroker({ port: 0 })
    const program = start(subscriber, [], { MQTT_URL: own.url })
    await program.waitForLine('subscribed to my_topic')
    await own.close()
    expectOneLineError(
      await program.finish(),
      new RegExp(
        `^error: lost the connection to the broker at ${own.url}; is it still running\\? ` +
          `\\(start one with npm run broker\\)$`,
      ),
    )
  })

  it(
    'ws:// to a port that speaks plain MQTT says it is not a WebSocket port, and which URL ' +
      'would do',
    async () => {
      const url = broker.url.replace('mqtt:', 'ws:')
      expectOneLineError(
        await runScript(subscriber, ['--url', url]),
        new RegExp(
          `^error: ${url} is not a WebSocket port: .*; for a plain MQTT port use ${broker.url} `,
        ),
      )
    },
  )
})

describe('a device given two brokers', () => {
  it('passes over the first when nobody answers there, and connects to the second', async () => {
    const down = `mqtt://127.0.0.1:${await refusedPort()}`
    const device = start('demos/discovery/publisher.ts', ['--url', `${down},${broker.url}`])
    try {
      expect(await device.waitForLine('trying the next one')).toBe(
        `cannot reach the broker at ${down} (connection refused); trying the next one`,
      )
      expect(await device.waitForLine('connected to')).toBe(
        `connected to ${broker.url}, result code 0`,
      )
    } finally {
      device.child.kill('SIGINT')
      await device.finish()
    }
  })
})

describe('bad flags', () => {
  it.each([
    [
      publisher,
      ['--topic', 'home/+/light'],
      /cannot publish to "home\/\+\/light": .*must not contain the wildcards/,
    ],
    [publisher, ['--topic', 'home/#'], /cannot publish to "home\/#"/],
    [publisher, ['--topic', ''], /cannot publish to "": .*at least one character/],
    [
      subscriber,
      ['--topic', 'home/#/x'],
      /cannot subscribe to "home\/#\/x": # must fill a whole level and be the last/,
    ],
    [
      subscriber,
      ['--topic', 'home/liv+'],
      /cannot subscribe to "home\/liv\+": \+ must fill a whole level/,
    ],
    [subscriber, ['--topic', ''], /cannot subscribe to "": .*at least one character/],
    [publisher, ['--qos', '3'], /--qos must be 0, 1 or 2, not "3"/],
    [subscriber, ['--qos', 'one'], /--qos must be 0, 1 or 2, not "one"/],
    [publisher, ['--bogus'], /Unknown option '--bogus'; see --help/],
    [subscriber, ['extra'], /Unexpected argument 'extra'.*; see --help/],
    [subscriber, ['--no-clean'], /--no-clean needs --id/],
    [subscriber, ['--url', 'localhost:1883'], /protocol must be mqtt, mqtts, ws or wss/],
    [publisher, ['--url', 'not a url'], /is not a URL; pass --url like mqtt:\/\/127.0.0.1:1883/],
    [
      publisher,
      ['--url', 'mqtt://127.0.0.1:1883,mqtt://127.0.0.1:1884'],
      joined(
        /lists several brokers, which only a program that reconnects \(a device, a listener\) /,
        /tries in turn; give this one a single URL$/,
      ),
    ],
    [
      'demos/discovery/publisher.ts',
      ['--url', 'mqtt://127.0.0.1:1883,ws://127.0.0.1:9001'],
      joined(
        /cannot connect to ws:\/\/127.0.0.1:9001: a list of brokers in --url takes mqtt:\/\/ and /,
        /mqtts:\/\/ URLs only/,
      ),
    ],
    [
      publisher,
      ['--cafile', 'ca.crt'],
      /--cafile is for a TLS connection, and mqtt:\/\/127.0.0.1:\d+ is plain; use mqtts:\/\//,
    ],
    [
      subscriber,
      ['--url', 'mqtts://localhost:8883', '--cert', 'alice.crt'],
      /--cert and --key go together/,
    ],
    [
      publisher,
      ['--url', 'mqtts://localhost:8883', '--cafile', 'no-such-ca.crt'],
      /cannot read --cafile no-such-ca.crt \(no such file\); check the path$/,
    ],
    [publisher, ['--password', 'secret'], /a password needs a user name: add --username/],
  ])('%s %j is refused before anything is sent', async (script, args, line) => {
    // The broker is up: these must fail on the input, not on the connection.
    expectOneLineError(await runScript(script, args, { MQTT_URL: broker.url }), line)
  })

  it(
    'a topic that ends with / is valid, and a note on stderr says what the slash ' + 'means',
    async () => {
      const result = await runScript(publisher, ['--topic', 'home/'], { MQTT_URL: broker.url })
      expect(result.code).toBe(0)
      expect(result.stdout).toContain('published "on" to home/\n')
      expect(result.stderr).toBe(
        'note: home/ ends with /, so it has an empty level there: it is not the same topic as ' +
          'home\n',
      )
    },
  )

  it(
    'a filter that starts with / is valid, and a note on stderr says what the slash ' + 'means',
    async () => {
      const program = start(subscriber, ['--topic', '/home/+'], { MQTT_URL: broker.url })
      await program.waitForLine('subscribed to /home/+ (QoS 0)')
      program.child.kill('SIGINT')
      const result = await program.finish()
      expect(result.stderr).toBe(
        'note: /home/+ starts with /, so it has an empty level there: it is not the same topic ' +
          'as ' +
          'home/+\n',
      )
    },
  )

  it('--topic without its value, as after an unquoted # in a shell, says to quote it', async () => {
    expectOneLineError(
      await runScript(subscriber, ['--topic']),
      joined(
        /^error: Option '--topic <value>' argument missing; to pass # or a filter that starts /,
        /with it, quote it: '#'; see --help$/,
      ),
    )
  })

  it.each([publisher, subscriber])('%s --help explains every flag and exits 0', async (script) => {
    const result = await runScript(script, ['--help'])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(new RegExp(`^usage: npx tsx ${script} \\[options\\]`))
    for (const flag of ['--url', '--topic', '--qos', '--id', '--no-clean', '--help'])
      expect(result.stdout).toContain(flag)
  })
})
