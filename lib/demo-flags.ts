// The flags every demo program takes (--url, --topic, --message, --qos, --retain, --id, --no-clean, -V...),
// parsed by lib/parse-flags.ts over the defaults that the demo writes down itself, and checked
// before anything reaches the broker. MQTT_URL sets the default --url, so a learner can point every
// demo at another broker (Mosquitto, say) at once.
import { readFileSync } from 'node:fs'
import { relative } from 'node:path'
import type { IClientOptions } from 'mqtt'
import type { QoS } from 'mqtt-packet'
import { fail, startProgram } from './cli.ts'
import { parseFlags as parse, type Flag, type Values } from './parse-flags.ts'
import { emptyLevelNote, topicFilterProblem, topicNameProblem } from './topics.ts'

export const DEFAULT_URL = 'mqtt://127.0.0.1:1883'

export interface ClientOptions {
  /** The broker to connect to; of a list (--url a,b), the first, the others being in connection.servers. */
  url: string
  /** Client identifier; MQTT.js makes up a random one when undefined. */
  clientId?: string
  /** false asks the broker to keep the session (subscriptions, queued QoS 1 and 2 messages) across connections. */
  clean: boolean
  qos: QoS
  /** The MQTT version spoken: 4 is MQTT 3.1.1 (the article's), 5 is MQTT 5 (-V 5). */
  version: 4 | 5
  /** Seconds of silence after which the client sends a PINGREQ (0: never); MQTT.js's 60 when undefined. */
  keepalive?: number
  /** For a broker that asks for them (npm run broker -- --username ... --password ...). */
  username?: string
  password?: string
  /** What to hand mqtt.connect() with the URL: the fields above, plus no retries, a 5 s wait for CONNACK and no number cache (and the list of brokers, if --url gave several). */
  connection: IClientOptions
}

/** What a demo does unless its flags say otherwise: written in the demo, so the reader sees it. */
export interface ClientDefaults {
  clientId?: string
  clean?: boolean
  qos?: QoS
  /** 4 (MQTT 3.1.1) unless said: the article's version. */
  version?: 4 | 5
}

export interface PublisherDefaults extends ClientDefaults {
  topic: string
  message: string
  retain?: boolean
}

export interface SubscriberDefaults extends ClientDefaults {
  topic: string
}

export interface PublisherOptions extends ClientOptions {
  topic: string
  messages: string[]
  retain: boolean
}

export interface SubscriberOptions extends ClientOptions {
  topic: string
}

export type { Flag }

/** How long a demo waits for the broker's CONNACK before it gives up. */
export const CONNECT_TIMEOUT_MS = 5000

/** The flags every client takes; the defaults shown in --help are the demo's own. */
export function clientFlags(defaults: ClientDefaults = {}) {
  const clean = defaults.clean ?? true
  return {
    url: { type: 'string', arg: 'URL', help: `broker to connect to (default $MQTT_URL, else ${DEFAULT_URL})` },
    'mqtt-version': {
      type: 'string', short: 'V', arg: 'VERSION',
      help: `MQTT version to speak: 5 or 3.1.1 (default ${defaults.version === 5 ? '5' : '3.1.1, the article\'s'})`,
    },
    qos: { type: 'string', arg: 'N', help: `quality of service: 0, 1 or 2 (default ${defaults.qos ?? 0})` },
    id: { type: 'string', arg: 'ID', help: `client identifier (default${defaults.clientId ? ` ${defaults.clientId}` : ': a random one'})` },
    'no-clean': { type: 'boolean', help: `keep the session on the broker after disconnecting (needs --id)${clean ? '' : '; the default here'}` },
    clean: { type: 'boolean', help: `start with a clean session, which ends when the client disconnects${clean ? '; the default here' : ''}` },
    keepalive: { type: 'string', arg: 'SECONDS', help: 'ping the broker after this many seconds without a packet to send; 0 never (default 60)' },
    username: { type: 'string', arg: 'NAME', help: 'user name, for a broker that asks for one (default $MQTT_USERNAME)' },
    password: { type: 'string', arg: 'SECRET', help: 'password, for a broker that asks for one (default $MQTT_PASSWORD)' },
  } satisfies Record<string, Flag>
}

/** The flags of a program that publishes, over the `defaults` written in it. */
export function publisherFlags(defaults: PublisherDefaults): PublisherOptions {
  return publisherOptions(parseFlags(programDescription(), publisherFlagSet(defaults)), defaults)
}

/** The flags publisherFlags() takes, for a program that takes more (demos/mqtt5/publisher.ts). */
export function publisherFlagSet(defaults: PublisherDefaults) {
  const retain = defaults.retain ?? false
  return {
    ...clientFlags(defaults),
    topic: { type: 'string', arg: 'TOPIC', help: `topic name to publish to (default ${defaults.topic})` },
    message: { type: 'string', multiple: true, arg: 'TEXT', help: `payload; repeat to publish several in order (default ${defaults.message})` },
    retain: { type: 'boolean', help: `ask the broker to keep the message for future subscribers${retain ? '; the default here' : ''}` },
    'no-retain': { type: 'boolean', help: `an ordinary message, forgotten once delivered${retain ? '' : '; the default here'}` },
  } satisfies Record<string, Flag>
}

/** What the flags of publisherFlagSet() say, checked; `session` as clientOptions() takes it. */
export function publisherOptions(values: Values<ReturnType<typeof publisherFlagSet>>, defaults: PublisherDefaults,
  session: { sessionExpiry?: number } = {}): PublisherOptions {
  const topic = values.topic ?? defaults.topic
  const problem = topicNameProblem(topic)
  if (problem) fail(`cannot publish to ${JSON.stringify(topic)}: ${problem}`)
  noteEmptyLevels(topic)
  return {
    ...clientOptions(values, defaults, session),
    topic,
    messages: values.message ?? [defaults.message],
    retain: either('--retain', values.retain, '--no-retain', values['no-retain']) ?? defaults.retain ?? false,
  }
}

/** The flags of a program that subscribes, over the `defaults` written in it. */
export function subscriberFlags(defaults: SubscriberDefaults): SubscriberOptions {
  return subscriberOptions(parseFlags(programDescription(), subscriberFlagSet(defaults)), defaults)
}

/** The flags subscriberFlags() takes, for a program that takes more (demos/mqtt5/subscriber.ts). */
export function subscriberFlagSet(defaults: SubscriberDefaults) {
  return {
    ...clientFlags(defaults),
    topic: { type: 'string', arg: 'FILTER', help: `topic filter to subscribe to, + and # allowed, quoted (default ${defaults.topic})` },
  } satisfies Record<string, Flag>
}

/** What the flags of subscriberFlagSet() say, checked; `session` as clientOptions() takes it. */
export function subscriberOptions(values: Values<ReturnType<typeof subscriberFlagSet>>, defaults: SubscriberDefaults,
  session: { sessionExpiry?: number } = {}): SubscriberOptions {
  const topic = values.topic ?? defaults.topic
  const problem = topicFilterProblem(topic)
  if (problem) fail(`cannot subscribe to ${JSON.stringify(topic)}: ${problem}`)
  noteEmptyLevels(topic)
  return { ...clientOptions(values, defaults, session), topic }
}

/** A topic that starts or ends with / is valid but rarely meant: say what it is, on stderr, and go on. */
export function noteEmptyLevels(topic: string): void {
  const note = emptyLevelNote(topic)
  if (note) process.stderr.write(`note: ${note}\n`)
}

/** `--x` gives true, `--no-x` false, neither undefined; both at once is a mistake. */
function either(yes: string, on: boolean | undefined, no: string, off: boolean | undefined): boolean | undefined {
  if (on && off) fail(`${yes} and ${no} contradict each other; give one of them`)
  return on ? true : off ? false : undefined
}

/** The first line of the running program, its comment saying what it is for: the first line of --help. */
export function programDescription(): string {
  const script = process.argv[1]
  const first = script ? readFileSync(script, 'utf8').split('\n')[0] : ''
  return first.replace(/^(\/\/|#)\s*/, '')
}

/** Parse process.argv against `flags` (plus --help); any mistake ends the program with one line. */
export function parseFlags<F extends Record<string, Flag>>(description: string, flags: F): Values<F> {
  startProgram()
  const program = relative(process.cwd(), process.argv[1] ?? 'program')
  return parse({ invocation: `npx tsx ${program}`, description }, flags).values
}

/**
 * What --url gives. A program that reconnects (`list`: a device, a listener) may take several brokers,
 * a,b (sharing one Redis, say): MQTT.js's `servers` option tries the next at each attempt. Each must
 * then be TCP or TLS: MQTT.js takes a server of a list as host, port and protocol only, so a WebSocket
 * path or a socket file would be lost.
 */
function brokers(url: string, list: boolean): { url: string; servers?: IClientOptions['servers'] } {
  const urls = url.split(',')
  if (urls.length > 1 && !list) {
    fail(`${url} lists several brokers, which only a program that reconnects (a device, a listener) tries in turn; give this one a single URL`)
  }
  for (const one of urls) checkUrl(one, urls.length > 1)
  if (urls.length === 1) return { url }
  const servers = urls.map((one) => {
    const { hostname, port, protocol } = new URL(one)
    const secure = protocol === 'mqtts:'
    return { host: hostname.replace(/^\[|\]$/g, ''), port: Number(port || (secure ? 8883 : 1883)), protocol: secure ? 'mqtts' as const : 'mqtt' as const }
  })
  return { url: urls[0], servers }
}

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

/** What -V takes: the spellings of mosquitto_pub and MQTTX (5, mqttv5; 3.1.1, 311, mqttv311). */
const VERSIONS: Record<string, 4 | 5> = { '5': 5, mqttv5: 5, '3.1.1': 4, '311': 4, mqttv311: 4 }

/**
 * The options of a client's connection, from its flags over its `defaults`. `list`: --url may name
 * several brokers. `sessionExpiry`: the Session Expiry Interval an MQTT 5 program asks for, if it asks.
 */
export function clientOptions(values: Values<ReturnType<typeof clientFlags>>, defaults: ClientDefaults = {},
  { list = false, sessionExpiry }: { list?: boolean; sessionExpiry?: number } = {}): ClientOptions {
  const { url, servers } = brokers(values.url ?? process.env.MQTT_URL ?? DEFAULT_URL, list)
  const versionText = values['mqtt-version']
  const version = versionText === undefined ? defaults.version ?? 4 : VERSIONS[versionText]
  if (version === undefined) fail(`-V (--mqtt-version) must be 5 or 3.1.1, not ${JSON.stringify(versionText)}`)
  const qosText = values.qos ?? String(defaults.qos ?? 0)
  if (!['0', '1', '2'].includes(qosText)) fail(`--qos must be 0, 1 or 2, not ${JSON.stringify(values.qos)}`)
  const qos = Number(qosText) as QoS
  if (values.id === '') fail('--id must not be empty; leave it out to get a random client id')
  const clientId = values.id ?? defaults.clientId
  const clean = either('--clean', values.clean, '--no-clean', values['no-clean']) ?? defaults.clean ?? true
  if (!clean && !clientId) fail('--no-clean needs --id: the broker finds a kept session by its client id')
  // MQTT 5 §3.1.2.11.2: Clean Start 0 alone keeps no session; the Session Expiry Interval says how long it lasts.
  if (version === 5 && !clean && sessionExpiry === undefined) {
    process.stderr.write('note: MQTT 5 keeps a session only for its Session Expiry Interval, and this one has none: '
      + 'it ends with the connection\n')
  }
  const keepalive = values.keepalive === undefined ? undefined : Number(values.keepalive)
  if (keepalive !== undefined && (!/^\d+$/.test(values.keepalive!) || keepalive > 65535)) {
    fail(`--keepalive must be a number of seconds from 0 to 65535, not ${JSON.stringify(values.keepalive)}`)
  }
  const username = values.username ?? process.env.MQTT_USERNAME
  const password = values.password ?? process.env.MQTT_PASSWORD
  if (password !== undefined && username === undefined) fail('a password needs a user name: add --username (or MQTT_USERNAME)')
  const connection: IClientOptions = {
    clientId,
    clean,
    // MQTT 3.1.1, the article's version, unless -V 5.
    protocolVersion: version,
    // No retries: a demo whose broker is not there says so and exits (see problems.ts).
    reconnectPeriod: 0,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // MQTT.js's writer (mqtt-packet) would otherwise make, at its first packet, a 2-byte buffer for each
    // of the 65,536 numbers a packet may carry, to copy instead of write: a tenth of a second of CPU,
    // half of it garbage collection, which is a third of what a demo costs to run. A program that
    // sends a few packets gains nothing from it.
    writeCache: false,
    ...(keepalive !== undefined && { keepalive }),
    ...(username !== undefined && { username, password }),
    ...(servers && { servers }),
  }
  return { url, clientId, clean, qos, version, keepalive, username, password, connection }
}
