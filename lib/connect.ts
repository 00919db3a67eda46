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
  const { url } = options
  const client = mqtt.connect(url, {
    clientId: options.id,
    clean: options.clean,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: CONNECT_TIMEOUT_MS,
    ...(options.keepalive !== undefined && { keepalive: options.keepalive }),
    ...(options.username !== undefined && { username: options.username, password: options.password }),
    ...extra,
  })
  let stopping = false
  // A device or a listener (extra.reconnectPeriod) rides out a broker restart, as real ones do: once it
  // has been connected, a lost connection is one line and a retry every reconnectPeriod, not the end.
  const reconnects = (extra.reconnectPeriod ?? 0) > 0
  let connectedOnce = false
  let lost = false
  client.on('connect', () => {
    connectedOnce = true
    lost = false
  })
  client.on('error', (error) => {
    if (!(reconnects && connectedOnce)) fail(connectionProblem(url, error, client.connected))
  })
  client.on('close', () => {
    if (stopping || lost) return
    if (!connectedOnce) fail(`the broker at ${url} closed the connection before accepting it; check its log`)
    if (!reconnects) fail(`lost the connection to the broker at ${url}; is it still running? (start one with npm run broker)`)
    lost = true
    console.log(`lost the connection to the broker at ${url}; trying again every ${extra.reconnectPeriod! / 1000} s`)
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
