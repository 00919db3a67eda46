// The transports experiment, played by the same scenario as `npm run demo:transports`, in check
// mode, on a bundled broker that serves TCP, WebSocket and a Unix socket; then on one that serves
// TCP only (as an MQTT_URL broker may: Mosquitto's round); then the bad input of --unix and of
// mqtt+unix:// URLs.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker } from '../../lib/broker/broker.ts'
import { check } from '../../scenarios/stage/stage.ts'
import { claimsMet, type Event } from '../../scenarios/stage/scenario.ts'
import { transports } from '../../scenarios/transports.ts'
import { printed } from '../docs/doc-blocks.ts'
import { mosquittoPath } from '../helpers/mosquitto.ts'
import { expectOneLineError, runScript, start } from '../helpers/processes.ts'
import { scenarioSuite } from './scenario-suite.ts'
import { joined } from '../helpers/regexp.ts'

/** The payloads `label` printed for my_topic, under a topic prefix or not. */
const messages = (events: Event[], label: string) =>
  events
    .flatMap((e) =>
      e.kind === 'line' && e.label === label
        ? [e.text.match(/^(?:\S+\/)?my_topic (.+)$/)?.[1]]
        : [],
    )
    .filter((m) => m !== undefined)

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mqtt-by-example-test-'))
})
afterAll(() => rm(dir, { recursive: true, force: true }))

/**
 * A play on a broker that serves TCP only (an MQTT_URL broker, say): the other transports are
 * marked not applicable.
 */
function tcpOnly(events: Event[]): void {
  const notApplicable = events.filter(
    (e) => e.kind === 'say' && e.text.startsWith('not applicable here: '),
  )
  expect(notApplicable).toHaveLength(3)
  expect(messages(events, 'tcp-subscriber')).toEqual(['one', 'two', 'three'])
}

scenarioSuite(
  transports,
  'C3, S7: the same programs over TCP, WebSocket and a Unix socket reach each other, in order; ' +
    'UDP is refused',
  ['C3', 'S7'],
  {
    verify: (events) => {
      // The broker's ready line names its three listeners; each subscriber connected to its own.
      const urls = printed(events, 'broker')
        .match(
          joined(
            /^broker ready on (\S+) and (\S+) and (mqtt\+unix:\/\/\S+\/broker\.sock); Ctrl-C to /m,
            /stop$/,
          ),
        )!
        .slice(1)
      expect(urls.map((url) => new URL(url).protocol)).toEqual(['mqtt:', 'ws:', 'mqtt+unix:'])
      for (const [label, url] of [
        ['tcp-subscriber', urls[0]],
        ['ws-subscriber', urls[1]],
        ['unix-subscriber', urls[2]],
      ]) {
        expect(printed(events, label).split('\n')[0]).toBe(`connected to ${url}, result code 0`)
        expect(messages(events, label)).toEqual([
          'over WebSocket',
          'over a Unix socket',
          'one',
          'two',
          'three',
        ])
      }
    },
    // Mosquitto here serves TCP only, as an MQTT_URL broker may: C3 needs more than one transport.
    onMosquitto: [{ prefixed: true, claims: ['S7'], verify: tcpOnly }],
  },
)

// Where Mosquitto plays the TCP-only round above, this would prove the same again.
it.skipIf(Boolean(mosquittoPath))(
  'C3: against a broker that serves TCP only (an MQTT_URL broker, say), the other transports are ' +
    'marked not applicable',
  async () => {
    const broker = await startBroker({ port: 0 })
    try {
      const events = await check(transports, { url: broker.url })
      expect(claimsMet(events)).toEqual(['S7'])
      tcpOnly(events)
    } finally {
      await broker.close()
    }
  },
)

describe('--unix and mqtt+unix:// bad input', () => {
  const brokerScript = 'lib/broker/main.ts'

  it(
    'a socket file left by a killed broker is replaced; one a running broker answers on is ' +
      'refused',
    async () => {
      const path = join(dir, 'stale.sock')
      const killed = start(brokerScript, ['--port', '0', '--unix', path, '--quiet'])
      await killed.waitForLine('broker ready on')
      killed.child.kill('SIGKILL')
      await killed.finish()
      expect(existsSync(path), 'SIGKILL leaves the socket file behind').toBe(true)

      const running = start(brokerScript, ['--port', '0', '--unix', path, '--quiet'])
      try {
        expect(await running.waitForLine('broker ready on')).toMatch(
          new RegExp(`and mqtt\\+unix://${path}; Ctrl-C to stop$`),
        )
        expectOneLineError(
          await runScript(brokerScript, ['--port', '0', '--unix', path]),
          new RegExp(
            `^error: --unix ${path} is in use by another running broker; stop it, or use another ` +
              `path$`,
          ),
        )
        // The refused broker left the running one's socket alone.
        const client = await mqtt.connectAsync(`mqtt+unix://${path}`, { reconnectPeriod: 0 })
        await client.endAsync()
      } finally {
        running.child.kill('SIGTERM')
        await running.finish()
      }
      expect(existsSync(path), 'a broker stopped cleanly removes its socket file').toBe(false)
    },
  )

  it.each([
    [
      'a missing directory',
      () => join(dir, 'nowhere', 'broker.sock'),
      /^error: --unix \S+ the directory \S+ does not exist; create it or use another path$/,
    ],
    [
      'a path too long for a socket',
      () => join(dir, 'x'.repeat(120)),
      joined(
        /^error: --unix \S+ is too long for a socket path \(\d+ bytes, at most 100\); use a /,
        /shorter one such as \/tmp\/mqtt\.sock$/,
      ),
    ],
    [
      'a file that is not a socket',
      () => join(dir, 'plain-file'),
      /^error: --unix \S+ exists and is not a socket; give a path to a new file$/,
    ],
  ])('the broker refuses %s with one line', async (_what, path, line) => {
    await writeFile(join(dir, 'plain-file'), 'not a socket')
    expectOneLineError(await runScript(brokerScript, ['--port', '0', '--unix', path()]), line)
  })

  it('a demo pointed at a Unix socket where no broker listens says so in one line', async () => {
    const url = `mqtt+unix://${join(dir, 'nobody-here.sock')}`
    expectOneLineError(
      await runScript('demos/basic-pubsub/subscriber.ts', ['--url', url]),
      new RegExp(
        `^error: no broker socket at ${url.replaceAll('+', '\\+')}; ` +
          'start one with npm run broker -- --unix PATH, or check --url$',
      ),
    )
  })
})
