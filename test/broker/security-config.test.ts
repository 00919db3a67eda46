// `npm run broker -- -c FILE` beyond the shared file of security.test.ts: Mosquitto 2's defaults
// (a file without a listener, per_listener_settings), the broker's flags beside -c, the options it
// ignores with a warning, and the bad input it refuses with one line before it listens anywhere.
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type IClientOptions } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker } from '../../lib/broker/broker.ts'
import { IGNORED } from '../../lib/broker/config.ts'
import { configured } from '../../lib/broker/configured.ts'
import { HUNG_MS } from '../../scenarios/stage/waiter.ts'
import { type Certificates, makeCertificates } from '../helpers/certificates.ts'
import { startDaemon } from '../helpers/daemon.ts'
import { mosquittoPath } from '../helpers/mosquitto.ts'
import {
  expectOneLineError,
  freePort,
  isListening,
  runScript,
  start,
} from '../helpers/processes.ts'

const brokerScript = 'lib/broker/main.ts'

let dir: string
let certs: Certificates

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mqtt-by-example-config-'))
  certs = makeCertificates(dir)
  const made = await runScript('lib/broker/passwd.ts', [
    '-c',
    '-b',
    file('passwd'),
    'ann',
    'ann-pw',
  ])
  expect(made.code, made.stderr).toBe(0)
  write('acl', 'topic read public/#\nuser ann\ntopic readwrite ann/#\n')
  // Mosquitto started by root reads its files as the user mosquitto.
  chmodSync(dir, 0o755)
  for (const name of readdirSync(dir)) chmodSync(join(dir, name), 0o644)
}, HUNG_MS)

afterAll(() => rmSync(dir, { recursive: true, force: true }))

const file = (name: string) => join(dir, name)
function write(name: string, text: string): string {
  writeFileSync(file(name), text)
  chmodSync(file(name), 0o644)
  return file(name)
}

/** The CONNACK's code, or 'no CONNACK'. */
async function connack(url: string, options: IClientOptions = {}): Promise<number | string> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: HUNG_MS, ...options })
  const code = await new Promise<number | string>((resolve) => {
    client.once('connect', () => resolve(0))
    client.once('error', (error: Error & { code?: number | string }) =>
      resolve(typeof error.code === 'number' ? error.code : 'no CONNACK'),
    )
  })
  await client.endAsync(true)
  return code
}

/** Start the bundled broker on `config`; resolves once it is ready, with its output so far. */
async function bundled(config: string, ...flags: string[]) {
  const broker = start(brokerScript, ['-c', config, ...flags])
  const ready = await broker.waitForLine('broker ready on')
  return {
    broker,
    ready,
    async stop() {
      broker.child.kill('SIGTERM')
      await broker.finish()
    },
  }
}

describe('Mosquitto 2 defaults', () => {
  it('CF1 no listener line: loopback only, anonymous clients let in, the ACL applied', async () => {
    const config = write('local.conf', `password_file ${file('passwd')}\nacl_file ${file('acl')}\n`)
    const { broker, ready, stop } = await bundled(config, '--port', '0')
    try {
      const url = ready.match(/mqtt:\/\/127\.0\.0\.1:\d+/)![0]
      expect(await connack(url)).toBe(0)
      expect(await connack(url, { username: 'ann', password: 'wrong' })).toBe(5)
      expect(await connack(url, { username: 'ann', password: 'ann-pw' })).toBe(0)
      // The anonymous section of the ACL reads public/# and writes nothing: ann hears only her own.
      const options = { reconnectPeriod: 0, connectTimeout: HUNG_MS }
      const ann = await mqtt.connectAsync(url, { ...options, username: 'ann', password: 'ann-pw' })
      const anonymous = await mqtt.connectAsync(url, options)
      const heard: string[] = []
      const marker = new Promise<void>((resolve) =>
        ann.on('message', (topic) => (topic === 'ann/marker' ? resolve() : heard.push(topic))),
      )
      await ann.subscribeAsync(['ann/#', 'public/#'], { qos: 1 })
      await anonymous.publishAsync('public/news', 'refused', { qos: 1 })
      await ann.publishAsync('ann/marker', 'end', { qos: 1 })
      await marker
      expect(heard).toEqual([])
      await Promise.all([ann.endAsync(true), anonymous.endAsync(true)])
    } finally {
      await stop()
    }
    expect(broker.stderr).toBe('')
  })

  const perListener = (ports: number[]) =>
    [
      'per_listener_settings true',
      `listener ${ports[0]} 127.0.0.1`,
      'allow_anonymous true',
      `listener ${ports[1]} 127.0.0.1`,
      `password_file ${file('passwd')}`,
      '',
    ].join('\n')
  const answers = async (ports: number[]) => [
    await connack(`mqtt://127.0.0.1:${ports[0]}`),
    await connack(`mqtt://127.0.0.1:${ports[1]}`),
    await connack(`mqtt://127.0.0.1:${ports[1]}`, { username: 'ann', password: 'ann-pw' }),
  ]
  // Anonymous on the open listener, anonymous and ann on the one with passwords.
  const EXPECTED = [0, 5, 0]

  it('CF2 per_listener_settings true: allow_anonymous and passwords per listener', async () => {
    const ports = [await freePort(), await freePort()]
    const { stop } = await bundled(write('per-listener.conf', perListener(ports)))
    try {
      expect(await answers(ports)).toEqual(EXPECTED)
    } finally {
      await stop()
    }
  })

  it.skipIf(!mosquittoPath)('CF2 per_listener_settings true, on Mosquitto', async () => {
    const ports = [await freePort(), await freePort()]
    const config = write('per-listener-mosquitto.conf', `${perListener(ports)}log_dest stderr\n`)
    const { daemon } = await startDaemon(
      'mosquitto -c',
      [mosquittoPath!, '-c', config],
      / running$/m,
    )
    try {
      expect(await answers(ports)).toEqual(EXPECTED)
    } finally {
      await daemon.stop()
    }
  })
})

describe('flags beside -c', () => {
  it('CF3 --username and --password add one user to every listener', async () => {
    const port = await freePort()
    const config = write(
      'flags.conf',
      `listener ${port} 127.0.0.1\npassword_file ${file('passwd')}\n`,
    )
    const { stop } = await bundled(config, '--username', 'guest', '--password', 'guest-pw')
    try {
      const url = `mqtt://127.0.0.1:${port}`
      expect(await connack(url, { username: 'guest', password: 'guest-pw' })).toBe(0)
      expect(await connack(url, { username: 'ann', password: 'ann-pw' })).toBe(0)
      expect(await connack(url)).toBe(5)
    } finally {
      await stop()
    }
  })

  it('CF4 persistence true keeps the store in persistence_location', async () => {
    const port = await freePort()
    const config = write(
      'persist.conf',
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence true\n` +
        `persistence_location ${file('store')}\n`,
    )
    const { broker, stop } = await bundled(config)
    await stop()
    expect(broker.stdout).toContain(`keeping retained messages and sessions in ${file('store')}/`)
  })

  it('CF6 docs/conformance.md names each option ignored', () => {
    const page = readFileSync(new URL('../../docs/conformance.md', import.meta.url), 'utf8')
    const ignored = page.slice(page.indexOf('- **Ignored'), page.indexOf('- **Refused'))
    for (const option of IGNORED) expect(ignored, option).toContain(`\`${option}\``)
  })

  it('CF5 options that change only the logs: ignored, a warning naming each line', async () => {
    const port = await freePort()
    const config = write(
      'warned.conf',
      `# logs\nlog_dest stderr\nlistener ${port} 127.0.0.1\nallow_anonymous true\nlog_type all\n`,
    )
    const { broker, stop } = await bundled(config)
    await stop()
    expect(broker.stderr.trimEnd().split('\n')).toEqual([
      expect.stringMatching(/^warning: .*warned\.conf:2: log_dest ignored/),
      expect.stringMatching(/^warning: .*warned\.conf:5: log_type ignored/),
    ])
  })
})

describe('in one process, as a scenario starts it', () => {
  it('CF7 configured() gives startBroker its listeners; close() closes them all', async () => {
    const [plain, ws] = [await freePort(), await freePort()]
    const config = write(
      'in-process.conf',
      `listener ${plain} 127.0.0.1\nlistener ${ws} 127.0.0.1\nprotocol websockets\n` +
        `password_file ${file('passwd')}\n`,
    )
    const { listeners, security } = configured(config)
    const broker = await startBroker({ listeners, security })
    try {
      expect(broker.listenerUrls).toEqual([`mqtt://127.0.0.1:${plain}`, `ws://127.0.0.1:${ws}`])
      expect(await connack(broker.url)).toBe(5)
      expect(await connack(broker.wsUrl!, { username: 'ann', password: 'ann-pw' })).toBe(0)
    } finally {
      await broker.close()
    }
    expect([await isListening(plain), await isListening(ws)]).toEqual([false, false])
    expect(() => configured(file('missing.conf'))).toThrow(/cannot read the configuration file/)
  })
})

describe('bad input: one line, exit 1, nothing listening', () => {
  const refused = async (text: string | undefined, line: RegExp, flags: string[] = []) => {
    const config = text === undefined ? file('missing.conf') : write('bad.conf', text)
    const result = await runScript(brokerScript, ['-c', config, ...flags])
    expectOneLineError(result, line)
    expect(result.stdout).not.toContain('broker ready')
  }
  const tls = (cert: string, key: string) =>
    `listener 8883 127.0.0.1\ncafile ${certs.ca}\ncertfile ${cert}\nkeyfile ${key}\n`

  it('BAD1 a missing configuration file', () =>
    refused(undefined, /cannot read the configuration file .*missing\.conf: ENOENT/))

  it('BAD2 an option it does not know: the file, the line and the option', () =>
    refused(
      '# ok\nlistener 1884\nallow_anonymus true\n',
      /bad\.conf:3: allow_anonymus: the bundled broker does not know this option/,
    ))

  it('BAD3 an option of Mosquitto it does not support', () =>
    refused(
      'max_connections 10\n',
      /bad\.conf:1: max_connections: the bundled broker does not know/,
    ))

  it('BAD14 the deprecated port, with what to write instead', () =>
    refused('port 1884\n', /bad\.conf:1: port is the old way .*: write listener PORT/))

  it('BAD4 a malformed line', () =>
    refused('listener 1884\nallow_anonymous maybe\n', /bad\.conf:2: allow_anonymous is true/))

  it('BAD5 a listener option above any listener', () =>
    refused(`certfile ${certs.server.cert}\n`, /bad\.conf:1: certfile belongs to a listener/))

  it('BAD6 a missing password file', () =>
    refused(
      `listener 1884\npassword_file ${file('nobody')}\n`,
      /cannot read password_file .*nobody: ENOENT/,
    ))

  it('BAD7 a malformed password file', () => {
    write('plain-passwd', 'ann:ann-pw\n')
    return refused(
      `listener 1884\npassword_file ${file('plain-passwd')}\n`,
      /plain-passwd:1: not a user:\$7\$\.\.\. line/,
    )
  })

  it('BAD8 a malformed ACL', () => {
    write('bad-acl', 'user ann\ntopic readwrite ann/#\ntopics read x\n')
    return refused(`listener 1884\nacl_file ${file('bad-acl')}\n`, /bad-acl:3: .* is not an ACL/)
  })

  it('BAD9 a key that is not its certificate', () =>
    refused(tls(certs.server.cert, certs.client.key), /keyfile .*client\.key is not the key of/))

  it('BAD10 an expired certificate', () =>
    refused(tls(certs.expired.cert, certs.expired.key), /certfile .*expired\.crt expired on/))

  it('BAD11 an unreadable key', () =>
    refused(tls(certs.server.cert, file('no-key')), /cannot read keyfile .*no-key: ENOENT/))

  it('BAD12 --port beside listener lines', () =>
    refused('listener 1884\n', /--port and the listener lines of .* both say where/, [
      '--port',
      '1885',
    ]))

  it('BAD13 a port in use: the listeners opened before it are closed again', async () => {
    const first = await freePort()
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    const busy = (taken.address() as { port: number }).port
    try {
      await refused(
        `listener ${first} 127.0.0.1\nlistener ${busy} 127.0.0.1\nallow_anonymous true\n`,
        new RegExp(`bad\\.conf:2: port ${busy} is already in use`),
      )
      expect(await isListening(first)).toBe(false)
    } finally {
      taken.close()
    }
  })
})
