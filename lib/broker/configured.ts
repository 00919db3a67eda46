// What `npm run broker -- -c FILE` starts from: Mosquitto's configuration file (./config.ts) with
// every file it names read and checked (./listeners.ts), and the broker's own flags over it. Any
// mistake is one line, thrown before anything listens; its fields go to startBroker as they are.
import { readConfig } from './config.ts'
import { type ConfiguredListener, prepareListeners } from './listeners.ts'
import { withUser } from './passwords.ts'
import { type ListenerSecurity, securityReader } from './security.ts'

interface Configured {
  /** The file's listeners; undefined if it has none (then the broker's own, on loopback). */
  listeners?: ConfiguredListener[]
  /** The checks of the broker's own listener when the file has no listener. */
  security?: ListenerSecurity
  /** Where `persistence true` keeps the store. */
  persist?: string
  warnings: string[]
}

interface Flags {
  /** The flags given that say where to listen (--port, --host...), without their dashes. */
  whereFlags?: string[]
  /** --username and --password: one more user on every listener. */
  credentials?: { username: string; password: string }
}

/** Read `file` and all it names; throws one line on the first mistake. */
export function configured(file: string, flags: Flags = {}): Configured {
  const config = readConfig(file)
  const { credentials } = flags
  const plusFlagUser = (security: ListenerSecurity): ListenerSecurity =>
    credentials === undefined
      ? security
      : { ...security, users: withUser(security.users, credentials.username, credentials.password) }
  const { warnings, persist } = config
  if (config.listeners.length === 0) {
    // Like Mosquitto 2 without a listener: loopback only, anonymous clients let in.
    return { security: plusFlagUser(securityReader(config)()), persist, warnings }
  }
  const where = flags.whereFlags ?? []
  if (where.length > 0)
    throw new Error(
      `${where.map((flag) => `--${flag}`).join(' and ')} and the listener lines of ${file} both ` +
        'say where to listen; keep one',
    )
  const listeners = prepareListeners(config).map((listener) => ({
    ...listener,
    security: plusFlagUser(listener.security),
  }))
  return { listeners, persist, warnings }
}
