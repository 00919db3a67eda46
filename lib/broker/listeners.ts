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
    // Said once per connection, with OpenSSL's reason alone. The connection is reset, as Mosquitto
    // resets it: a client then hears of it at once (MQTT.js waits for ever on a plain close).
    const refused = (error: Error, socket: TcpSocket) => {
      const reason = /SSL routines:[^:]*:([^:]+)/.exec(error.message)?.[1] ?? error.message
      const plain = /wrong version number|http request/.test(reason) ? ' (not TLS: mqtt://?)' : ''
      log(
        `TLS connection from ${socket.remoteAddress}:${socket.remotePort} to port ` +
          `${settings.port} refused: ${reason}${plain}`,
      )
      // The TLS socket cannot be reset; the TCP socket under it can.
      const tcp = (socket as TcpSocket & { _parent?: TcpSocket })._parent
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
      server = createTlsServer({ ...tls, allowHalfOpen: true }, (socket) => {
        socket.setNoDelay(true)
        if (socket.authorized || !settings.requireCertificate) accept(socket, security)
      })
    } else {
      server = createTcpServer({ noDelay: true, allowHalfOpen: true }, (socket) =>
        accept(socket, security),
      )
    }
    if (tls) {
      server.on('tlsClientError', refused)
      server.on('secureConnection', (socket: TLSSocket) => {
        if (!settings.requireCertificate || socket.authorized) return
        const given = Object.keys(socket.getPeerCertificate()).length > 0
        const why = given ? `${socket.authorizationError}` : 'none given (require_certificate true)'
        refused(new Error(`client certificate refused: ${why}`), socket)
      })
    }
    servers.push(server)
    // No address: every interface, as Mosquitto listens then.
    const port = await opening
      .listen(server, settings.host as string, settings.port)
      .catch((error: Error) => {
        throw new Error(`${settings.where}: ${error.message}`)
      })
    const scheme = settings.protocol === 'websockets' ? 'ws' : 'mqtt'
    const host = settings.host ?? 'localhost'
    urls.push(`${scheme}${tls ? 's' : ''}://${host.includes(':') ? `[${host}]` : host}:${port}`)
  }
  return urls
}
