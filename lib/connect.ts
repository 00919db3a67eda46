// Connect to the broker or fail fast with one actionable line. MQTT.js on its own retries forever
// when the broker is down, which on stage looks like a hang; here a demo says what is wrong and exits 1.
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { fail, messageOf } from './cli.ts'
import type { ClientOptions } from './options.ts'

/** How long to wait for the broker's CONNACK before giving up. */
const CONNECT_TIMEOUT_MS = 5000

/**
 * Start connecting with `options` (plus any MQTT.js options in `extra`, such as a Last Will).
 * Any failure to connect, or a lost connection later, ends the program with one line and exit 1;
 * Ctrl-C (SIGINT) or SIGTERM runs `beforeStop` (a last publish, say), then disconnects cleanly and
 * exits 0.
 */
export function connect(options: ClientOptions, extra: IClientOptions = {}, beforeStop?: () => Promise<void>): MqttClient {
  const urls = options.url.split(',')
  // A device or a listener (extra.reconnectPeriod) rides out a broker restart, as real ones do: once it
  // has been connected, a lost connection is one line and a retry every reconnectPeriod, not the end.
  const reconnects = (extra.reconnectPeriod ?? 0) > 0
  if (urls.length > 1 && !reconnects) {
    fail(`${options.url} lists several brokers, which only a program that reconnects (a device, a listener) tries in turn; give this one a single URL`)
  }
  const client = mqtt.connect(urls[0], {
    // Several brokers (--url a,b): MQTT.js takes the next one at each attempt to connect.
    ...(urls.length > 1 && { servers: urls.map(server) }),
    clientId: options.id,
    clean: options.clean,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: CONNECT_TIMEOUT_MS,
    ...(options.keepalive !== undefined && { keepalive: options.keepalive }),
    ...(options.username !== undefined && { username: options.username, password: options.password }),
    ...extra,
  })
  given.set(client, options.url)
  const url = () => brokerUrl(client)
  let stopping = false
  let connectedOnce = false
  let lost = false
  // Before the first connection, a list of brokers is tried once each; the last failure is the one reported.
  let untried = urls.length - 1
  let attemptFailed = false
  const firstAttemptFailed = (problem: string) => {
    if (attemptFailed) return
    attemptFailed = true
    if (!reconnects || untried-- === 0) fail(problem)
    console.log(`${problem.split(';')[0]}; trying the next one`)
  }
  client.on('reconnect', () => (attemptFailed = false))
  client.on('connect', () => {
    connectedOnce = true
    lost = false
  })
  client.on('error', (error) => {
    // Stopping: a QoS 1 message that arrives meanwhile has its PUBACK written after the end ("write after end").
    if (stopping) return
    if (!connectedOnce) firstAttemptFailed(connectionProblem(url(), error, client.connected))
    else if (!reconnects) fail(connectionProblem(url(), error, client.connected))
  })
  client.on('close', () => {
    if (stopping || lost) return
    if (!connectedOnce) return firstAttemptFailed(`the broker at ${url()} closed the connection before accepting it; check its log`)
    if (!reconnects) fail(`lost the connection to the broker at ${url()}; is it still running? (start one with npm run broker)`)
    lost = true
    console.log(`lost the connection to the broker at ${url()}; trying ${urls.length > 1 ? 'the next one' : 'again'} every ${extra.reconnectPeriod! / 1000} s`)
  })
  const stop = () => {
    stopping = true
    setTimeout(() => process.exit(0), 1000).unref()
    const last = client.connected && beforeStop ? beforeStop().catch(() => undefined) : Promise.resolve()
    void last.then(() => client.end(false, {}, () => process.exit(0)))
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  return client
}

const given = new WeakMap<MqttClient, string>()

/** The URL of the broker `client` is connected to, or last tried: the one given, or one of a list. */
export function brokerUrl(client: MqttClient): string {
  const url = given.get(client) ?? ''
  if (!url.includes(',')) return url
  const { protocol, hostname, host, port } = client.options
  return `${protocol}://${hostname ?? host}:${port}`
}

/** One broker of a list, as MQTT.js's `servers` option takes it (options.ts allows only mqtt and mqtts there). */
function server(url: string): { host: string; port: number; protocol: 'mqtt' | 'mqtts' } {
  const { hostname, port, protocol } = new URL(url)
  const secure = protocol === 'mqtts:'
  return { host: hostname.replace(/^\[|\]$/g, ''), port: Number(port || (secure ? 8883 : 1883)), protocol: secure ? 'mqtts' : 'mqtt' }
}

/** Disconnect cleanly, letting QoS 1 and 2 messages in flight finish first. */
export function disconnect(client: MqttClient): Promise<void> {
  client.removeAllListeners('close')
  return client.endAsync()
}

function connectionProblem(url: string, error: Error & { code?: unknown }, connected: boolean): string {
  const refusals: Record<number, string> = {
    1: 'it does not speak this protocol version (MQTT 3.1.1)',
    2: 'it rejected the client id; pass another --id',
    3: 'the server is unavailable',
    4: 'bad user name or password; pass --username and --password (or set MQTT_USERNAME and MQTT_PASSWORD)',
    5: 'this client is not authorised',
  }
  switch (error.code) {
    case 'ECONNREFUSED':
      return `cannot reach the broker at ${url} (connection refused); start one with npm run broker, or pass --url`
    case 'ENOENT':
      return `no broker socket at ${url}; start one with npm run broker -- --unix PATH, or check --url`
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot find the host of ${url}; check --url or MQTT_URL`
    case 'ECONNRESET':
    case 'EPIPE':
      return `the broker at ${url} closed the connection; check its log`
  }
  if (typeof error.code === 'number' && refusals[error.code]) {
    return `the broker at ${url} refused the connection: ${refusals[error.code]} (return code ${error.code})`
  }
  if (error.message === 'connack timeout') {
    return `no answer from ${url} within ${CONNECT_TIMEOUT_MS / 1000} s; is an MQTT broker listening there? check --url`
  }
  if (!connected) return `cannot talk MQTT with ${url} (${error.message}); is an MQTT broker listening there? check --url`
  return `the connection to ${url} failed: ${messageOf(error)}`
}
