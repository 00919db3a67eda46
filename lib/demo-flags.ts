// The flags every demo program takes (--url, --topic, --message, --qos, --retain, --id, --no-clean,
// -V...), parsed by lib/parse-flags.ts and checked before anything reaches the broker. A demo
// writes what it does in its MQTT.js calls, `retain: flags.retain ?? true`: each flag is undefined
// unless given, and the literal after ?? stands. --help shows those literals as the defaults, read
// from the program's source (writtenInCalls). MQTT_URL sets the default --url, so a learner can
// point every demo at another broker (Mosquitto, say) at once.
import { readFileSync } from 'node:fs'
import { relative } from 'node:path'
import { createSecureContext } from 'node:tls'
import type { IClientOptions } from 'mqtt'
import type { QoS } from 'mqtt-packet'
import { fail, messageOf, startProgram } from './cli.ts'
import { parseFlags as parse, type Flag, type Values } from './parse-flags.ts'
import { emptyLevelNote, topicFilterProblem, topicNameProblem } from './topics.ts'

export const DEFAULT_URL = 'mqtt://127.0.0.1:1883'

/**
 * What a program writes in its calls where a flag may replace it, by the flag's name in `flags`
 * (`flags.id ?? 'alice'` is id: 'alice'): see writtenInCalls().
 */
export interface Written {
  topic?: string
  messages?: string[]
  qos?: QoS
  retain?: boolean
  id?: string
  clean?: boolean
  username?: string
  /** Written in no call: 5 for a program that speaks MQTT 5 only; 4 (MQTT 3.1.1) otherwise. */
  version?: 4 | 5
}

/** The flags of every client, checked. id, clean and qos are undefined unless given. */
export interface ClientFlags {
  /** The broker; of a list (--url a,b), the first, the others being in connection.servers. */
  url: string
  /**
   * What to hand mqtt.connect() with the URL: no retries, a 5 s wait for CONNACK, no number cache,
   * the version, and what --id, --clean or --no-clean, --keepalive, --username and --cafile, --cert
   * and --key give.
   */
  connection: IClientOptions
  /** The MQTT version spoken: 4 is MQTT 3.1.1 (the article's), 5 is MQTT 5 (-V 5). */
  version: 4 | 5
  /** --id: the client identifier. */
  id?: string
  /** --clean (true) or --no-clean (false): whether the session ends with the connection. */
  clean?: boolean
  /** --qos */
  qos?: QoS
  /** --username (or MQTT_USERNAME) and --password (or MQTT_PASSWORD). */
  username?: string
  password?: string
  /** What --cafile, --cert and --key name, read: the CA to trust, our certificate and its key. */
  ca?: Buffer
  cert?: Buffer
  key?: Buffer
}

/** A publisher's flags: --topic, --message (repeated: several), --retain or --no-retain. */
export interface PublisherFlags extends ClientFlags {
  topic?: string
  messages?: string[]
  retain?: boolean
}

/** A subscriber's flags: --topic, its filter. */
export interface SubscriberFlags extends ClientFlags {
  topic?: string
}

export type { Flag }

/** How long a demo waits for the broker's CONNACK before it gives up. */
export const CONNECT_TIMEOUT_MS = 5000

/** The flags every client takes; the defaults shown in --help are what the program writes. */
export function clientFlags(written: Written = {}) {
  const clean = written.clean ?? true
  return {
    url: {
      type: 'string',
      arg: 'URL',
      help: `broker to connect to (default $MQTT_URL, else ${DEFAULT_URL})`,
    },
    'mqtt-version': {
      type: 'string',
      short: 'V',
      arg: 'VERSION',
      help: `MQTT version to speak: 5 or 3.1.1 (default ${
        written.version === 5 ? '5' : "3.1.1, the article's"
      })`,
    },
    qos: {
      type: 'string',
      arg: 'N',
      help: `quality of service: 0, 1 or 2 (default ${written.qos ?? 0})`,
    },
    id: {
      type: 'string',
      arg: 'ID',
      help: `client identifier (default${written.id ? ` ${written.id}` : ': a random one'})`,
    },
    'no-clean': {
      type: 'boolean',
      help:
        'keep the session on the broker after disconnecting (needs --id)' +
        (clean ? '' : '; the default here'),
    },
    clean: {
      type: 'boolean',
      help:
        'start with a clean session, which ends when the client disconnects' +
        (clean ? '; the default here' : ''),
    },
    keepalive: {
      type: 'string',
      arg: 'SECONDS',
      help:
        'ping the broker after this many seconds without a packet to send; 0 never (default ' +
        '60)',
    },
    username: {
      type: 'string',
      arg: 'NAME',
      help: `user name, for a broker that asks for one (default $MQTT_USERNAME${
        written.username ? `, else ${written.username}` : ''
      })`,
    },
    password: {
      type: 'string',
      arg: 'SECRET',
      help: 'password, for a broker that asks for one (default $MQTT_PASSWORD)',
    },
    cafile: {
      type: 'string',
      arg: 'FILE',
      help: "the CA to trust for mqtts:// and wss:// (default the system's)",
    },
    cert: {
      type: 'string',
      arg: 'FILE',
      help: 'client certificate to show a broker that asks for one (needs --key)',
    },
    key: { type: 'string', arg: 'FILE', help: 'the private key of --cert' },
  } satisfies Record<string, Flag>
}

/** The flags of a program that publishes, over what its calls write. */
export function publisherFlags(): PublisherFlags {
  const written = writtenInCalls()
  return publisherOptions(parseFlags(programDescription(), publisherFlagSet(written)), written)
}

/** The flags publisherFlags() takes, for a program that takes more (demos/mqtt5/publisher.ts). */
export function publisherFlagSet(written: Written) {
  const retain = written.retain ?? false
  return {
    ...clientFlags(written),
    topic: {
      type: 'string',
      arg: 'TOPIC',
      help: `topic name to publish to${byDefault(written.topic)}`,
    },
    message: {
      type: 'string',
      multiple: true,
      arg: 'TEXT',
      help: `payload; repeat to publish several in order${byDefault(written.messages?.join(', '))}`,
    },
    retain: {
      type: 'boolean',
      help:
        'ask the broker to keep the message for future subscribers' +
        (retain ? '; the default here' : ''),
    },
    'no-retain': {
      type: 'boolean',
      help: `an ordinary message, forgotten once delivered${retain ? '' : '; the default here'}`,
    },
  } satisfies Record<string, Flag>
}

/** What the flags of publisherFlagSet() say, checked; `session` as clientOptions() takes it. */
export function publisherOptions(
  values: Values<ReturnType<typeof publisherFlagSet>>,
  written: Written,
  session: { sessionExpiry?: number } = {},
): PublisherFlags {
  const topic = values.topic ?? written.topic
  if (topic !== undefined) {
    const problem = topicNameProblem(topic)
    if (problem) fail(`cannot publish to ${JSON.stringify(topic)}: ${problem}`)
    noteEmptyLevels(topic)
  }
  return {
    ...clientOptions(values, written, session),
    topic: values.topic,
    messages: values.message,
    retain: either('--retain', values.retain, '--no-retain', values['no-retain']),
  }
}

/** The flags of a program that subscribes, over what its calls write. */
export function subscriberFlags(): SubscriberFlags {
  const written = writtenInCalls()
  return subscriberOptions(parseFlags(programDescription(), subscriberFlagSet(written)), written)
}

/** The flags subscriberFlags() takes, for a program that takes more (demos/mqtt5/subscriber.ts). */
export function subscriberFlagSet(written: Written) {
  return {
    ...clientFlags(written),
    topic: {
      type: 'string',
      arg: 'FILTER',
      help: `topic filter to subscribe to, + and # allowed, quoted${byDefault(written.topic)}`,
    },
  } satisfies Record<string, Flag>
}

/** What the flags of subscriberFlagSet() say, checked; `session` as clientOptions() takes it. */
export function subscriberOptions(
  values: Values<ReturnType<typeof subscriberFlagSet>>,
  written: Written,
  session: { sessionExpiry?: number } = {},
): SubscriberFlags {
  const topic = values.topic ?? written.topic
  if (topic !== undefined) {
    const problem = topicFilterProblem(topic)
    if (problem) fail(`cannot subscribe to ${JSON.stringify(topic)}: ${problem}`)
    noteEmptyLevels(topic)
  }
  return { ...clientOptions(values, written, session), topic: values.topic }
}

/** ` (default X)` for --help, or nothing when the program writes no X. */
function byDefault(value: string | undefined): string {
  return value === undefined ? '' : ` (default ${value})`
}

/**
 * A topic that starts or ends with / is valid but rarely meant: say what it is, on stderr, and go
 * on.
 */
function noteEmptyLevels(topic: string): void {
  const note = emptyLevelNote(topic)
  if (note) process.stderr.write(`note: ${note}\n`)
}

/** `--x` gives true, `--no-x` false, neither undefined; both at once is a mistake. */
function either(
  yes: string,
  on: boolean | undefined,
  no: string,
  off: boolean | undefined,
): boolean | undefined {
  if (on && off) fail(`${yes} and ${no} contradict each other; give one of them`)
  return on ? true : off ? false : undefined
}

/** The source of the running program (a bundle keeps the source's path in argv[1]). */
function programSource(): string {
  const script = process.argv[1]
  return script ? readFileSync(script, 'utf8') : ''
}

/**
 * The first line of the running program, its comment saying what it is for: the first line of
 * --help.
 */
export function programDescription(): string {
  return programSource()
    .split('\n')[0]
    .replace(/^(\/\/|#)\s*/, '')
}

/** `flags.NAME ?? LITERAL`, the literal a string, a list of strings, a number, true or false. */
const WRITTEN = /\bflags\.(\w+) \?\? ('[^'\n]*'|\[[^\]\n]*\]|true|false|\d+)/g

/**
 * What the running program writes in its calls where a flag may replace it: each `flags.NAME ??
 * LITERAL` of its source, read as the first line of --help is. --help shows them as the defaults,
 * and the checks see them as the call will (--no-clean needs a client id, unless the call writes
 * one).
 */
export function writtenInCalls(): Written {
  const written: Record<string, unknown> = {}
  for (const [, name, literal] of programSource().matchAll(WRITTEN)) {
    written[name] = literal.startsWith("'")
      ? literal.slice(1, -1)
      : literal.startsWith('[')
        ? [...literal.matchAll(/'([^']*)'/g)].map(([, text]) => text)
        : literal === 'true' || literal === 'false'
          ? literal === 'true'
          : Number(literal)
  }
  return written
}

/** Parse process.argv against `flags` (plus --help); any mistake ends the program with one line. */
export function parseFlags<F extends Record<string, Flag>>(
  description: string,
  flags: F,
): Values<F> {
  startProgram()
  const program = relative(process.cwd(), process.argv[1] ?? 'program')
  return parse({ invocation: `npx tsx ${program}`, description }, flags).values
}

/**
 * What --url gives. A program that reconnects (`list`: a device, a listener) may take several
 * brokers, a,b (sharing one Redis, say): MQTT.js's `servers` option tries the next at each attempt.
 * Each must then be TCP or TLS: MQTT.js takes a server of a list as host, port and protocol only,
 * so a WebSocket path or a socket file would be lost.
 */
function brokers(url: string, list: boolean): { url: string; servers?: IClientOptions['servers'] } {
  const urls = url.split(',')
  if (urls.length > 1 && !list) {
    fail(
      `${url} lists several brokers, which only a program that reconnects (a device, a listener) ` +
        `tries in turn; give this one a single URL`,
    )
  }
  for (const one of urls) checkUrl(one, urls.length > 1)
  if (urls.length === 1) return { url }
  const servers = urls.map((one) => {
    const { hostname, port, protocol } = new URL(one)
    const secure = protocol === 'mqtts:'
    return {
      host: hostname.replace(/^\[|\]$/g, ''),
      port: Number(port || (secure ? 8883 : 1883)),
      protocol: secure ? ('mqtts' as const) : ('mqtt' as const),
    }
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
    fail(
      `cannot connect to ${url}: MQTT needs a two-way byte stream such as TCP, not UDP datagrams ` +
        `(MQTT 3.1.1 §4.2); over UDP devices speak MQTT-SN, a protocol of its own`,
    )
  }
  if (inList && !['mqtt:', 'mqtts:'].includes(protocol)) {
    fail(
      `cannot connect to ${url}: a list of brokers in --url takes mqtt:// and mqtts:// URLs ` +
        `only, as in ${DEFAULT_URL},mqtt://127.0.0.1:1884`,
    )
  }
  if (!['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'ws:', 'wss:', 'mqtt+unix:'].includes(protocol)) {
    fail(
      `cannot connect to ${url}: the protocol must be mqtt, mqtts, ws or wss (or mqtt+unix for a ` +
        `Unix socket), as in ${DEFAULT_URL}`,
    )
  }
}

/** What -V takes: the spellings of mosquitto_pub and MQTTX (5, mqttv5; 3.1.1, 311, mqttv311). */
const VERSIONS: Record<string, 4 | 5> = { '5': 5, mqttv5: 5, '3.1.1': 4, '311': 4, mqttv311: 4 }

/**
 * The options of a client's connection, from its flags over what its calls write. `list`: --url may
 * name several brokers. `sessionExpiry`: the Session Expiry Interval an MQTT 5 program asks for.
 */
export function clientOptions(
  values: Values<ReturnType<typeof clientFlags>>,
  written: Written = {},
  { list = false, sessionExpiry }: { list?: boolean; sessionExpiry?: number } = {},
): ClientFlags {
  const { url, servers } = brokers(values.url ?? process.env.MQTT_URL ?? DEFAULT_URL, list)
  const versionText = values['mqtt-version']
  const version = versionText === undefined ? (written.version ?? 4) : VERSIONS[versionText]
  if (version === undefined)
    fail(`-V (--mqtt-version) must be 5 or 3.1.1, not ${JSON.stringify(versionText)}`)
  if (values.qos !== undefined && !['0', '1', '2'].includes(values.qos)) {
    fail(`--qos must be 0, 1 or 2, not ${JSON.stringify(values.qos)}`)
  }
  const qos = values.qos === undefined ? undefined : (Number(values.qos) as QoS)
  if (values.id === '') fail('--id must not be empty; leave it out to get a random client id')
  const id = values.id
  const clean = either('--clean', values.clean, '--no-clean', values['no-clean'])
  // What the call will send: the flag, or else what the program writes, or else MQTT.js's default.
  const keeps = !(clean ?? written.clean ?? true)
  if (keeps && !(id ?? written.id)) {
    fail('--no-clean needs --id: the broker finds a kept session by its client id')
  }
  // MQTT 5 §3.1.2.11.2: Clean Start 0 alone keeps no session; the Session Expiry Interval says how
  // long it lasts.
  if (version === 5 && keeps && sessionExpiry === undefined) {
    process.stderr.write(
      'note: MQTT 5 keeps a session only for its Session Expiry Interval, and this one has none: ' +
        'it ends with the connection\n',
    )
  }
  const keepalive = values.keepalive === undefined ? undefined : Number(values.keepalive)
  if (keepalive !== undefined && (!/^\d+$/.test(values.keepalive!) || keepalive > 65535)) {
    fail(
      `--keepalive must be a number of seconds from 0 to 65535, not ` +
        `${JSON.stringify(values.keepalive)}`,
    )
  }
  const username = values.username ?? process.env.MQTT_USERNAME
  const password = values.password ?? process.env.MQTT_PASSWORD
  if (password !== undefined && (username ?? written.username) === undefined)
    fail('a password needs a user name: add --username (or MQTT_USERNAME)')
  const tls = tlsOptions(url, values)
  const connection: IClientOptions = {
    ...(id !== undefined && { clientId: id }),
    ...(clean !== undefined && { clean }),
    // MQTT 3.1.1, the article's version, unless -V 5.
    protocolVersion: version,
    // No retries: a demo whose broker is not there says so and exits (see problems.ts).
    reconnectPeriod: 0,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // MQTT.js's writer (mqtt-packet) would otherwise make, at its first packet, a 2-byte buffer for
    // each of the 65,536 numbers a packet may carry, to copy instead of write: a tenth of a second
    // of CPU, half of it garbage collection, which is a third of what a demo costs to run. A
    // program that sends a few packets gains nothing from it.
    writeCache: false,
    ...(keepalive !== undefined && { keepalive }),
    ...(username !== undefined && { username, password }),
    ...tls,
    ...(servers && { servers }),
  }
  return { url, connection, version, id, clean, qos, username, password, ...tls }
}

/**
 * What --cafile, --cert and --key give a TLS connection: the files' contents, read and checked
 * now, so that a missing file or a key of another certificate is one line before any connection.
 */
function tlsOptions(
  url: string,
  values: Values<ReturnType<typeof clientFlags>>,
): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
  const { cafile, cert, key } = values
  if (cafile === undefined && cert === undefined && key === undefined) return {}
  if (!/^(mqtts|wss|ssl):/.test(url)) {
    const given = cafile !== undefined ? '--cafile' : cert !== undefined ? '--cert' : '--key'
    fail(`${given} is for a TLS connection, and ${url} is plain; use mqtts:// (or wss://)`)
  }
  if ((cert === undefined) !== (key === undefined))
    fail('--cert and --key go together: the certificate, and the private key it was made for')
  const read = (flag: string, file: string) => {
    try {
      return readFileSync(file)
    } catch (error) {
      const why =
        (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : messageOf(error)
      return fail(`cannot read ${flag} ${file} (${why}); check the path`)
    }
  }
  const options = {
    ...(cafile !== undefined && { ca: read('--cafile', cafile) }),
    ...(cert !== undefined && { cert: read('--cert', cert), key: read('--key', key!) }),
  }
  try {
    createSecureContext(options)
  } catch (error) {
    const reason = (error as { reason?: string }).reason ?? messageOf(error)
    if (reason === 'key values mismatch')
      fail(`--key ${key} is not the key of --cert ${cert}; give the key made with that certificate`)
    const files = [cafile, cert, key].filter(Boolean).join(', ')
    fail(`cannot use ${files} for TLS (${reason}); give PEM files, as openssl writes them`)
  }
  return options
}
