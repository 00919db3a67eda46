// Who may connect to the bundled broker and what they may do, as Mosquitto 2.0 decides it from a
// configuration file (./config.ts): anonymous clients, passwords (./passwords.ts), the ACL
// (./acl.ts) and client certificates (use_identity_as_username), per listener. Installed over
// aedes' authenticate, authorizePublish and authorizeForward hooks.
import type { IncomingMessage } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { Duplex } from 'node:stream'
import type { Aedes, Client } from 'aedes'
import mqttPacket from 'mqtt-packet'
import { type Acl, aclAllows, readAcl } from './acl.ts'
import type { BrokerConfig, ListenerSettings, SecuritySettings } from './config.ts'
import { checkPassword, type PasswordFile, readPasswordFile } from './passwords.ts'
import { commonNameOf } from './tls.ts'

/** What a listener asks of its clients, its files read. */
export interface ListenerSecurity {
  allowAnonymous: boolean
  /** Undefined without password_file: then anyone allowed in may give any name and password. */
  users?: PasswordFile
  /** Undefined without acl_file: then everyone may publish and receive everything. */
  acl?: Acl
  /** The CN of the client's certificate is its user name, and no password is checked. */
  useIdentityAsUsername: boolean
}

/**
 * Read the password and ACL files of `config`, each once, for the listener `settings` (or for the
 * loopback listener of a file without `listener` lines, which lets anonymous clients in, as
 * Mosquitto 2's does). Throws one line on the first file that is missing or malformed.
 */
export function securityReader(config: BrokerConfig) {
  const files = new Map<string, PasswordFile | Acl>()
  const read = <T extends PasswordFile | Acl>(file: string, reader: (file: string) => T): T => {
    const known = files.get(file) ?? reader(file)
    files.set(file, known)
    return known as T
  }
  const load = (settings: SecuritySettings, allowAnonymous: boolean): ListenerSecurity => ({
    allowAnonymous,
    users: settings.passwordFile ? read(settings.passwordFile, readPasswordFile) : undefined,
    acl: settings.aclFile ? read(settings.aclFile, readAcl) : undefined,
    useIdentityAsUsername: false,
  })
  return (listener?: ListenerSettings): ListenerSecurity => {
    if (listener === undefined) return load(config.security, true)
    const settings = config.perListenerSettings ? listener.security : config.security
    return {
      ...load(settings, settings.allowAnonymous ?? false),
      useIdentityAsUsername: listener.useIdentityAsUsername,
    }
  }
}

/** What the broker knows of a connection before its CONNECT: where from and on which listener. */
interface Connection {
  security: ListenerSecurity
  address: string
  /** The TLS socket under it, for the client's certificate. */
  tls?: TLSSocket
}

interface Admitted {
  username?: string
  security: ListenerSecurity
}

type Log = (line: string, clientId: string) => void

/**
 * Put Mosquitto's checks over aedes' hooks; returns how to hand a new connection to aedes, with
 * the security of the listener it came to.
 */
export function guard(aedes: Aedes, log: Log) {
  const connections = new WeakMap<Client, Connection>()
  const admitted = new WeakMap<Client, Admitted>()
  const authenticate = aedes.authenticate
  aedes.authenticate = (client, username, password, callback) => {
    const connection = connections.get(client)
    if (!connection) return authenticate.call(aedes, client, username, password, callback)
    const { security } = connection
    const refuse = (returnCode: 4 | 5, why: string) => {
      // Said once, with where it came from; never with the password.
      log(`client ${client.id} from ${connection.address} refused: ${why}`, client.id)
      callback(Object.assign(new Error(why), { returnCode }), false)
    }
    let name = username
    if (security.useIdentityAsUsername) {
      // Mosquitto takes the certificate's CN and checks no password (use_identity_as_username).
      name = connection.tls && commonNameOf(connection.tls)
      if (name === undefined)
        return refuse(4, 'no client certificate with a CN (use_identity_as_username)')
    } else if (username === undefined || security.users === undefined) {
      // Without a password file, Mosquitto cannot check a name either: all are anonymous then.
      if (!security.allowAnonymous)
        return refuse(
          5,
          username === undefined
            ? 'not authorised: no user name, and allow_anonymous is not true here'
            : `not authorised: no password_file to check ${JSON.stringify(username)} against`,
        )
    } else if (!checkPassword(security.users, username, password)) {
      return refuse(5, `not authorised: bad user name or password for ${JSON.stringify(username)}`)
    }
    admitted.set(client, { username: name, security })
    callback(null, true)
  }

  const allowed = (client: Client, topic: string, access: 'read' | 'write') => {
    const who = admitted.get(client)
    if (!who?.security.acl) return true
    return aclAllows(
      who.security.acl,
      { username: who.username, clientId: client.id },
      topic,
      access,
    )
  }
  const authorizePublish = aedes.authorizePublish
  aedes.authorizePublish = (client, packet, callback) => {
    if (!client || allowed(client, packet.topic, 'write'))
      return authorizePublish.call(aedes, client, packet, callback)
    // A will has no `cmd`: refused, it is dropped when the client goes.
    if (!('cmd' in packet)) return callback(new Error('not authorised'))
    log(
      `client ${client.id} may not publish to ${packet.topic} (acl_file): the message is dropped`,
      client.id,
    )
    // Mosquitto keeps the connection, acknowledges a QoS 1 or 2 message (MQTT 5: with 0x87 Not
    // authorized) and routes nothing; aedes would close an MQTT 3.1.1 connection over a refusal.
    // So it is let through marked, and aedes' enqueuePublish (lib/handlers/publish.js) leaves a
    // message so marked alone, as it does the MQTT 5 ones it refuses itself.
    Object.assign(packet, { _notAuthorized: true })
    if (packet.qos > 0)
      mqttPacket.writeToStream(
        {
          cmd: packet.qos === 1 ? 'puback' : 'pubrec',
          messageId: packet.messageId,
          reasonCode: 0x87,
        },
        client.conn,
        { protocolVersion: client.version },
      )
    callback(null)
  }

  const authorizeForward = aedes.authorizeForward
  aedes.authorizeForward = (client, packet) =>
    allowed(client, packet.topic, 'read') ? authorizeForward.call(aedes, client, packet) : null

  return {
    /** Hand `stream` to aedes, as a connection to a listener with `security`. */
    accept(stream: Duplex, security: ListenerSecurity, request?: IncomingMessage) {
      const socket = (request?.socket ?? stream) as Duplex & {
        remoteAddress?: string
        remotePort?: number
        encrypted?: boolean
      }
      connections.set(aedes.handle(stream, request), {
        security,
        address: `${socket.remoteAddress}:${socket.remotePort}`,
        tls: socket.encrypted ? (socket as TLSSocket) : undefined,
      })
    },
  }
}
