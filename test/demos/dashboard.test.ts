// npm run dashboard in a real browser: Debian's Chromium, driven by playwright-core, watches
// devices (real demos/discovery/publisher.ts processes, in a device config or one config per
// entity) appear, obey the switch with the payloads of their config, drop off by their Last Will
// and disappear; a bad config costs a warning, not the page; the page reconnects by itself after
// the broker restarts. Without /usr/bin/chromium that part is skipped with one line. Screenshots go
// to a temporary folder that is deleted afterwards, or to $DASHBOARD_SCREENSHOTS to keep and look
// at them.
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { chromium, type Browser, type Locator, type Page } from 'playwright-core'
import type { WebSocketRoute } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HUNG_MS } from '../../scenarios/stage/waiter.ts'
import {
  expectOneLineError,
  isListening,
  runScript,
  start,
  type Program,
} from '../helpers/processes.ts'
import { joined } from '../helpers/regexp.ts'

const dashboard = 'demos/dashboard/server.ts'
const device = 'demos/discovery/publisher.ts'
const CHROMIUM = '/usr/bin/chromium'
/** How long the page may take to show what the broker told it before the run counts as hung. */
const SEEN_WITHIN_MS = HUNG_MS

/** Start the dashboard on the given ports (0: free ones) and read its one line. */
async function startDashboard(port = 0, httpPort = 0) {
  const program = start(dashboard, ['--port', String(port), '--http-port', String(httpPort)])
  const line = await program.waitForLine('dashboard on ')
  const [, page, broker] = line.match(
    joined(
      /^dashboard on (http:\/\/127\.0\.0\.1:\d+\/) \(bundled broker on /,
      /(mqtt:\/\/127\.0\.0\.1:\d+) and MQTT over WebSocket on the same port\); Ctrl-C to stop$/,
    ),
  )!
  return { program, page, broker }
}

describe('npm run dashboard without a browser', () => {
  it(
    'serves the page, its style and its script (with MQTT.js) on the WebSocket port, and ' +
      'nothing else',
    async () => {
      const { program, page } = await startDashboard()
      try {
        const html = await fetch(page)
        expect(html.headers.get('content-type')).toBe('text/html; charset=utf-8')
        const text = await html.text()
        expect(text).toContain('<meta name="mqtt-url" content="">')
        // Before its script has run, the page says that it is connecting, and nothing else.
        expect(text).toContain('data-state="connecting">connecting…</p>')
        expect((await fetch(new URL('page.css', page))).status).toBe(200)
        const script = await fetch(new URL('page.js', page))
        expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
        expect(await script.text()).toContain('mqttjs_')
        const missing = await fetch(new URL('secret.txt', page))
        expect(missing.status).toBe(404)
        expect(await missing.text()).toBe('not found: the dashboard is at /\n')
      } finally {
        program.child.kill('SIGINT')
      }
      const result = await program.finish()
      expect(result.code).toBe(0)
      expect(result.stdout.trimEnd().split('\n')).toHaveLength(1)
      expect(result.stderr).toBe('')
    },
  )

  it.concurrent.each([
    [
      ['--url', 'mqtt://127.0.0.1:1883'],
      {},
      joined(
        /--url is mqtt:\/\/127\.0\.0\.1:1883, but a browser reaches a broker over WebSocket only; /,
        /pass --url ws:/,
      ),
    ],
    [
      [],
      { MQTT_URL: 'mqtt://127.0.0.1:1883' },
      /MQTT_URL is .*; unset MQTT_URL to use the bundled broker, or pass --url ws:/,
    ],
    [
      ['--url', 'ws://127.0.0.1:8080', '--port', '1884'],
      {},
      /--port is the bundled broker's port; with --url no broker is started/,
    ],
    [
      ['--http-port', '70000'],
      {},
      /--http-port must be a port number from 0 to 65535, not "70000"/,
    ],
    [['--prefix', 'homeassistant/#'], {}, /--prefix "homeassistant\/#" cannot begin a topic name/],
  ])('%j %j: one line, exit 1', async (args, env, line) => {
    expectOneLineError(await runScript(dashboard, args, env), line)
  })
})

/**
 * The size of the MQTT packet that `bytes` begin with, once they hold its fixed header: a byte,
 * then the remaining length in 1 to 4.
 */
function packetLength(bytes: Buffer): number | undefined {
  let remaining = 0
  for (let i = 1; i < Math.min(bytes.length, 5); i++) {
    remaining += (bytes[i]! & 0x7f) * 128 ** (i - 1)
    if ((bytes[i]! & 0x80) === 0) return 1 + i + remaining
  }
  return undefined
}

/** The browser suite, or one skipped line that says what to install. */
function inBrowser(title: string, suite: () => void): void {
  if (existsSync(CHROMIUM)) describe(title, suite)
  else it.skip('Chromium not installed: apt-get install chromium to run the dashboard test')
}

inBrowser('npm run dashboard in Chromium', () => {
  let server: Awaited<ReturnType<typeof startDashboard>>
  let browser: Browser
  let page: Page
  let client: MqttClient
  let shots: string
  const devices: Program[] = []
  const pageErrors: string[] = []
  const consoleErrors: string[] = []
  /**
   * The protocol level of each CONNECT the page sends over its WebSocket: 4 is MQTT 3.1.1, 5 MQTT
   * 5.
   */
  const connectLevels: number[] = []

  beforeAll(async () => {
    shots = process.env.DASHBOARD_SCREENSHOTS ?? (await mkdtemp(join(tmpdir(), 'dashboard-')))
    await mkdir(shots, { recursive: true })
    server = await startDashboard()
    // The flags the machine's notes ask for: no sandbox (root), no GPU, and no background traffic
    // to Google, which a closed network refuses. playwright gives each launch a new, empty profile.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
    page = await browser.newPage({ viewport: { width: 1280, height: 720 } })
    page.setDefaultTimeout(SEEN_WITHIN_MS)
    page.on('pageerror', (error) => pageErrors.push(error.message))
    page.on(
      'console',
      (message) => message.type() === 'error' && consoleErrors.push(message.text()),
    )
    page.on('websocket', (socket) =>
      socket.on('framesent', ({ payload }) => {
        const bytes = Buffer.from(payload)
        if (bytes[0] !== 0x10) return
        // After the fixed header (a byte, then 1 to 4 bytes of length): the name "MQTT" with its
        // length, then the level.
        let at = 1
        while (bytes[at] & 0x80) at++
        connectLevels.push(bytes[at + 1 + 6])
      }),
    )
    client = await mqtt.connectAsync(server.broker, { reconnectPeriod: 0 })
  })

  afterAll(async () => {
    await browser?.close()
    await client?.endAsync()
    for (const program of [...devices, server?.program]) {
      if (program && program.child.exitCode === null && program.child.signalCode === null)
        program.child.kill('SIGINT')
      await program?.finish()
    }
    if (!process.env.DASHBOARD_SCREENSHOTS && shots)
      await rm(shots, { recursive: true, force: true })
  })

  /**
   * The text of every element `locator` matches, polled until it equals `expected` (playwright-core
   * has no expect of its own).
   */
  const texts = (locator: Locator) =>
    expect.poll(() => locator.allTextContents(), { timeout: SEEN_WITHIN_MS })
  const card = (name: string) => page.getByRole('article', { name })
  const status = () => page.locator('#status')
  /** QoS 1, awaited: the broker has it before the next step. */
  const publish = (topic: string, payload: string, retain = false) =>
    client.publishAsync(topic, payload, { qos: 1, retain })

  it(
    'says which broker it uses and that it is connected, and that no device is there ' + 'yet',
    async () => {
      await page.goto(server.page)
      const wsUrl = server.page.replace('http:', 'ws:').replace(/\/$/, '')
      await texts(status()).toEqual([`connected to ${wsUrl}`])
      expect(await status().getAttribute('data-state')).toBe('connected')
      expect(connectLevels, 'the page speaks MQTT 5, as Home Assistant does').toEqual([5])
      expect(await page.locator('#empty').isVisible()).toBe(true)
    },
  )

  it('connecting, not "No devices yet", until the broker has answered its SUBSCRIBE', async () => {
    // A second page, whose WebSocket passes through the test: the broker's CONNACK goes through,
    // and what follows it (the SUBACK, the retained messages behind it) waits until the test lets
    // it. aedes writes a packet in several WebSocket messages: the bytes count, not the messages.
    let fromBroker = Buffer.alloc(0)
    let passed = 0
    let holding = true
    let toPage: WebSocketRoute | undefined
    let subscribeSent!: () => void
    const subscribed = new Promise<void>((resolve) => (subscribeSent = resolve))
    const second = await browser.newPage({ viewport: { width: 1280, height: 720 } })
    await second.routeWebSocket(
      () => true,
      (ws) => {
        toPage = ws
        const broker = ws.connectToServer()
        ws.onMessage((message) => {
          // MQTT.js writes each packet whole; a first byte 0x8_ is a SUBSCRIBE.
          if (typeof message !== 'string' && message[0]! >> 4 === 8) subscribeSent()
          broker.send(message)
        })
        broker.onMessage((message) => {
          if (!holding) return ws.send(message)
          fromBroker = Buffer.concat([fromBroker, Buffer.from(message)])
          const connack = packetLength(fromBroker)
          if (connack === undefined || passed >= connack) return
          const upTo = Math.min(connack, fromBroker.length)
          ws.send(fromBroker.subarray(passed, upTo))
          passed = upTo
        })
      },
    )
    try {
      const wsUrl = server.page.replace('http:', 'ws:').replace(/\/$/, '')
      await second.goto(server.page)
      // Its CONNACK in, its SUBSCRIBE out: as far as the page gets before the broker's answer.
      await subscribed
      expect(fromBroker[0]! >> 4, "the broker's first packet is its CONNACK").toBe(2)
      expect(await second.locator('#status').getAttribute('data-state')).toBe('connecting')
      expect(await second.locator('#status').textContent()).toBe(`connecting to ${wsUrl}…`)
      expect(await second.locator('#empty').isVisible()).toBe(false)
      await second.screenshot({ path: join(shots, 'dashboard-connecting.png') })

      holding = false
      toPage!.send(fromBroker.subarray(passed))
      await texts(second.locator('#status')).toEqual([`connected to ${wsUrl}`])
      expect(await second.locator('#empty').isVisible()).toBe(true)
    } finally {
      await second.close()
    }
  })

  it(
    "C18: shows a card for each entity that a device config or a component's config announces, " +
      'with its name, platform, state and availability',
    async () => {
      devices.push(start(device, ['--url', server.broker]))
      const light = card('Kitchen light')
      await texts(light.locator('.state')).toEqual(['ON'])
      await texts(light.locator('.availability')).toEqual(['online'])
      await texts(light.locator('.kind')).toEqual(['light · kitchen/light'])
      expect(
        await light.getByRole('switch', { name: 'Kitchen light' }).getAttribute('aria-checked'),
      ).toBe('true')
      await texts(card('Kitchen temperature').locator('.state')).toEqual(['21.5 °C'])

      devices.push(
        start(device, [
          '--url',
          server.broker,
          '--node',
          'living_room',
          '--components',
          'temperature',
          '--per-component',
        ]),
      )
      const sensor = card('Living room temperature')
      await texts(sensor.locator('.state')).toEqual(['21.5 °C'])
      await texts(sensor.locator('.availability')).toEqual(['online'])
      expect(await sensor.getByRole('switch').count()).toBe(0)
      expect(await page.locator('#empty').isVisible()).toBe(false)
    },
  )

  it(
    "the switch publishes OFF to the light's command topic; the light obeys and the card shows " +
      'its new state',
    async () => {
      const [light] = devices
      const lamp = card('Kitchen light')
      await lamp.getByRole('switch', { name: 'Kitchen light' }).click()
      await light!.waitForLine('published "OFF" to home/kitchen/light (retained)')
      await texts(lamp.locator('.state')).toEqual(['OFF'])
      expect(await lamp.getByRole('switch').getAttribute('aria-checked')).toBe('false')

      await lamp.getByRole('switch', { name: 'Kitchen light' }).click()
      // Its second "ON": the first was the state it started in.
      await expect
        .poll(
          () =>
            light!.stdout
              .split('\n')
              .filter((l) => l === 'published "ON" to home/kitchen/light (retained)').length,
          { timeout: SEEN_WITHIN_MS },
        )
        .toBe(2)
      await texts(lamp.locator('.state')).toEqual(['ON'])
    },
  )

  it(
    'S8: a device killed with SIGKILL goes offline on every card of it: the broker published ' +
      "its Last Will, on the device's one availability topic",
    async () => {
      const [light] = devices
      light!.child.kill('SIGKILL')
      const lamp = card('Kitchen light')
      await texts(lamp.locator('.availability')).toEqual(['offline'])
      await texts(card('Kitchen temperature').locator('.availability')).toEqual(['offline'])
      expect(await lamp.getByRole('switch').isDisabled()).toBe(true)
      await texts(card('Living room temperature').locator('.availability')).toEqual(['online'])
    },
  )

  it(
    'a malformed config shows as a warning and the page carries on; an empty one takes the ' +
      'warning away',
    async () => {
      await publish('homeassistant/light/broken/config', '{"name": "Broken"')
      await publish('homeassistant/sensor/nameless/config', '{"name": "x"}')
      const warnings = page.locator('.warning')
      await texts(warnings).toEqual([
        '⚠ ignored homeassistant/light/broken/config: not JSON ({"name": "Broken")',
        '⚠ ignored homeassistant/sensor/nameless/config: a sensor needs "state_topic", the topic ' +
          'it reports on',
      ])
      expect(await page.locator('.card').count()).toBe(3)

      await page.screenshot({ path: join(shots, 'dashboard-1280x720.png') })
      await page.setViewportSize({ width: 390, height: 844 })
      await page.screenshot({ path: join(shots, 'dashboard-phone-390x844.png'), fullPage: true })
      await page.setViewportSize({ width: 1280, height: 720 })

      await publish('homeassistant/light/broken/config', '')
      await texts(warnings).toEqual([
        '⚠ ignored homeassistant/sensor/nameless/config: a sensor needs "state_topic", the topic ' +
          'it reports on',
      ])
      await publish('homeassistant/sensor/nameless/config', '')
      await texts(warnings).toEqual([])
    },
  )

  it(
    'reads abbreviated configs, and a new config that turns a component into another changes ' +
      'its card in place',
    async () => {
      const topic = 'homeassistant/device/garden/config'
      const config = (pump: object) =>
        JSON.stringify({
          '~': 'home/garden/pump',
          dev: { ids: ['garden'], name: 'Garden' },
          o: { name: 'test' },
          avty: [{ t: '~/up' }],
          cmps: { pump },
        })
      await publish('home/garden/pump/up', 'online', true)
      await publish('home/garden/pump/state', 'idle', true)
      await publish(
        topic,
        config({
          p: 'switch',
          name: 'pump',
          uniq_id: 'garden_pump',
          stat_t: '~/state',
          cmd_t: '~/set',
        }),
      )
      await texts(card('Garden pump').locator('.state')).toEqual(['idle'])
      expect(await card('Garden pump').getByRole('switch').count()).toBe(1)

      await publish(
        topic,
        config({ p: 'sensor', name: 'pump', uniq_id: 'garden_pump', stat_t: '~/state' }),
      )
      await texts(card('Garden pump').locator('.kind')).toEqual(['sensor · garden/pump'])
      await texts(page.locator('.card .name')).toEqual([
        'Kitchen light',
        'Kitchen temperature',
        'Living room temperature',
        'Garden pump',
      ])
      expect(await card('Garden pump').getByRole('switch').count()).toBe(0)
      await texts(card('Garden pump').locator('.availability')).toEqual(['online'])

      await publish(topic, '')
      await texts(page.locator('.card .name')).toEqual([
        'Kitchen light',
        'Kitchen temperature',
        'Living room temperature',
      ])
      await publish('home/garden/pump/up', '', true)
      await publish('home/garden/pump/state', '', true)
    },
  )

  it(
    'a device whose config is cleared (an empty retained message) disappears, all its cards at ' +
      'once',
    async () => {
      await publish('homeassistant/device/kitchen/config', '', true)
      await texts(page.locator('.card .name')).toEqual(['Living room temperature'])
      await publish('homeassistant/sensor/living_room/temperature/config', '', true)
      await texts(page.locator('.card')).toEqual([])
      expect(await page.locator('#empty').isVisible()).toBe(true)
      expect(pageErrors).toEqual([])
      expect(consoleErrors).toEqual([])
    },
  )

  it(
    'Ctrl-C stops the dashboard; the page says it is disconnected, and reconnects by itself ' +
      'when it is back',
    async () => {
      const { program } = server
      const ports = [server.broker, server.page].map((u) => Number(new URL(u).port))
      program.child.kill('SIGINT')
      const result = await program.finish()
      expect(result.code).toBe(0)
      expect(result.stdout.trimEnd().split('\n')).toHaveLength(1)
      expect(await isListening(ports[0]!)).toBe(false)
      await expect
        .poll(() => status().getAttribute('data-state'), { timeout: SEEN_WITHIN_MS })
        .toBe('disconnected')
      expect(await status().textContent()).toMatch(
        /^disconnected from ws:\/\/127\.0\.0\.1:\d+; trying again every second…$/,
      )
      // No card, and no broker to ask: the page cannot tell that there is no device.
      expect(await page.locator('#empty').isVisible()).toBe(false)
      await page.screenshot({ path: join(shots, 'dashboard-disconnected.png') })

      // The same ports, as after a restart: the page was loaded from the old one and keeps its
      // address.
      server = await startDashboard(ports[0], ports[1])
      await expect
        .poll(() => status().getAttribute('data-state'), { timeout: SEEN_WITHIN_MS })
        .toBe('connected')
      const hall = start(device, [
        '--url',
        server.broker,
        '--node',
        'hall',
        '--components',
        'light',
        '--payload-on',
        'on',
        '--payload-off',
        'off',
        '--state',
        'off',
      ])
      devices.push(hall)
      await texts(card('Hall light').locator('.state')).toEqual(['off'])
      expect(pageErrors).toEqual([])
    },
  )

  it("the switch sends the payloads the light's config names, not ON and OFF", async () => {
    const hall = devices.at(-1)!
    await card('Hall light').getByRole('switch', { name: 'Hall light' }).click()
    await hall.waitForLine('published "on" to home/hall/light (retained)')
    await texts(card('Hall light').locator('.state')).toEqual(['on'])
    expect(await card('Hall light').getByRole('switch').getAttribute('aria-checked')).toBe('true')
    expect(hall.stdout).not.toContain('ignored')
  })
})
