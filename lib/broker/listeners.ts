// The listeners of a configuration file (-c): MQTT over TCP or TLS, and over WebSocket (ws:// or
// wss://) with `protocol websockets`, each with the security of its own listener (./security.ts).
// Everything a listener needs is read and checked first (prepareListeners), so that a broker with
// a bad file exits before it listens anywhere.
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import {
  createServer as createTcpServer,
  type Server as TcpServer,
  type Socket as TcpSocket,
} from 'node:net'
import type { Duplex } from 'node:stream'
import { createServer as createTlsServer, type TLSSocket, type TlsOptions } from 'node:tls'
import type { BrokerConfig, ListenerSettings } from './config.ts'
import { type ListenerSecurity, securityReader } from './security.ts'
import { tlsOptions } from './tls.ts'

export interface ConfiguredListener {
  settings: ListenerSettings
  tls?: TlsOptions
  security: ListenerSecurity
}

/** Read every certificate, key, password file and ACL of `config`; throws one line if one fails. */
export function prepareListeners(config: BrokerConfig): ConfiguredListener[] {
  const securityOf = securityReader(config)
  return config.listeners.map((settings) => ({
    settings,
    tls: tlsOptions(settings),
    security: securityOf(settings),
  }))
}

interface Opening {
  accept(stream: Duplex, security: ListenerSecurity, request?: IncomingMessage): void
  /** broker.ts' listen: resolves with the port, rejects with one line. */
  listen(server: Server | TcpServer, host: string, port: number): Promise<number>
  maxPacketSize: number
  log(line: string): void
  /**
   * Told of a connection that ended before any MQTT packet, in its TLS handshake, before the
   * broker resets it (./record.ts' RefusalRecord): `listener` is its URL, `reason` a few words.
   */
  refused(listener: string, reason: string): void
  /** Every server opened is added here, for the broker to close. */
  servers: (Server | TcpServer)[]
}

/** Open every listener; resolves with their URLs, in the file's order. */
export async function openListeners(
  listeners: ConfiguredListener[],
  opening: Opening,
): Promise<string[]> {
  const urls: string[] = []
  for (const { settings, tls, security } of listeners) {
    const { accept, log, servers } = opening
    /** This listener's URL and port, once it listens: what the record names a refusal by. */
    let url = ''
    let port = settings.port
    /** Where each TLS connection comes from. */
    const peers = new WeakMap<TcpSocket, string>()
    // Said once per connection, with OpenSSL's reason alone, and recorded before the connection is
    // reset, as Mosquitto resets it: a client then hears of it at once (MQTT.js waits for ever on a
    // plain close), and a reader of the record hears of it first.
    const refused = (error: Error & { code?: string }, socket: TcpSocket) => {
      const tcp = (socket as TcpSocket & { _parent?: TcpSocket })._parent
      // A connection closed before its first byte tried nothing: a check that the port listens.
      if (tcp?.bytesRead === 0) return void tcp.destroy()
      const { line, reason } = describe(error)
      const from = (tcp && peers.get(tcp)) ?? `${socket.remoteAddress}:${socket.remotePort}`
      log(`TLS connection from ${from} to port ${port} ${line}`)
      opening.refused(url, reason)
      // The TLS socket cannot be reset; the TCP socket under it can.
      if (tcp) tcp.resetAndDestroy()
      else socket.destroy()
    }
    let server: Server | TcpServer
    if (settings.protocol === 'websockets') {
      const http = tls ? createHttpsServer(tls) : createHttpServer()
      http.on('request', (_request, response) =>
        response.writeHead(426).end('this port speaks MQTT over WebSocket\n'),
      )
      const { WebSocketServer, createWebSocketStream } = await import('ws')
      const wss = new WebSocketServer({ server: http, maxPayload: opening.maxPacketSize })
      wss.on('connection', (socket, request) =>
        accept(createWebSocketStream(socket), security, request),
      )
      server = http
    } else if (tls) {
      // Half-open only once its handshake is done: a client that hangs up in the handshake (one
      // that does not trust the broker's certificate) is then heard of and closed at once, instead
      // of lingering until Node.js's handshake timeout refuses it two minutes later.
      server = createTlsServer(tls, (socket) => {
        socket.allowHalfOpen = true
        socket.setNoDelay(true)
        if (socket.authorized || !settings.requireCertificate) accept(socket, security)
      })
    } else {
      server = createTcpServer({ noDelay: true, allowHalfOpen: true }, (socket) =>
        accept(socket, security),
      )
    }
    if (tls) {
      // Read as it connects: a client that hung up in the handshake has no address left to read.
      server.on('connection', (tcp: TcpSocket) =>
        peers.set(tcp, `${tcp.remoteAddress}:${tcp.remotePort}`),
      )
      server.on('tlsClientError', refused)
      server.on('secureConnection', (socket: TLSSocket) => {
        if (!settings.requireCertificate || socket.authorized) return
        const given = Object.keys(socket.getPeerCertificate()).length > 0
        const why = given ? `${socket.authorizationError}` : 'none given (require_certificate true)'
        refused(Object.assign(new Error(why), { code: given ? UNTRUSTED : NONE }), socket)
      })
    }
    servers.push(server)
    // No address: every interface, as Mosquitto listens then.
    port = await opening
      .listen(server, settings.host as string, settings.port)
      .catch((error: Error) => {
        throw new Error(`${settings.where}: ${error.message}`)
      })
    const scheme = settings.protocol === 'websockets' ? 'ws' : 'mqtt'
    const host = settings.host ?? 'localhost'
    url = `${scheme}${tls ? 's' : ''}://${host.includes(':') ? `[${host}]` : host}:${port}`
    urls.push(url)
  }
  return urls
}

/** The codes refused() is given for a client certificate the listener refuses. */
const NONE = 'NO_CLIENT_CERTIFICATE'
const UNTRUSTED = 'CLIENT_CERTIFICATE_UNTRUSTED'

/**
 * What a refused connection's error says: `line`, for the broker's log (OpenSSL's reason alone),
 * and `reason`, a few words for the record and the stage view's arrow.
 */
function describe(error: Error & { code?: string }): { line: string; reason: string } {
  if (error.code === NONE || error.code === UNTRUSTED)
    return {
      line: `refused: client certificate refused: ${error.message}`,
      reason: error.code === NONE ? 'no client certificate' : 'client certificate not trusted',
    }
  // Node.js' word for a client that hung up before the handshake was done.
  if (error.code === 'ECONNRESET')
    return {
      line: 'ended: the client hung up in the handshake (does it trust the certificate?)',
      reason: 'TLS handshake failed: the client hung up',
    }
  if (error.code === 'ERR_TLS_HANDSHAKE_TIMEOUT')
    return { line: 'refused: TLS handshake timeout', reason: 'TLS handshake failed: timed out' }
  const openssl = /SSL routines:[^:]*:([^:]+)/.exec(error.message)?.[1] ?? error.message
  if (/wrong version number|http request/.test(openssl))
    return { line: `refused: ${openssl} (not TLS: mqtt://?)`, reason: 'not TLS' }
  // An alert the client sent: why it gave up on the broker ("unknown ca", "certificate unknown").
  const alert = /alert (.+)$/.exec(openssl)?.[1]
  return { line: `refused: ${openssl}`, reason: `TLS handshake failed: ${alert ?? openssl}` }
}
