// The flags every demo program takes (--url, --topic, --message, --qos, --retain, --id, --no-clean),
// parsed with node:util parseArgs and checked before anything reaches the broker. MQTT_URL sets the
// default --url, so a learner can point every demo at another broker (Mosquitto, say) at once.
import { relative } from 'node:path'
import { parseArgs } from 'node:util'
import type { QoS } from 'mqtt-packet'
import { fail, messageOf, startProgram } from './cli.ts'
import { topicFilterProblem, topicNameProblem } from './topics.ts'

export const DEFAULT_URL = 'mqtt://127.0.0.1:1883'

export interface ClientOptions {
  url: string
  /** Client identifier; MQTT.js makes up a random one when undefined. */
  id?: string
  /** false asks the broker to keep the session (subscriptions, queued QoS 1 and 2 messages) across connections. */
  clean: boolean
  qos: QoS
  /** Seconds of silence after which the client sends a PINGREQ (0: never); MQTT.js's 60 when undefined. */
  keepalive?: number
  /** For a broker that asks for them (npm run broker -- --username ... --password ...). */
  username?: string
  password?: string
}

export interface PublisherOptions extends ClientOptions {
  topic: string
  messages: string[]
  retain: boolean
}

export interface SubscriberOptions extends ClientOptions {
  topic: string
}

export interface Flag {
  type: 'string' | 'boolean'
  multiple?: boolean
  short?: string
  arg?: string
  help: string
}

export const clientFlags = {
  url: { type: 'string', arg: 'URL', help: `broker to connect to (default $MQTT_URL, else ${DEFAULT_URL})` },
  qos: { type: 'string', arg: 'N', help: 'quality of service: 0, 1 or 2 (default 0)' },
  id: { type: 'string', arg: 'ID', help: 'client identifier (default: a random one)' },
  'no-clean': { type: 'boolean', help: 'keep the session on the broker after disconnecting (needs --id)' },
  keepalive: { type: 'string', arg: 'SECONDS', help: 'ping the broker after this many seconds without a packet to send; 0 never (default 60)' },
  username: { type: 'string', arg: 'NAME', help: 'user name, for a broker that asks for one (default $MQTT_USERNAME)' },
  password: { type: 'string', arg: 'SECRET', help: 'password, for a broker that asks for one (default $MQTT_PASSWORD)' },
} satisfies Record<string, Flag>

/** Flags of a program that publishes: `description` is the first line of its --help. */
export function publisherOptions(description: string, defaults: { topic: string; message: string; retain?: boolean }): PublisherOptions {
  const flags = {
    ...clientFlags,
    topic: { type: 'string', arg: 'TOPIC', help: `topic name to publish to (default ${defaults.topic})` },
    message: { type: 'string', multiple: true, arg: 'TEXT', help: `payload; repeat to publish several in order (default ${defaults.message})` },
    retain: { type: 'boolean', help: 'ask the broker to keep the message for future subscribers' },
  } satisfies Record<string, Flag>
  const values = parseFlags(description, flags)
  const topic = values.topic ?? defaults.topic
  const problem = topicNameProblem(topic)
  if (problem) fail(`cannot publish to ${JSON.stringify(topic)}: ${problem}`)
  return {
    ...clientOptions(values),
    topic,
    messages: values.message ?? [defaults.message],
    retain: values.retain ?? defaults.retain ?? false,
  }
}

/** Flags of a program that subscribes: `description` is the first line of its --help. */
export function subscriberOptions(description: string, defaults: { topic: string }): SubscriberOptions {
  const flags = {
    ...clientFlags,
    topic: { type: 'string', arg: 'FILTER', help: `topic filter to subscribe to, + and # allowed (default ${defaults.topic})` },
  } satisfies Record<string, Flag>
  const values = parseFlags(description, flags)
  const topic = values.topic ?? defaults.topic
  const problem = topicFilterProblem(topic)
  if (problem) fail(`cannot subscribe to ${JSON.stringify(topic)}: ${problem}`)
  return { ...clientOptions(values), topic }
}

type Values<F extends Record<string, Flag>> = {
  [K in keyof F]?: F[K]['type'] extends 'boolean' ? boolean : F[K] extends { multiple: true } ? string[] : string
}

/** Parse process.argv against `flags` (plus --help); any mistake ends the program with one line. */
export function parseFlags<F extends Record<string, Flag>>(description: string, flags: F): Values<F> {
  startProgram()
  const all = { ...flags, help: { type: 'boolean', short: 'h', help: 'show this help' } }
  let values: Record<string, unknown>
  try {
    values = parseArgs({ options: all, allowPositionals: false, strict: true }).values
  } catch (error) {
    // parseArgs explains at length; the first sentence is the useful part.
    fail(`${messageOf(error).split('. ')[0].replace(/\.$/, '')}; see --help`)
  }
  if (values.help) {
    console.log(helpText(description, all))
    process.exit(0)
  }
  return values as Values<F>
}

/**
 * One broker URL of --url. In a list (several brokers sharing one Redis, say) each must be TCP or TLS:
 * MQTT.js takes a list as host, port and protocol only, so a WebSocket path or a socket file would be lost.
 */
function checkUrl(url: string, inList: boolean): void {
  let protocol: string
  try {
    protocol = new URL(url).protocol
  } catch {
    fail(`${JSON.stringify(url)} is not a URL; pass --url like ${DEFAULT_URL}`)
  }
  if (protocol === 'udp:') {
    fail(`cannot connect to ${url}: MQTT needs a two-way byte stream such as TCP, not UDP datagrams (MQTT 3.1.1 §4.2); over UDP devices speak MQTT-SN, a protocol of its own`)
  }
  if (inList && !['mqtt:', 'mqtts:'].includes(protocol)) {
    fail(`cannot connect to ${url}: a list of brokers in --url takes mqtt:// and mqtts:// URLs only, as in ${DEFAULT_URL},mqtt://127.0.0.1:1884`)
  }
  if (!['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'ws:', 'wss:', 'mqtt+unix:'].includes(protocol)) {
    fail(`cannot connect to ${url}: the protocol must be mqtt, mqtts, ws or wss (or mqtt+unix for a Unix socket), as in ${DEFAULT_URL}`)
  }
}

function helpText(description: string, flags: Record<string, Flag>): string {
  const rows = Object.entries(flags).map(([name, flag]) => {
    const left = `${flag.short ? `-${flag.short}, ` : ''}--${name}${flag.arg ? ` ${flag.arg}` : ''}`
    return `  ${left.padEnd(20)} ${flag.help}`
  })
  const program = relative(process.cwd(), process.argv[1] ?? 'program')
  return `usage: npx tsx ${program} [options]\n\n${description}\n\noptions:\n${rows.join('\n')}`
}

export function clientOptions(values: Values<typeof clientFlags>): ClientOptions {
  const url = values.url ?? process.env.MQTT_URL ?? DEFAULT_URL
  const urls = url.split(',')
  for (const one of urls) checkUrl(one, urls.length > 1)
  const qos = Number(values.qos ?? '0')
  if (!['0', '1', '2'].includes(values.qos ?? '0')) fail(`--qos must be 0, 1 or 2, not ${JSON.stringify(values.qos)}`)
  const clean = !values['no-clean']
  if (!clean && !values.id) fail('--no-clean needs --id: the broker finds a kept session by its client id')
  if (values.id === '') fail('--id must not be empty; leave it out to get a random client id')
  const keepalive = values.keepalive === undefined ? undefined : Number(values.keepalive)
  if (keepalive !== undefined && (!/^\d+$/.test(values.keepalive!) || keepalive > 65535)) {
    fail(`--keepalive must be a number of seconds from 0 to 65535, not ${JSON.stringify(values.keepalive)}`)
  }
  const username = values.username ?? process.env.MQTT_USERNAME
  const password = values.password ?? process.env.MQTT_PASSWORD
  if (password !== undefined && username === undefined) fail('a password needs a user name: add --username (or MQTT_USERNAME)')
  return { url, id: values.id, clean, qos: qos as QoS, keepalive, username, password }
}
