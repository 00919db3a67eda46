// The bundled broker: aedes over TCP (and, when asked, over WebSocket and a Unix domain socket, and
// with a store on disk), on 127.0.0.1:1883 unless told otherwise. Scenarios and tests import
// startBroker(); run directly it is `npm run broker`.
import { existsSync, lstatSync, unlinkSync } from 'node:fs'
import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server as HttpServer } from 'node:http'
import { timingSafeEqual } from 'node:crypto'
import { connect as netConnect, createServer, type Server } from 'node:net'
import { dirname, resolve } from 'node:path'
import type { Duplex } from 'node:stream'
import { Aedes, type Client } from 'aedes'
import { WebSocketServer, createWebSocketStream } from 'ws'
import { fail, isMain, messageOf, startProgram } from './cli.ts'
import { parseFlags } from './flags.ts'
import { withPacketSizeLimit } from './packet-limit.ts'
import { openStore } from './store.ts'
import { topicMatches } from './topics.ts'

export interface BrokerOptions {
  /** Interface to listen on; 127.0.0.1 (loopback only) unless the user asks for more. */
  host?: string
  /** TCP port; 0 picks a free one. Default 1883, the article's. */
  port?: number
  /** Port for MQTT over WebSocket; off when undefined, 0 picks a free one. */
  wsPort?: number
  /** Answers plain HTTP requests on the WebSocket port (the dashboard's page); else they get 426. */
  http?: RequestListener
  /** Also serve MQTT on a Unix domain socket at this path; off when undefined. */
  unixPath?: string
  /** Keep retained messages and persistent sessions in a store in this directory (see store.ts); in memory when undefined. */
  persist?: string
  /** Close a connection that sends a packet larger than this many bytes (see packet-limit.ts). */
  maxPacketSize?: number
  /** Accept only clients that give this user name and password (CONNACK return code 4 otherwise). */
  credentials?: { username: string; password: string }
  /** Receives one line per client event worth seeing in a talk. */
  log?: (line: string) => void
  /** Client ids whose events are not logged (the stage's own control client). */
  quietClients?: ReadonlySet<string>
}

export interface RunningBroker {
  /** mqtt://host:port, ready to hand to a client. */
  url: string
  port: number
  /** ws://host:port when the WebSocket listener is on. */
  wsUrl?: string
  /** mqtt+unix:///absolute/path when the Unix socket listener is on (MQTT.js connects to such a URL). */
  unixUrl?: string
  /** The aedes instance serving now (a new one after restart()). */
  readonly aedes: Aedes
  /** Hear one line per client event (what `npm run broker` prints); returns how to stop hearing it. */
  onClientEvent(listener: ClientEventListener): () => void
  close(): Promise<void>
  /**
   * Stop as a crash would (every connection drops, no Last Will is published) and start again on the
   * same ports, with the same store: what clients live through when their broker restarts.
   */
  restart(): Promise<void>
}

export type ClientEventListener = (line: string, clientId: string) => void

/** Large enough for any demo (a discovery config is under 1 kB), small enough that no client can make the broker buffer much. */
export const DEFAULT_MAX_PACKET_SIZE = 256 * 1024

/** Start aedes and its listeners; rejects with a one-line, actionable message if a port is taken. */
export async function startBroker(options: BrokerOptions = {}): Promise<RunningBroker> {
  const listeners = new Set<ClientEventListener>()
  const tell: ClientEventListener = (line, clientId) => listeners.forEach((listener) => listener(line, clientId))
  const onClientEvent = (listener: ClientEventListener) => {
    listeners.add(listener)
    return () => void listeners.delete(listener)
  }
  const { log, quietClients } = options
  if (log) onClientEvent((line, clientId) => quietClients?.has(clientId) || log(line))
  let running = await bringUp(options, tell)
  return {
    url: running.url,
    port: running.port,
    wsUrl: running.wsUrl,
    unixUrl: running.unixUrl,
    get aedes() {
      return running.aedes
    },
    onClientEvent,
    close: () => running.close(false),
    async restart() {
      const { port, wsUrl } = running
      await running.close(true)
      running = await bringUp({ ...options, port, wsPort: wsUrl === undefined ? undefined : Number(new URL(wsUrl).port) }, tell)
    },
  }
}

type Running = Omit<RunningBroker, 'onClientEvent' | 'close' | 'restart'> & { close(asIfCrashed: boolean): Promise<void> }

/** One life of the broker: aedes with its fixes, its store and its listeners. */
async function bringUp(options: BrokerOptions, tell: ClientEventListener): Promise<Running> {
  const host = options.host ?? '127.0.0.1'
  const store = options.persist === undefined ? undefined : await openStore(options.persist)
  const aedes = await Aedes.createBroker(store && { persistence: store.persistence })
  keepDollarTopicsFromWildcards(aedes)
  keepEachClientsPublishesInOrder(aedes)
  deliverAtGrantedQoS(aedes)
  refuseEmptyIdForPersistentSession(aedes)
  if (options.credentials) requireCredentials(aedes, options.credentials)
  logEvents(aedes, tell)
  // Like Mosquitto, say what we are on a retained $SYS topic: clients see it with $SYS/#, never with #.
  await new Promise<void>((resolve, reject) => aedes.publish(
    { cmd: 'publish', topic: '$SYS/broker/version', payload: Buffer.from('mqtt-by-example bundled broker (aedes)'), qos: 0, retain: true, dup: false },
    (error) => (error ? reject(error) : resolve())))

  const maxPacketSize = options.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE
  /** Hand a connection to aedes, watching the size of each packet it reads. */
  const accept = (stream: Duplex, request?: IncomingMessage) => {
    const client = aedes.handle(withPacketSizeLimit(stream, maxPacketSize, (size) => {
      const id = client.id ?? '(before CONNECT)'
      tell(`client ${id} cut off: a packet of ${size} bytes is over the limit of ${maxPacketSize} (--max-packet-size)`, id)
    }), request)
  }
  // No Nagle: a broker answers with small packets (PUBACK, then the message it forwards), and waiting to
  // bundle them costs a delayed-ACK timeout, about 40 ms, on every QoS 1 round trip.
  const tcp = createServer({ noDelay: true }, (socket) => accept(socket))
  const servers: (Server | HttpServer)[] = [tcp]
  const close = async (asIfCrashed: boolean) => {
    // A broker that crashes publishes no Last Will for its clients: it is gone before it could.
    // aedes keeps its clients in `clients`, which its types leave out.
    if (asIfCrashed) for (const client of Object.values((aedes as unknown as { clients: Record<string, { will: unknown }> }).clients)) client.will = null
    await new Promise<void>((done) => aedes.close(() => done()))
    await Promise.all(servers.filter((s) => s.listening).map((s) => new Promise((done) => s.close(done))))
    await store?.close()
  }
  try {
    const port = await listen(tcp, host, options.port ?? 1883)
    let wsUrl: string | undefined
    if (options.wsPort !== undefined) {
      const http = createHttpServer(options.http ?? ((_req, res) => res.writeHead(426).end('this port speaks MQTT over WebSocket\n')))
      servers.push(http)
      const wss = new WebSocketServer({ server: http, maxPayload: maxPacketSize })
      wss.on('connection', (socket, req) => accept(createWebSocketStream(socket), req))
      wsUrl = `ws://${urlHost(host)}:${await listen(http, host, options.wsPort)}`
    }
    let unixUrl: string | undefined
    if (options.unixPath !== undefined) {
      const unix = createServer((socket) => accept(socket))
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
 * MQTT 3.1.1 §4.7.2: a filter that starts with + or # must not match a topic name that starts with $.
 * aedes keeps to this for live messages but sends retained ones anyway (subscribe to # and you get
 * $SYS/broker/version); this hook, which sees every message on its way to a client, drops a $ topic
 * unless one of the client's filters that does not start with a wildcard matches it.
 */
function keepDollarTopicsFromWildcards(aedes: Aedes): void {
  const forward = aedes.authorizeForward
  aedes.authorizeForward = (client, packet) => {
    if (packet.topic.startsWith('$')) {
      // aedes keeps a client's filters in `subscriptions`, which its types leave out.
      const filters = Object.keys((client as Client & { subscriptions: Record<string, unknown> }).subscriptions)
      if (!filters.some((filter) => !/^[+#]/.test(filter) && topicMatches(filter, packet.topic))) return null
    }
    return forward.call(aedes, client, packet)
  }
}

/**
 * MQTT 3.1.1 §4.6: messages from one client on a topic reach subscribers in the order they were sent.
 * aedes stores a retained message before routing it, asynchronously, so a publish that follows at
 * once overtakes it; aedes' duplicate filter then drops the overtaken message as already seen. So a
 * subscriber of a topic that got "on" (retained) then "off" saw only "off". Here each client's next
 * PUBLISH is let through only once the previous one has been routed (aedes calls `published` last).
 * QoS 2 is left alone: aedes does not route a retransmitted QoS 2 message again, so it would wait forever.
 */
function keepEachClientsPublishesInOrder(aedes: Aedes): void {
  const previous = new WeakMap<Client, Promise<void>>()
  const routed = new WeakMap<Client, (() => void)[]>()
  const authorize = aedes.authorizePublish
  aedes.authorizePublish = (client, packet, callback) => {
    if (!client || packet.qos === 2) return authorize.call(aedes, client, packet, callback)
    let done!: () => void
    const mine = new Promise<void>((resolve) => (done = resolve))
    const before = previous.get(client) ?? Promise.resolve()
    previous.set(client, mine)
    void before.then(() => authorize.call(aedes, client, packet, (error) => {
      if (error) done()
      else routed.set(client, [...(routed.get(client) ?? []), done])
      callback(error)
    }))
  }
  const published = aedes.published
  aedes.published = (packet, client, callback) => {
    if (client && packet.qos !== 2) routed.get(client)?.shift()?.()
    published.call(aedes, packet, client, callback)
  }
}

/**
 * MQTT 3.1.1 §3.8.4: a message reaches a subscriber at the lower of its own QoS and the QoS granted
 * to the matching subscription. aedes looks the subscription up by the message's topic name, which
 * finds an exact filter but never a wildcard one: so a retained QoS 1 message reached a QoS 0
 * subscription to homeassistant/# at QoS 1 (the discovery listener's case). This hook lowers the
 * QoS to the highest granted by the client's filters that match the topic.
 */
function deliverAtGrantedQoS(aedes: Aedes): void {
  const forward = aedes.authorizeForward
  aedes.authorizeForward = (client, packet) => {
    const toForward = forward.call(aedes, client, packet)
    if (!toForward || toForward.qos === 0) return toForward
    const { subscriptions } = client as Client & { subscriptions: Record<string, { qos: number }> }
    const granted = Math.max(0, ...Object.entries(subscriptions)
      .filter(([filter]) => topicMatches(filter, toForward.topic))
      .map(([, subscription]) => subscription.qos))
    return granted < toForward.qos ? { ...toForward, qos: granted as 0 | 1 } : toForward
  }
}

/**
 * MQTT 3.1.1 §3.1.3.1: a client that connects with a zero-length client id and CleanSession 0 must be
 * refused with CONNACK return code 2 (identifier rejected), as the broker could not find its session
 * again. aedes makes up an id and accepts it. preConnect sees the CONNECT packet and notes such a
 * client; authenticate, the hook whose error carries a CONNACK return code, refuses it.
 */
function refuseEmptyIdForPersistentSession(aedes: Aedes): void {
  const refused = new WeakSet<Client>()
  const preConnect = aedes.preConnect
  aedes.preConnect = (client, packet, callback) => {
    if (packet.clientId === '' && !packet.clean) refused.add(client)
    preConnect.call(aedes, client, packet, callback)
  }
  const authenticate = aedes.authenticate
  aedes.authenticate = (client, username, password, callback) => {
    if (!refused.has(client)) return authenticate.call(aedes, client, username, password, callback)
    callback(Object.assign(new Error('a zero-length client id needs CleanSession 1'), { returnCode: 2 as const }), false)
  }
}

/**
 * Optional authentication, for a speaker who must listen beyond loopback: a CONNECT without this user
 * name and password is refused with CONNACK return code 4 (MQTT 3.1.1 §3.2.2.3).
 */
function requireCredentials(aedes: Aedes, expected: { username: string; password: string }): void {
  const same = (given: Buffer, wanted: string) => {
    const want = Buffer.from(wanted)
    return given.length === want.length && timingSafeEqual(given, want)
  }
  const authenticate = aedes.authenticate
  aedes.authenticate = (client, username, password, callback) => {
    if (username !== undefined && password !== undefined && same(Buffer.from(username), expected.username) && same(password, expected.password)) {
      return authenticate.call(aedes, client, username, password, callback)
    }
    callback(Object.assign(new Error('bad user name or password'), { returnCode: 4 as const }), false)
  }
}

/** The line `npm run broker` prints once it accepts connections. */
export function readyLine(broker: Pick<RunningBroker, 'url' | 'wsUrl' | 'unixUrl'>): string {
  return `broker ready on ${[broker.url, broker.wsUrl, broker.unixUrl].filter(Boolean).join(' and ')}; Ctrl-C to stop`
}

function listen(server: Server | HttpServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') {
        reject(new Error(`port ${port} is already in use (is Mosquitto running?); use --port or stop the other broker`))
      } else if (error.code === 'EACCES') {
        reject(new Error(`not allowed to listen on port ${port}; use --port with a number above 1023`))
      } else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') {
        reject(new Error(`cannot listen on ${host}: no such address on this machine; use --host 127.0.0.1`))
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
 * Listen on a Unix domain socket at `path`; resolves with its absolute path. A socket file left behind
 * by a broker that was killed is replaced; one that a running broker answers on is refused.
 */
async function listenUnix(server: Server, path: string): Promise<string> {
  const absolute = resolve(path)
  // The kernel keeps about 100 bytes of a socket's path (107 on Linux, 103 on macOS) and cuts the rest silently.
  if (Buffer.byteLength(absolute) > 100) {
    throw new Error(`--unix ${path} is too long for a socket path (${Buffer.byteLength(absolute)} bytes, at most 100); use a shorter one such as /tmp/mqtt.sock`)
  }
  if (!existsSync(dirname(absolute))) throw new Error(`--unix ${path}: the directory ${dirname(absolute)} does not exist; create it or use another path`)
  if (existsSync(absolute)) {
    if (!lstatSync(absolute).isSocket()) throw new Error(`--unix ${path} exists and is not a socket; give a path to a new file`)
    if (await answers(absolute)) throw new Error(`--unix ${path} is in use by another running broker; stop it, or use another path`)
    unlinkSync(absolute)
  }
  await new Promise<void>((done, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(new Error(error.code === 'EACCES'
      ? `not allowed to create the socket --unix ${path}; use a path in a directory you can write to`
      : `cannot listen on --unix ${path}: ${error.message}`)))
    server.listen(absolute, done)
  })
  return absolute
}

/** Whether something accepts connections on the Unix socket at `path`. */
function answers(path: string): Promise<boolean> {
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

/** One line per connect, subscribe, publish and disconnect: what a speaker wants the audience to see. */
function logEvents(aedes: Aedes, log: ClientEventListener): void {
  aedes.on('client', (client) => log(`client ${client.id} connected`, client.id))
  aedes.on('clientDisconnect', (client) => log(`client ${client.id} disconnected`, client.id))
  aedes.on('subscribe', (subscriptions, client) => {
    for (const s of subscriptions) log(`client ${client.id} subscribed to ${s.topic} (QoS ${s.qos})`, client.id)
  })
  // Logged on arrival (aedes' 'publish' event comes after routing, so after a quick DISCONNECT).
  const authorize = aedes.authorizePublish
  aedes.authorizePublish = (client, packet, callback) => {
    if (client) {
      const retained = packet.retain ? ' (retained)' : ''
      log(`client ${client.id} published ${JSON.stringify(packet.payload.toString())} to ${packet.topic}${retained}`, client.id)
    }
    authorize.call(aedes, client, packet, callback)
  }
}

async function main(): Promise<void> {
  startProgram()
  const { values } = parseCli()
  const username = values.username ?? process.env.MQTT_USERNAME
  const password = values.password ?? process.env.MQTT_PASSWORD
  if ((username === undefined) !== (password === undefined)) {
    fail('give both a user name and a password (--username and --password, or MQTT_USERNAME and MQTT_PASSWORD), or neither')
  }
  const host = values.host ?? '127.0.0.1'
  const broker = await startBroker({
    host,
    port: portFlag('--port', values.port) ?? 1883,
    wsPort: portFlag('--ws-port', values['ws-port']),
    unixPath: values.unix,
    persist: values.persist,
    maxPacketSize: sizeFlag(values['max-packet-size']),
    credentials: username !== undefined && password !== undefined ? { username, password } : undefined,
    log: values.quiet ? undefined : (line) => console.log(line),
  }).catch((error: unknown) => fail(messageOf(error)))
  const stop = () => {
    const timer = setTimeout(() => process.exit(0), 1000)
    timer.unref()
    void broker.close().then(() => process.exit(0))
  }
  // Before the ready line: whoever reads it may stop us at once, and must not find node's default handlers.
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  if (!isLoopback(host) && username === undefined) {
    process.stderr.write(`warning: listening on ${host} without a password: anyone who can reach this machine can publish and subscribe; add --username and --password\n`)
  }
  if (values.persist !== undefined) console.log(`keeping retained messages and sessions in ${values.persist}`)
  console.log(readyLine(broker))
}

function parseCli() {
  return parseFlags({ invocation: 'npm run broker --', description: 'Start the bundled MQTT broker (aedes) and print what its clients do.' }, {
    port: { type: 'string', arg: 'N', help: 'TCP port to listen on (default 1883; 0 picks a free port)' },
    host: { type: 'string', arg: 'ADDR', help: 'interface to listen on (default 127.0.0.1: this machine only)' },
    'ws-port': { type: 'string', arg: 'N', help: 'also serve MQTT over WebSocket on this port (off by default)' },
    unix: { type: 'string', arg: 'PATH', help: 'also serve MQTT on a Unix domain socket at PATH (clients use mqtt+unix://PATH)' },
    persist: { type: 'string', arg: 'DIR', help: 'keep retained messages and sessions on disk in DIR, across restarts (default: in memory)' },
    'max-packet-size': { type: 'string', arg: 'BYTES', help: `cut off a client that sends a larger packet (default ${DEFAULT_MAX_PACKET_SIZE})` },
    username: { type: 'string', arg: 'NAME', help: 'accept only clients that give this user name and --password (default $MQTT_USERNAME)' },
    password: { type: 'string', arg: 'SECRET', help: 'the password that goes with --username (default $MQTT_PASSWORD); without them anyone may connect' },
    quiet: { type: 'boolean', help: 'print only the ready line, not every client event' },
  })
}

function sizeFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) < 2) fail(`--max-packet-size must be a number of bytes of at least 2, not ${JSON.stringify(value)}`)
  return Number(value)
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.')
}

function portFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const port = Number(value)
  if (!/^\d+$/.test(value) || port > 65535) fail(`${flag} must be a port number from 0 to 65535, not ${JSON.stringify(value)}`)
  return port
}

if (isMain(import.meta.url)) await main()
