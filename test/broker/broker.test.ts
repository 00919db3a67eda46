// The bundled broker, imported (startBroker) and run as `npm run broker` would run it.
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { Duplex } from 'node:stream'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'
import { startBroker, type RunningBroker } from '../../lib/broker/broker.ts'
import { DEFAULT_URL } from '../../lib/demo-flags.ts'
import { inSeconds, Waiter } from '../../scenarios/stage/waiter.ts'
import { expectOneLineError, isListening, runScript, start } from '../helpers/processes.ts'
import { RawClient } from '../helpers/raw-client.ts'
import { joined } from '../helpers/regexp.ts'

const brokerScript = 'lib/broker/main.ts'
const running: RunningBroker[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((b) => b.close()))
})

describe('startBroker', () => {
  it('listens on loopback only unless asked, on a free port when given 0', async () => {
    const broker = await startBroker({ port: 0 })
    running.push(broker)
    expect(broker.url).toBe(`mqtt://127.0.0.1:${broker.port}`)
    expect(broker.port).toBeGreaterThan(0)
  })

  it('C1: passes a message from one client to another', async () => {
    const broker = await startBroker({ port: 0 })
    running.push(broker)
    const sub = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
    const pub = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
    await sub.subscribeAsync('my_topic')
    const received = new Promise<string>((resolve) =>
      sub.on('message', (topic, payload) => resolve(`${topic} ${payload}`)),
    )
    await pub.publishAsync('my_topic', 'on')
    expect(await received).toBe('my_topic on')
    await Promise.all([sub.endAsync(), pub.endAsync()])
  })

  it('C3: serves the same broker over WebSocket when given a ws port', async () => {
    const broker = await startBroker({ port: 0, wsPort: 0 })
    running.push(broker)
    expect(broker.wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/)
    const sub = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
    const pub = await mqtt.connectAsync(broker.wsUrl!, { reconnectPeriod: 0 })
    await sub.subscribeAsync('my_topic')
    const received = new Promise<string>((resolve) =>
      sub.on('message', (_topic, payload) => resolve(String(payload))),
    )
    await pub.publishAsync('my_topic', 'over websocket')
    expect(await received).toBe('over websocket')
    await Promise.all([sub.endAsync(), pub.endAsync()])
  })

  it.each([
    ['3.1', 3],
    ['3.1.1', 4],
    ['5', 5],
  ] as const)(
    'speaks MQTT %s on TCP, WebSocket and a Unix socket, in memory and with a store on disk',
    async (_name, protocolVersion) => {
      const dir = await mkdtemp(join(tmpdir(), 'broker-test-'))
      try {
        for (const persist of [undefined, join(dir, 'store')]) {
          const broker = await startBroker({
            port: 0,
            wsPort: 0,
            unixPath: join(dir, 'broker.sock'),
            persist,
          })
          running.push(broker)
          for (const url of [broker.url, broker.wsUrl!, broker.unixUrl!]) {
            const where =
              `MQTT ${protocolVersion} on ${url.split(':')[0]}` + (persist ? ' with --persist' : '')
            const publisher = await mqtt.connectAsync(url, { protocolVersion, reconnectPeriod: 0 })
            await publisher.publishAsync('my_topic', where, { qos: 1, retain: true })
            // A retained message, stored and sent back to a new subscriber: a round trip through
            // the store.
            const subscriber = await mqtt.connectAsync(url, { protocolVersion, reconnectPeriod: 0 })
            const received = new Promise<string>((resolve) =>
              subscriber.on('message', (_topic, payload) => resolve(String(payload))),
            )
            await subscriber.subscribeAsync('my_topic', { qos: 1 })
            expect(await received, where).toBe(where)
            await publisher.publishAsync('my_topic', '', { qos: 1, retain: true })
            await Promise.all([publisher.endAsync(), subscriber.endAsync()])
          }
          await running.pop()!.close()
        }
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    },
  )

  it(
    'reads a packet that came in several pieces at once (Node.js 26 reads one piece at a time; ' +
      'aedes read only the first)',
    async () => {
      const broker = await startBroker({ port: 0 })
      running.push(broker)
      const replies = mqttPacket.parser({ protocolVersion: 4 })
      const arrived = new Waiter()
      let connack: number | undefined
      replies.on('packet', (packet: Packet) => {
        if (packet.cmd === 'connack') connack = packet.returnCode
        arrived.arrived()
      })
      // An in-memory connection, as aedes' own tests use: what the broker writes goes to the
      // parser.
      const connection = new Duplex({
        read() {},
        write(chunk: Buffer, _encoding, done) {
          replies.parse(chunk)
          done()
        },
      })
      broker.aedes.handle(connection)
      const connect = mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clientId: 'in-pieces',
        clean: true,
        keepalive: 0,
      })
      // Once the broker reads the connection, the CONNECT arrives in three pieces in one turn, as
      // MQTT.js writes it (first byte, length, the rest) and as one WebSocket message per piece
      // hands it over.
      await new Promise((resolve) => setImmediate(resolve))
      connection.push(connect.subarray(0, 1))
      connection.push(connect.subarray(1, 2))
      connection.push(connect.subarray(2))
      const code = await arrived.until(() => connack, {
        timedOut: (ms) =>
          new Error(`no CONNACK within ${inSeconds(ms)} to a CONNECT sent in three pieces`),
      })
      expect(code).toBe(0)
      connection.destroy()
    },
  )

  it(
    'S4: a filter that starts with # gets no retained $SYS message (plain aedes sends ' + 'it)',
    async () => {
      const broker = await startBroker({ port: 0 })
      running.push(broker)
      const publisher = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
      // The bundled broker stored $SYS/broker/version when it started; the marker is stored after
      // it, and retained messages are sent in the order they were stored, so a leaked $SYS message
      // comes first.
      await publisher.publishAsync('probe/marker', 'marker', { qos: 1, retain: true })
      const wildcard = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
      const received: string[] = []
      const marker = new Promise<void>((resolve) =>
        wildcard.on('message', (topic) => {
          received.push(topic)
          if (topic === 'probe/marker') resolve()
        }),
      )
      await wildcard.subscribeAsync('#')
      await marker
      expect(received).toEqual(['probe/marker'])

      const exact = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
      const version = new Promise<string>((resolve) =>
        exact.on('message', (_topic, payload) => resolve(String(payload))),
      )
      await exact.subscribeAsync('$SYS/broker/version')
      expect(await version).toBe('mqtt-by-example bundled broker (aedes)')
      await publisher.publishAsync('probe/marker', '', { qos: 1, retain: true })
      await Promise.all([publisher.endAsync(), wildcard.endAsync(), exact.endAsync()])
    },
  )

  it(
    "one client's messages stay in order: a retained QoS 0 message followed at once by another " +
      'still arrives (plain aedes drops it)',
    async () => {
      const broker = await startBroker({ port: 0 })
      running.push(broker)
      const subscriber = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
      const received: string[] = []
      const last = new Promise<void>((resolve) =>
        subscriber.on('message', (_topic, payload) => {
          received.push(String(payload))
          if (String(payload) === 'end') resolve()
        }),
      )
      await subscriber.subscribeAsync('my_topic')
      const publisher = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
      for (const [message, retain] of [
        ['one', true],
        ['two', false],
        ['three', true],
        ['', true],
        ['end', false],
      ] as const) {
        await publisher.publishAsync('my_topic', message, { qos: 0, retain })
      }
      await last
      expect(received).toEqual(['one', 'two', 'three', '', 'end'])
      await Promise.all([subscriber.endAsync(), publisher.endAsync()])
    },
  )

  it(
    'cuts off a client whose packet is over the size limit, says why, and keeps serving the ' +
      'others',
    async () => {
      const lines: string[] = []
      const broker = await startBroker({
        port: 0,
        maxPacketSize: 1024,
        log: (line) => lines.push(line),
      })
      running.push(broker)
      const big = await RawClient.connected(broker.url, 'big-sender')
      big.send({
        cmd: 'publish',
        topic: 'my_topic',
        payload: Buffer.alloc(2000),
        qos: 0,
        retain: false,
        dup: false,
      })
      await big.closed()
      expect(lines).toContain(
        'client big-sender cut off: a packet of 2013 bytes is over the limit of 1024 ' +
          '(--max-packet-size)',
      )
      expect(
        lines.filter((line) => line.startsWith('client big-sender published')),
        'aedes never saw the packet',
      ).toEqual([])
      // A packet that only announces 256 MB is cut off on its header, before anything is buffered.
      const boaster = await RawClient.connected(broker.url, 'boaster')
      boaster.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]))
      await boaster.closed()
      expect(lines).toContain(
        'client boaster cut off: a packet of 268435460 bytes is over the limit of 1024 ' +
          '(--max-packet-size)',
      )
      const fine = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
      await fine.subscribeAsync('my_topic')
      const received = new Promise<number>((resolve) =>
        fine.on('message', (_topic, payload) => resolve(payload.length)),
      )
      await fine.publishAsync('my_topic', Buffer.alloc(1000))
      expect(await received).toBe(1000)
      await fine.endAsync()
    },
  )

  it(
    'with credentials, refuses a wrong or missing password with return code 4 and accepts the ' +
      'right one',
    async () => {
      const broker = await startBroker({
        port: 0,
        credentials: { username: 'speaker', password: 'on stage' },
      })
      running.push(broker)
      for (const given of [
        {},
        { username: 'speaker', password: 'off stage' },
        { username: 'someone', password: 'on stage' },
      ]) {
        await expect(
          mqtt.connectAsync(broker.url, { reconnectPeriod: 0, ...given }),
        ).rejects.toMatchObject({ code: 4 })
      }
      const client = await mqtt.connectAsync(broker.url, {
        reconnectPeriod: 0,
        username: 'speaker',
        password: 'on stage',
      })
      await client.endAsync()
    },
  )

  it('refuses a port in use with an actionable message', async () => {
    const first = await startBroker({ port: 0 })
    running.push(first)
    await expect(startBroker({ port: first.port, wsPort: 0 })).rejects.toThrow(
      `port ${first.port} is already in use (is Mosquitto running?); use --port or stop the ` +
        `other broker`,
    )
  })

  it('logs one line per client event, and none for quiet clients', async () => {
    const lines: string[] = []
    const broker = await startBroker({
      port: 0,
      log: (line) => lines.push(line),
      quietClients: new Set(['hidden']),
    })
    running.push(broker)
    const hidden = await mqtt.connectAsync(broker.url, { clientId: 'hidden', reconnectPeriod: 0 })
    const client = await mqtt.connectAsync(broker.url, { clientId: 'speaker', reconnectPeriod: 0 })
    await client.subscribeAsync('my_topic')
    await client.publishAsync('my_topic', 'on', { qos: 1, retain: true })
    await client.publishAsync('my_topic', '', { qos: 1, retain: true })
    await Promise.all([hidden.endAsync(), client.endAsync()])
    await expect
      .poll(() => lines)
      .toEqual([
        'client speaker connected',
        'client speaker subscribed to my_topic (QoS 0)',
        'client speaker published "on" to my_topic (retained)',
        'client speaker published "" to my_topic (retained)',
        'client speaker disconnected',
      ])
  })
})

describe('npm run broker (lib/broker/main.ts as a program)', () => {
  it('C4: listens on 127.0.0.1:1883 by default, the port the demos use by default', async () => {
    expect(DEFAULT_URL).toBe('mqtt://127.0.0.1:1883')
    const help = await runScript(brokerScript, ['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/--port N +TCP port to listen on \(default 1883/)
    expect(help.stdout).toMatch(/--host ADDR +interface to listen on \(default 127\.0\.0\.1/)
  })

  it(
    'prints one ready line with its URLs, then client events; SIGTERM frees the port and exits ' +
      '0',
    async () => {
      const child = start(brokerScript, ['--port', '0', '--ws-port', '0'])
      const ready = await child.waitForLine('broker ready on')
      const [, port, wsPort] = ready.match(
        joined(
          /^broker ready on mqtt:\/\/127\.0\.0\.1:(\d+) and ws:\/\/127\.0\.0\.1:(\d+); Ctrl-C to /,
          /stop$/,
        ),
      )!
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
        clientId: 'visitor',
        reconnectPeriod: 0,
      })
      await child.waitForLine('client visitor connected')
      await client.endAsync()
      await child.waitForLine('client visitor disconnected')
      child.child.kill('SIGTERM')
      const result = await child.finish()
      expect(result.code).toBe(0)
      expect(await isListening(Number(port))).toBe(false)
      expect(await isListening(Number(wsPort))).toBe(false)
    },
  )

  it('SIGINT (Ctrl-C) closes connected clients and exits 0', async () => {
    const child = start(brokerScript, ['--port', '0', '--quiet'])
    const port = Number((await child.waitForLine('broker ready on')).match(/:(\d+);/)![1])
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 })
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
    child.child.kill('SIGINT')
    const result = await child.finish()
    await closed
    expect(result.code).toBe(0)
    expect(result.stdout.trim().split('\n')).toHaveLength(1)
    expect(await isListening(port)).toBe(false)
  })

  it('warns, on stderr, when it listens beyond this machine without a password', async () => {
    const child = start(brokerScript, ['--host', '0.0.0.0', '--port', '0', '--quiet'])
    await child.waitForLine('broker ready on mqtt://0.0.0.0:')
    child.child.kill('SIGTERM')
    const result = await child.finish()
    expect(result.stderr).toBe(
      'warning: listening on 0.0.0.0 without a password: anyone who can reach this machine can ' +
        'publish and subscribe; add --username and --password\n',
    )
  })

  it('npm run dashboard, whose broker asks for no password either, warns alike', async () => {
    const args = ['--host', '0.0.0.0', '--port', '0', '--http-port', '0']
    const child = start('demos/dashboard/server.ts', args)
    await child.waitForLine('dashboard on ')
    child.child.kill('SIGTERM')
    const result = await child.finish()
    expect(result.code).toBe(0)
    expect(result.stderr).toBe(
      'warning: listening on 0.0.0.0 without a password: anyone who can ' +
        'reach this machine can publish and subscribe, and switch your devices from the page; ' +
        'use it on a network you trust\n',
    )
  })

  it('a demo given the wrong password says so in one line', async () => {
    const child = start(brokerScript, [
      '--port',
      '0',
      '--quiet',
      '--username',
      'speaker',
      '--password',
      'on stage',
    ])
    const url = (await child.waitForLine('broker ready on')).match(/mqtt:\/\/\S+?(?=;)/)![0]
    try {
      expectOneLineError(
        await runScript('demos/basic-pubsub/publisher.ts', ['--url', url], {
          MQTT_USERNAME: 'speaker',
          MQTT_PASSWORD: 'wrong',
        }),
        joined(
          /refused the connection: bad user name or password; pass --username and --password /,
          /.*\(return code 4\)$/,
        ),
      )
      const right = await runScript('demos/basic-pubsub/publisher.ts', [
        '--url',
        url,
        '--username',
        'speaker',
        '--password',
        'on stage',
      ])
      expect(right.code).toBe(0)
    } finally {
      child.child.kill('SIGTERM')
      await child.finish()
    }
  })

  it('a port in use: one line naming the port and what to do, exit 1', async () => {
    const other = createServer()
    const port = await new Promise<number>((resolve) =>
      other.listen(0, '127.0.0.1', () => resolve((other.address() as { port: number }).port)),
    )
    try {
      const result = await runScript(brokerScript, ['--port', String(port)])
      expect(result.code).toBe(1)
      expect(result.stderr).toBe(
        `error: port ${port} is already in use (is Mosquitto running?); use --port or stop the ` +
          `other broker\n`,
      )
    } finally {
      other.close()
    }
  })

  it.each([
    [['--port', 'abc'], 'error: --port must be a port number from 0 to 65535, not "abc"\n'],
    [
      ['--ws-port', '70000'],
      'error: --ws-port must be a port number from 0 to 65535, not "70000"\n',
    ],
    [['--verbose'], "error: Unknown option '--verbose'; see npm run broker -- --help\n"],
    [
      ['--max-packet-size', '1k'],
      'error: --max-packet-size must be a number of bytes of at least 2, not "1k"\n',
    ],
    [
      ['--username', 'speaker'],
      'error: give both a user name and a password (--username and --password, or MQTT_USERNAME ' +
        'and MQTT_PASSWORD), or neither\n',
    ],
    [
      ['--host', '192.0.2.1', '--port', '0'],
      'error: cannot listen on 192.0.2.1: no such address on this machine; use --host 127.0.0.1\n',
    ],
  ])('bad input %j: one line, exit 1', async (args, line) => {
    const result = await runScript(brokerScript, args)
    expect(result.code).toBe(1)
    expect(result.stderr).toBe(line)
  })
})
