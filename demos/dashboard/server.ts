// npm run dashboard: a live smart-home dashboard in the browser. Starts the bundled broker with
// MQTT over WebSocket and serves, from that same HTTP port, one page that discovers devices the way
// demos/discovery/subscriber.ts does and shows one card per device. With --url (or a ws://
// MQTT_URL) it serves the page for another broker's WebSocket listener instead. Runs until Ctrl-C.
import { readFile } from 'node:fs/promises'
import { createServer, type RequestListener } from 'node:http'
import { networkInterfaces } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isLoopback, startBroker } from '../../lib/broker/broker.ts'
import { bundleForBrowser } from '../../lib/build-cache.ts'
import { fail, messageOf } from '../../lib/cli.ts'
import { DEFAULT_PREFIX } from '../../lib/discovery/format.ts'
import { parseFlags } from '../../lib/demo-flags.ts'
import { topicNameProblem } from '../../lib/topics.ts'

const here = dirname(fileURLToPath(import.meta.url))

const values = parseFlags(
  'Serve a live dashboard of the devices that announce themselves by discovery, until Ctrl-C.',
  {
    host: {
      type: 'string',
      arg: 'ADDR',
      help:
        'interface to listen on (default 127.0.0.1: this machine only; 0.0.0.0 lets a phone ' +
        'in)',
    },
    port: {
      type: 'string',
      arg: 'N',
      help: 'TCP port of the bundled broker, for the devices (default 1883; 0 picks a free port)',
    },
    'http-port': {
      type: 'string',
      arg: 'N',
      help: "port of the page, and of the bundled broker's MQTT over WebSocket (default 8080)",
    },
    url: {
      type: 'string',
      arg: 'URL',
      help:
        'use the broker at this ws:// or wss:// URL instead of the bundled one (default ' +
        '$MQTT_URL if it is one)',
    },
    prefix: {
      type: 'string',
      arg: 'TOPIC',
      help: `discovery prefix: the page follows <prefix>/# (default ${DEFAULT_PREFIX})`,
    },
  },
)
const host = values.host ?? '127.0.0.1'
const httpPort = portFlag('--http-port', values['http-port']) ?? 8080
const url = brokerUrl()
if (url && values.port !== undefined)
  fail("--port is the bundled broker's port; with --url no broker is started, so leave --port out")
const prefix = values.prefix ?? DEFAULT_PREFIX
const prefixProblem = topicNameProblem(prefix)
if (prefixProblem)
  fail(`--prefix ${JSON.stringify(prefix)} cannot begin a topic name: ${prefixProblem}`)

const pageScript = await bundleForBrowser(join(here, 'page.ts'), 'dashboard').catch(
  (error: unknown) => fail(`cannot bundle the page: ${messageOf(error)}`),
)
const html = (await readFile(join(here, 'page.html'), 'utf8'))
  .replace(
    '<meta name="mqtt-url" content="">',
    `<meta name="mqtt-url" content="${escapeAttribute(url ?? '')}">`,
  )
  .replace(
    `<meta name="discovery-prefix" content="${DEFAULT_PREFIX}">`,
    `<meta name="discovery-prefix" content="${escapeAttribute(prefix)}">`,
  )
const files: Record<string, { type: string; body: Buffer }> = {
  '/': { type: 'text/html; charset=utf-8', body: Buffer.from(html) },
  '/page.css': { type: 'text/css; charset=utf-8', body: await readFile(join(here, 'page.css')) },
  '/page.js': { type: 'text/javascript; charset=utf-8', body: pageScript },
}

const servePage: RequestListener = (req, res) => {
  const file = files[new URL(req.url ?? '/', 'http://localhost').pathname]
  if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res
      .writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
      .end('not found: the dashboard is at /\n')
    return
  }
  res.writeHead(200, {
    'content-type': file.type,
    'content-length': file.body.length,
    'cache-control': 'no-store',
    // The page runs only its own script and talks only to its own server and to a WebSocket broker;
    // MQTT.js keeps its keepalive timer in a worker it makes from a blob, so background tabs stay
    // connected.
    'content-security-policy':
      "default-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; worker-src blob:",
    'x-content-type-options': 'nosniff',
  })
  res.end(req.method === 'HEAD' ? undefined : file.body)
}

let close: () => Promise<unknown>
let pagePort: number
let serves: string
if (url === undefined) {
  const broker = await startBroker({
    host,
    port: portFlag('--port', values.port) ?? 1883,
    wsPort: httpPort,
    http: servePage,
  }).catch((error: unknown) => fail(messageOf(error)))
  close = () => broker.close()
  pagePort = Number(new URL(broker.wsUrl!).port)
  serves = `bundled broker on ${broker.url} and MQTT over WebSocket on the same port`
  // As npm run broker warns: the bundled broker asks for no password, and the page switches lights.
  if (!isLoopback(host)) {
    process.stderr.write(
      `warning: listening on ${host} without a password: anyone who can reach ` +
        'this machine can publish and subscribe, and switch your devices from the page; ' +
        'use it on a network you trust\n',
    )
  }
} else {
  const server = createServer(servePage)
  await new Promise<void>((resolve) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      fail(
        error.code === 'EADDRINUSE'
          ? `port ${httpPort} is already in use; pick another with --http-port`
          : `cannot serve the page on ${host}:${httpPort}: ${error.message}`,
      ),
    )
    server.listen(httpPort, host, resolve)
  })
  close = () => new Promise((done) => server.close(done))
  pagePort = (server.address() as { port: number }).port
  serves = `for the broker at ${url}`
}
const stop = () => {
  setTimeout(() => process.exit(0), 1000).unref()
  void close().then(() => process.exit(0))
}
// Before the line that says it is ready: whoever reads it may stop us at once.
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
console.log(`dashboard on ${pageUrls(pagePort).join(' and ')} (${serves}); Ctrl-C to stop`)

/**
 * --url, else MQTT_URL; a browser speaks MQTT over WebSocket only, so either must be ws:// or
 * wss://.
 */
function brokerUrl(): string | undefined {
  const [from, given] =
    values.url !== undefined ? ['--url', values.url] : ['MQTT_URL', process.env.MQTT_URL]
  if (given === undefined || given === '') return undefined
  let protocol: string
  try {
    protocol = new URL(given).protocol
  } catch {
    fail(
      `${from} ${JSON.stringify(given)} is not a URL; pass a broker's WebSocket URL, like ` +
        `ws://127.0.0.1:8080`,
    )
  }
  if (protocol !== 'ws:' && protocol !== 'wss:') {
    const unset = from === 'MQTT_URL' ? 'unset MQTT_URL to use the bundled broker, or ' : ''
    fail(
      `${from} is ${given}, but a browser reaches a broker over WebSocket only; ${unset}pass ` +
        `--url ws://HOST:PORT (the broker's WebSocket listener)`,
    )
  }
  return given
}

/**
 * The page's URLs: the one for this machine, or with --host 0.0.0.0 one per network address, the
 * phone's first.
 */
function pageUrls(port: number): string[] {
  const any = host === '0.0.0.0' || host === '::'
  const hosts = any
    ? Object.values(networkInterfaces())
        .flat()
        .filter((a) => a?.family === 'IPv4')
        .sort((a, b) => Number(a!.internal) - Number(b!.internal))
        .map((a) => a!.address)
    : [host]
  return hosts.map((h) => `http://${h.includes(':') ? `[${h}]` : h}:${port}/`)
}

function portFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const port = Number(value)
  if (!/^\d+$/.test(value) || port > 65535)
    fail(`${flag} must be a port number from 0 to 65535, not ${JSON.stringify(value)}`)
  return port
}

function escapeAttribute(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')
}
