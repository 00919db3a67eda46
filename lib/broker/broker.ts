// The bundled broker: aedes (MQTT 3.1, 3.1.1 and 5) with the fixes of ./fixes.ts, over TCP (and,
// when asked, over WebSocket and a Unix domain socket, and with a store on disk), on 127.0.0.1:1883
// unless told otherwise. Scenarios and tests import startBroker(); ./main.ts is `npm run broker`.
import { existsSync, lstatSync, unlinkSync } from 'node:fs'
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type RequestListener,
  type Server as HttpServer,
} from 'node:http'
import { timingSafeEqual } from 'node:crypto'
import { connect as netConnect, createServer, type Server } from 'node:net'
import { dirname, resolve } from 'node:path'
import type { Duplex } from 'node:stream'
import { Aedes, type Client } from 'aedes'
import { applyFixes, mqtt5Options } from './fixes.ts'
import { type ConfiguredListener, openListeners } from './listeners.ts'
import { guard, type ListenerSecurity } from './security.ts'
import { PacketRecorder, recordLines, recordPackets, type PacketListener } from './record.ts'
import { reason } from '../mqtt5-print.ts'

interface BrokerOptions {
  /** Interface to listen on; 127.0.0.1 (loopback only) unless the user asks for more. */
  host?: string
  /** TCP port; 0 picks a free one. Default 1883, the article's. */
  port?: number
  /** Port for MQTT over WebSocket; off when undefined, 0 picks a free one. */
  wsPort?: number
  /**
   * Answers plain HTTP requests on the WebSocket port (the dashboard's page); else they get 426.
   */
  http?: RequestListener
  /** Also serve MQTT on a Unix domain socket at this path; off when undefined. */
  unixPath?: string
  /**
   * Keep retained messages and persistent sessions in a store in this directory (see store.ts); in
   * memory when undefined.
   */
  persist?: string
  /**
   * Share messages, retained messages and sessions with other brokers on the Redis at this URL (see
   * redis.ts); off when undefined.
   */
  redis?: string
  /**
   * Close a connection that sends a packet larger than this many bytes (aedes' maximumPacketSize;
   * MQTT 5 clients are told it in the CONNACK).
   */
  maxPacketSize?: number
  /**
   * Accept only clients that give this user name and password (CONNACK return code 4 otherwise).
   */
  credentials?: { username: string; password: string }
  /**
   * The listeners of a configuration file (-c, see listeners.ts), in place of the TCP listener on
   * host:port and the WebSocket and Unix socket ones.
   */
  listeners?: ConfiguredListener[]
  /** Mosquitto's checks (security.ts) on the TCP listener on host:port: -c with no listener. */
  security?: ListenerSecurity
  /** Receives one line per client event worth seeing in a talk. */
  log?: (line: string) => void
  /** Client ids whose events are not logged (the stage's own control client). */
  quietClients?: ReadonlySet<string>
  /**
   * Receives what the broker says of itself (of Redis), which `log` and onClientEvent also get,
   * with client id ''. For `--quiet`: a listener of client events would have a line made for every
   * message, which cost the bench's bundled broker a twentieth of its MQTT 5 QoS 1 rate.
   */
  say?: (line: string) => void
}

export interface RunningBroker {
  /** mqtt://host:port, ready to hand to a client. */
  url: string
  port: number
  /** ws://host:port when the WebSocket listener is on. */
  wsUrl?: string
  /**
   * mqtt+unix:///absolute/path when the Unix socket listener is on (MQTT.js connects to such a
   * URL).
   */
  unixUrl?: string
  /** Every listener's URL, when they come from a configuration file (-c). */
  listenerUrls?: string[]
  /** The aedes instance serving now (a new one after restart()). */
  readonly aedes: Aedes
  /**
   * Hear one line per client event (what `npm run broker` prints); returns how to stop hearing it.
   */
  onClientEvent(listener: ClientEventListener): () => void
  /**
   * Hear every MQTT packet the broker reads and writes on a connection made from now on, and its
   * own acts (./record.ts); returns how to stop hearing them. Nothing is recorded while nobody
   * listens.
   */
  onPacket(listener: PacketListener): () => void
  /**
   * Hear the same as lines of JSON, a turn of the event loop at a time, bursts folded (what `npm
   * run broker -- --record` writes: ./record.ts's recordLines), for less than onPacket costs; and
   * each connection refused before MQTT, in its TLS handshake (./record.ts's RefusalRecord).
   */
  onPacketLines(write: (lines: string) => void): PacketLines
  close(): Promise<void>
  /**
   * Stop as a crash would (every connection drops, no Last Will is published) and start again on
   * the same ports, with the same store: what clients live through when their broker restarts.
   */
  restart(): Promise<void>
}

type ClientEventListener = (line: string, clientId: string) => void

/** The record as lines (RunningBroker.onPacketLines): how to stop hearing it, or write it now. */
export interface PacketLines {
  stop(): void
  /** Write the lines gathered so far at once, and `after` them. */
  flush(after?: string): void
}

/**
 * Large enough for any demo (a discovery config is under 1 kB), small enough that no client can
 * make the broker buffer much.
 */
export const DEFAULT_MAX_PACKET_SIZE = 256 * 1024

/**
 * Start aedes and its listeners; rejects with a one-line, actionable message if a port is taken.
 */
export async function startBroker(options: BrokerOptions = {}): Promise<RunningBroker> {
  const listeners = new Set<ClientEventListener>()
  const tell = Object.assign<ClientEventListener, { listening(): boolean }>(
    (line, clientId) => {
      for (const listener of listeners) listener(line, clientId)
    },
    { listening: () => listeners.size > 0 },
  )
  const onClientEvent = (listener: ClientEventListener) => {
    listeners.add(listener)
    return () => void listeners.delete(listener)
  }
  const { log, quietClients } = options
  if (log) onClientEvent((line, clientId) => quietClients?.has(clientId) || log(line))
  const recorder = new PacketRecorder()
  let running = await bringUp(options, tell, recorder)
  return {
    url: running.url,
    port: running.port,
    wsUrl: running.wsUrl,
    unixUrl: running.unixUrl,
    listenerUrls: running.listenerUrls,
    get aedes() {
      return running.aedes
    },
    onClientEvent,
    onPacket: (listener) => recorder.listen(listener),
    onPacketLines: (write) => {
      const lines = recordLines(write)
      const stops = [recorder.tap(lines), recorder.hearRefusals(lines.refused)]
      return {
        stop: () => {
          for (const stop of stops) stop()
        },
        flush: lines.flush,
      }
    },
    close: () => running.close(false),
    async restart() {
      const { port, wsUrl } = running
      await running.close(true)
      running = await bringUp(
        { ...options, port, wsPort: wsUrl === undefined ? undefined : Number(new URL(wsUrl).port) },
        tell,
        recorder,
      )
    },
  }
}

type Running = Omit<
  RunningBroker,
  'onClientEvent' | 'onPacket' | 'onPacketLines' | 'close' | 'restart'
> & {
  close(asIfCrashed: boolean): Promise<void>
}

/** One life of the broker: aedes with its fixes, its store and its listeners. */
async function bringUp(
  options: BrokerOptions,
  tell: ClientEventListener & { listening(): boolean },
  recorder: PacketRecorder,
): Promise<Running> {
  const host = options.host ?? '127.0.0.1'
  // The store on disk, Redis and WebSocket are loaded only by a broker that uses them: every other
  // start (most of the suite's, and the bad input it refuses) does without their modules.
  const store =
    options.persist === undefined
      ? undefined
      : await (await import('./store.ts')).openStore(options.persist)
  const maxPacketSize = options.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE
  // Lines about Redis come from the broker itself, not a client: their client id is ''.
  const shared =
    options.redis === undefined
      ? undefined
      : await (await import('./redis.ts')).connectRedis(options.redis, (line) => {
          options.say?.(line)
          tell(line, '')
        })
  // aedes checks each packet's announced size as soon as it has read the fixed header, before it
  // buffers the body, and closes the connection (after a DISCONNECT 0x95 for an MQTT 5 client).
  const aedes = await Aedes.createBroker({
    ...mqtt5Options,
    maximumPacketSize: maxPacketSize,
    ...(shared?.aedesOptions ?? (store && { persistence: store.persistence })),
  })
  shared?.installHooks(aedes)
  applyFixes(aedes, {
    onDisk: store !== undefined || shared !== undefined,
    onRedis: shared !== undefined,
    shares: shared?.shares(aedes.id),
  })
  recordPackets(aedes, recorder, shared !== undefined)
  if (options.credentials) requireCredentials(aedes, options.credentials)
  logEvents(aedes, tell, maxPacketSize)
  const guarded = options.listeners || options.security ? guard(aedes, tell) : undefined
  // Like Mosquitto, say what we are on a retained $SYS topic: clients see it with $SYS/#, never
  // with #.
  await new Promise<void>((resolve, reject) =>
    aedes.publish(
      {
        cmd: 'publish',
        topic: '$SYS/broker/version',
        payload: Buffer.from('mqtt-by-example bundled broker (aedes)'),
        qos: 0,
        retain: true,
        dup: false,
      },
      (error) => (error ? reject(error) : resolve()),
    ),
  )

  const accept = (stream: Duplex, request?: IncomingMessage) =>
    guarded && options.security
      ? guarded.accept(stream, options.security, request)
      : void aedes.handle(stream, request)
  // No Nagle: a broker answers with small packets (PUBACK, then the message it forwards), and
  // waiting to bundle them costs a delayed-ACK timeout, about 40 ms, on every QoS 1 round trip.
  // Half-open: once a client's FIN is read, the broker still writes the PUBACKs of what came before
  // it (./fixes/end-after-work.ts).
  const tcp = createServer({ noDelay: true, allowHalfOpen: true }, (socket) => accept(socket))
  const servers: (Server | HttpServer)[] = [tcp]
  const close = async (asIfCrashed: boolean) => {
    // A broker that crashes publishes no Last Will for its clients, and sends MQTT 5 clients no
    // DISCONNECT (aedes' close() tells them "server shutting down"): their connections just drop.
    // aedes keeps its clients in `clients`, which its types leave out.
    if (asIfCrashed) {
      for (const client of Object.values(
        (aedes as unknown as { clients: Record<string, Client & { will: unknown }> }).clients,
      )) {
        client.will = null
        client.conn.destroy(new Error('the broker crashed'))
      }
    }
    await new Promise<void>((done) => aedes.close(() => done()))
    await Promise.all(
      servers.filter((s) => s.listening).map((s) => new Promise((done) => s.close(done))),
    )
    await store?.close()
    await shared?.close()
  }
  try {
    if (guarded && options.listeners) {
      const listenerUrls = await openListeners(options.listeners, {
        accept: guarded.accept,
        listen,
        maxPacketSize,
        log: (line) => tell(line, ''),
        refused: (listener, reason) => recorder.refused(listener, reason),
        servers,
      })
      const [url] = listenerUrls
      const wsUrl = listenerUrls.find((each) => each.startsWith('ws'))
      return { url, port: Number(new URL(url).port), wsUrl, listenerUrls, aedes, close }
    }
    const port = await listen(tcp, host, options.port ?? 1883)
    let wsUrl: string | undefined
    if (options.wsPort !== undefined) {
      const http = createHttpServer(
        options.http ??
          ((_req, res) => res.writeHead(426).end('this port speaks MQTT over WebSocket\n')),
      )
      servers.push(http)
      const { WebSocketServer, createWebSocketStream } = await import('ws')
      const wss = new WebSocketServer({ server: http, maxPayload: maxPacketSize })
      wss.on('connection', (socket, req) => accept(createWebSocketStream(socket), req))
      wsUrl = `ws://${urlHost(host)}:${await listen(http, host, options.wsPort)}`
    }
    let unixUrl: string | undefined
    if (options.unixPath !== undefined) {
      const unix = createServer({ allowHalfOpen: true }, (socket) => accept(socket))
      servers.push(unix)
      unixUrl = `mqtt+unix://${await listenUnix(unix, options.unixPath)}`
    }
    return { url: `mqtt://${urlHost(host)}:${port}`, port, wsUrl, unixUrl, aedes, close }
  } catch (error) {
    await close(false)
    throw error
  }
}

/**
 * Optional authentication, for a speaker who must listen beyond loopback: a CONNECT without this
 * user name and password is refused with CONNACK return code 4 (MQTT 3.1.1 §3.2.2.3).
 */
function requireCredentials(aedes: Aedes, expected: { username: string; password: string }): void {
  const same = (given: Buffer, wanted: string) => {
    const want = Buffer.from(wanted)
    return given.length === want.length && timingSafeEqual(given, want)
  }
  const authenticate = aedes.authenticate
  aedes.authenticate = (client, username, password, callback) => {
    if (
      username !== undefined &&
      password !== undefined &&
      same(Buffer.from(username), expected.username) &&
      same(password, expected.password)
    ) {
      return authenticate.call(aedes, client, username, password, callback)
    }
    callback(
      Object.assign(new Error('bad user name or password'), { returnCode: 4 as const }),
      false,
    )
  }
}

/** Whether `host` is this machine alone: anywhere else, a broker without a password is open. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.')
}

/** The line `npm run broker` prints once it accepts connections. */
export function readyLine(
  broker: Pick<RunningBroker, 'url' | 'wsUrl' | 'unixUrl' | 'listenerUrls'>,
): string {
  const urls = (broker.listenerUrls ?? [broker.url, broker.wsUrl, broker.unixUrl])
    .filter(Boolean)
    .join(' and ')
  return `broker ready on ${urls}; Ctrl-C to stop`
}

function listen(server: Server | HttpServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') {
        reject(
          new Error(
            `port ${port} is already in use (is Mosquitto running?); use --port or stop the ` +
              `other broker`,
          ),
        )
      } else if (error.code === 'EACCES') {
        reject(
          new Error(`not allowed to listen on port ${port}; use --port with a number above 1023`),
        )
      } else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') {
        reject(
          new Error(
            `cannot listen on ${host}: no such address on this machine; use --host 127.0.0.1`,
          ),
        )
      } else {
        reject(new Error(`cannot listen on ${host}:${port}: ${error.message}`))
      }
    })
    server.listen(port, host, () => {
      const address = server.address()
      resolve(typeof address === 'object' && address ? address.port : port)
    })
  })
}

/**
 * Listen on a Unix domain socket at `path`; resolves with its absolute path. A socket file left
 * behind by a broker that was killed is replaced; one that a running broker answers on is refused.
 */
async function listenUnix(server: Server, path: string): Promise<string> {
  const absolute = resolve(path)
  // The kernel keeps about 100 bytes of a socket's path (107 on Linux, 103 on macOS) and cuts the
  // rest silently.
  if (Buffer.byteLength(absolute) > 100) {
    throw new Error(
      `--unix ${path} is too long for a socket path (${Buffer.byteLength(absolute)} bytes, at ` +
        `most 100); use a shorter one such as /tmp/mqtt.sock`,
    )
  }
  if (!existsSync(dirname(absolute)))
    throw new Error(
      `--unix ${path}: the directory ${dirname(absolute)} does not exist; create it or use ` +
        `another path`,
    )
  if (existsSync(absolute)) {
    if (!lstatSync(absolute).isSocket())
      throw new Error(`--unix ${path} exists and is not a socket; give a path to a new file`)
    if (await unixSocketAnswers(absolute)) {
      const inUse = `--unix ${path} is in use by another running broker`
      throw new Error(`${inUse}; stop it, or use another path`)
    }
    unlinkSync(absolute)
  }
  await new Promise<void>((done, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new Error(
          error.code === 'EACCES'
            ? `not allowed to create the socket --unix ${path}; use a path in a directory you ` +
                `can write to`
            : `cannot listen on --unix ${path}: ${error.message}`,
        ),
      ),
    )
    server.listen(absolute, done)
  })
  return absolute
}

/** Whether something accepts connections on the Unix socket at `path`. */
function unixSocketAnswers(path: string): Promise<boolean> {
  return new Promise((done) => {
    const socket = netConnect(path, () => {
      socket.destroy()
      done(true)
    })
    socket.once('error', () => done(false))
  })
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

/**
 * One line per connect, subscribe, publish and disconnect: what a speaker wants the audience to
 * see. Lines are made only while someone listens (`npm run broker -- --quiet` and the bench make
 * none).
 */
function logEvents(
  aedes: Aedes,
  log: ClientEventListener & { listening(): boolean },
  maxPacketSize: number,
): void {
  aedes.on('client', (client) => log(`client ${client.id} connected`, client.id))
  aedes.on('clientDisconnect', (client) => log(`client ${client.id} disconnected`, client.id))
  // MQTT 5 §3.1.2.11.2, [MQTT-4.1.0-2]: a session kept after its connection ended, once its expiry
  // interval has passed.
  aedes.on('sessionExpired', (client) =>
    log(
      `client ${client.id} session expired: the broker dropped it, and what it had queued`,
      client.id,
    ),
  )
  aedes.on('subscribe', (subscriptions, client) => {
    for (const s of subscriptions) {
      // An MQTT 5 SUBACK refuses with a reason code where the QoS would be (0x9E for $share/...,
      // say).
      if (s.qos >= 0x80)
        log(
          `client ${client.id} was refused a subscription to ${s.topic}: ${reason(s.qos)}`,
          client.id,
        )
      else log(`client ${client.id} subscribed to ${s.topic} (QoS ${s.qos})`, client.id)
    }
  })
  const tooLarge = (client: Client, error: Error & { size?: number }) => {
    if (error.message !== 'packet too large') return
    const id = client.id ?? '(before CONNECT)'
    log(
      `client ${id} cut off: a packet of ${error.size} bytes is over the limit of ` +
        `${maxPacketSize} (--max-packet-size)`,
      id,
    )
  }
  aedes.on('clientError', tooLarge)
  aedes.on('connectionError', tooLarge)
  // Logged on arrival (aedes' 'publish' event comes after routing, so after a quick DISCONNECT).
  const authorize = aedes.authorizePublish
  aedes.authorizePublish = (client, packet, callback) => {
    if (client && log.listening()) {
      const retained = packet.retain ? ' (retained)' : ''
      log(
        `client ${client.id} published ${JSON.stringify(packet.payload.toString())} to ` +
          `${packet.topic}${retained}`,
        client.id,
      )
    }
    authorize.call(aedes, client, packet, callback)
  }
}
