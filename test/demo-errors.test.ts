// Bad input to the demo programs, run as real processes: one line on stderr that says what is wrong
// and what to do, exit code 1, never a stack trace and never a hang.
import { createServer, type Server } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type RunningBroker } from '../lib/broker.ts'
import { expectOneLineError, freePort, runScript, start } from './processes.ts'

const publisher = 'demos/basic-pubsub/publisher.ts'
const subscriber = 'demos/basic-pubsub/subscriber.ts'

let broker: RunningBroker
beforeAll(async () => {
  broker = await startBroker({ port: 0 })
})
afterAll(() => broker.close())

describe('an unreachable broker', () => {
  it.each([publisher, subscriber])('%s names the URL and suggests npm run broker', async (script) => {
    const url = `mqtt://127.0.0.1:${await freePort()}`
    expectOneLineError(await runScript(script, ['--url', url]), new RegExp(`cannot reach the broker at ${url}.*npm run broker`))
  })

  it('MQTT_URL is the default URL, and named in the error', async () => {
    const url = `mqtt://127.0.0.1:${await freePort()}`
    expectOneLineError(await runScript(subscriber, [], { MQTT_URL: url }), new RegExp(`cannot reach the broker at ${url}`))
  })

  it('a server that does not speak MQTT is named as such', async () => {
    const server: Server = createServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`
    try {
      expectOneLineError(await runScript(publisher, ['--url', url]), /is an MQTT broker listening there\? check --url/)
    } finally {
      server.close()
    }
  })
})

describe('a device given two brokers', () => {
  it('passes over the first when nobody answers there, and connects to the second', async () => {
    const down = `mqtt://127.0.0.1:${await freePort()}`
    const device = start('demos/discovery/device.ts', ['--url', `${down},${broker.url}`])
    try {
      expect(await device.waitForLine('trying the next one')).toBe(`cannot reach the broker at ${down} (connection refused); trying the next one`)
      expect(await device.waitForLine('connected to')).toBe(`connected to ${broker.url}, result code 0`)
    } finally {
      device.child.kill('SIGINT')
      await device.finish()
    }
  })
})

describe('bad flags', () => {
  it.each([
    [publisher, ['--topic', 'home/+/light'], /cannot publish to "home\/\+\/light": .*must not contain the wildcards/],
    [publisher, ['--topic', 'home/#'], /cannot publish to "home\/#"/],
    [publisher, ['--topic', ''], /cannot publish to "": .*at least one character/],
    [subscriber, ['--topic', 'home/#/x'], /cannot subscribe to "home\/#\/x": # must fill a whole level and be the last/],
    [subscriber, ['--topic', 'home/liv+'], /cannot subscribe to "home\/liv\+": \+ must fill a whole level/],
    [subscriber, ['--topic', ''], /cannot subscribe to "": .*at least one character/],
    [publisher, ['--qos', '3'], /--qos must be 0, 1 or 2, not "3"/],
    [subscriber, ['--qos', 'one'], /--qos must be 0, 1 or 2, not "one"/],
    [publisher, ['--bogus'], /Unknown option '--bogus'; see --help/],
    [subscriber, ['extra'], /Unexpected argument 'extra'.*; see --help/],
    [subscriber, ['--no-clean'], /--no-clean needs --id/],
    [subscriber, ['--url', 'localhost:1883'], /protocol must be mqtt, mqtts, ws or wss/],
    [publisher, ['--url', 'not a url'], /is not a URL; pass --url like mqtt:\/\/127.0.0.1:1883/],
    [publisher, ['--url', 'mqtt://127.0.0.1:1883,mqtt://127.0.0.1:1884'], /lists several brokers, which only a program that reconnects \(a device, a listener\) tries in turn; give this one a single URL$/],
    ['demos/discovery/device.ts', ['--url', 'mqtt://127.0.0.1:1883,ws://127.0.0.1:9001'], /cannot connect to ws:\/\/127.0.0.1:9001: a list of brokers in --url takes mqtt:\/\/ and mqtts:\/\/ URLs only/],
  ])('%s %j is refused before anything is sent', async (script, args, line) => {
    // The broker is up: these must fail on the input, not on the connection.
    expectOneLineError(await runScript(script, args, { MQTT_URL: broker.url }), line)
  })

  it.each([publisher, subscriber])('%s --help explains every flag and exits 0', async (script) => {
    const result = await runScript(script, ['--help'])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(new RegExp(`^usage: npx tsx ${script} \\[options\\]`))
    for (const flag of ['--url', '--topic', '--qos', '--id', '--no-clean', '--help']) expect(result.stdout).toContain(flag)
  })
})
