// Mosquitto's configuration file (`npm run broker -- -c FILE`), for the options a learner meets:
// listeners (plain, TLS, WebSocket), who may connect (allow_anonymous, password_file, acl_file,
// client certificates) and persistence, with Mosquitto 2.0's defaults. Read the way Mosquitto
// reads it: `#` in the first column starts a comment, words are split on spaces, a path is the
// rest of the line. An option it cannot honour stops it with the file, the line and the option;
// those that only change what Mosquitto logs or how often it saves are ignored with a warning.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { messageOf } from '../cli.ts'

/** Who may connect and what they may do: per listener, or for all (per_listener_settings). */
export interface SecuritySettings {
  /** Unset means Mosquitto 2's default: refused, unless the file has no listener at all. */
  allowAnonymous?: boolean
  passwordFile?: string
  aclFile?: string
}

export interface ListenerSettings {
  port: number
  /** Undefined: every interface, as Mosquitto listens when a listener names no address. */
  host?: string
  protocol: 'mqtt' | 'websockets'
  cafile?: string
  certfile?: string
  keyfile?: string
  requireCertificate: boolean
  useIdentityAsUsername: boolean
  security: SecuritySettings
  /** `FILE:LINE` of its `listener` line, for the messages that concern it. */
  where: string
}

export interface BrokerConfig {
  /** Empty when the file has no `listener`: then Mosquitto listens on loopback port 1883 only. */
  listeners: ListenerSettings[]
  /** The settings of every listener when per_listener_settings is false (the default). */
  security: SecuritySettings
  perListenerSettings: boolean
  /** The store's directory when `persistence true`. */
  persist?: string
  /** One line per option ignored. */
  warnings: string[]
}

/**
 * Options that change only what is logged, or how often the store is written: safe to ignore.
 * Why each is safe is said in docs/conformance.md.
 */
export const IGNORED = new Set([
  'autosave_interval',
  'autosave_on_changes',
  'connection_messages',
  'log_dest',
  'log_facility',
  'log_timestamp',
  'log_timestamp_format',
  'log_type',
  'persistence_file',
  'pid_file',
  'set_tcp_nodelay',
  'sys_interval',
  'user',
  'websockets_log_level',
])

/** The options that belong to the last `listener` line above them. */
const PER_LISTENER = new Set([
  'protocol',
  'cafile',
  'certfile',
  'keyfile',
  'require_certificate',
  'use_identity_as_username',
])

/** Read `file`; throws one line (`FILE:LINE: ...`) at the first line it cannot honour. */
export function readConfig(file: string): BrokerConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new Error(`cannot read the configuration file ${file}: ${messageOf(error)}`)
  }
  const config: BrokerConfig = {
    listeners: [],
    security: {},
    perListenerSettings: false,
    warnings: [],
  }
  let persistence = false
  let location: string | undefined
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/\r+$/, '')
    if (line.startsWith('#')) return
    const words = line.split(' ').filter(Boolean)
    const [option, value] = words
    if (option === undefined) return
    const where = `${file}:${index + 1}`
    const fail = (problem: string): never => {
      throw new Error(`${where}: ${problem}`)
    }
    // A path or a name: the rest of the line, as Mosquitto takes it.
    const rest = () =>
      line.slice(line.indexOf(option) + option.length).trim() || fail(`${option} needs a value`)
    const flag = () => {
      if (value === 'true' || value === '1') return true
      if (value === 'false' || value === '0') return false
      return fail(`${option} is true or false, not ${JSON.stringify(value ?? '')}`)
    }
    const listener = config.listeners.at(-1)
    if (PER_LISTENER.has(option) && listener === undefined)
      fail(`${option} belongs to a listener: put it below a line such as listener 8883`)
    if (IGNORED.has(option)) {
      config.warnings.push(
        `${where}: ${option} ignored: the bundled broker logs to its terminal and saves at once`,
      )
    } else if (option === 'listener') {
      if (value === undefined || !/^\d+$/.test(value) || Number(value) > 65535)
        fail(`listener needs a port from 1 to 65535: listener 1883 [ADDRESS]`)
      if (Number(value) === 0)
        fail('listener 0 is a Unix socket in Mosquitto, which -c does not offer; use --unix PATH')
      const host = words[2]?.startsWith('#') ? undefined : words[2]
      config.listeners.push({
        port: Number(value),
        host,
        protocol: 'mqtt',
        requireCertificate: false,
        useIdentityAsUsername: false,
        security: {},
        where,
      })
    } else if (option === 'per_listener_settings') {
      config.perListenerSettings = flag()
    } else if (
      option === 'allow_anonymous' ||
      option === 'password_file' ||
      option === 'acl_file'
    ) {
      const security =
        (config.perListenerSettings ? listener?.security : config.security) ??
        fail(`with per_listener_settings true, ${option} belongs below a listener line`)
      if (option === 'allow_anonymous') security.allowAnonymous = flag()
      else if (option === 'password_file') security.passwordFile = once(security.passwordFile)
      else security.aclFile = once(security.aclFile)
    } else if (option === 'protocol' && listener) {
      if (value !== 'mqtt' && value !== 'websockets')
        fail(`protocol is mqtt or websockets, not ${JSON.stringify(value ?? '')}`)
      listener.protocol = value as 'mqtt' | 'websockets'
    } else if ((option === 'cafile' || option === 'certfile' || option === 'keyfile') && listener) {
      listener[option] = once(listener[option])
    } else if (option === 'require_certificate' && listener) {
      listener.requireCertificate = flag()
    } else if (option === 'use_identity_as_username' && listener) {
      listener.useIdentityAsUsername = flag()
    } else if (option === 'persistence') {
      persistence = flag()
    } else if (option === 'persistence_location') {
      location = once(location)
    } else if (option === 'port' || option === 'bind_address') {
      // Old tutorials' way, deprecated by Mosquitto 2.
      fail(`${option} is the old way to say where to listen: write listener PORT [ADDRESS] instead`)
    } else {
      fail(
        `${option}: the bundled broker does not know this option (docs/conformance.md lists ` +
          'those it does); check its spelling, remove the line, or run Mosquitto with this file',
      )
    }
    function once(previous: string | undefined): string {
      if (previous !== undefined) fail(`${option} is given twice; keep one`)
      return rest()
    }
  })
  for (const listener of config.listeners) checkTls(listener)
  // Mosquitto writes mosquitto.db there; the bundled broker's store is a directory beside it.
  if (persistence) config.persist = join(location ?? '.', 'mqtt-by-example.db')
  return config
}

/** The TLS options of a listener make sense together, or one line says what is missing. */
function checkTls(listener: ListenerSettings): void {
  const { where, cafile, certfile, keyfile } = listener
  if ((certfile === undefined) !== (keyfile === undefined))
    throw new Error(`${where}: give this listener both certfile and keyfile, or neither`)
  if (certfile === undefined && (cafile !== undefined || listener.requireCertificate))
    throw new Error(
      `${where}: cafile and require_certificate need TLS: give the listener certfile and keyfile`,
    )
  if (listener.requireCertificate && cafile === undefined)
    throw new Error(
      `${where}: require_certificate true needs cafile, the CA that signs clients' certificates`,
    )
  if (listener.useIdentityAsUsername && certfile === undefined)
    throw new Error(`${where}: use_identity_as_username needs TLS: give certfile and keyfile`)
}
