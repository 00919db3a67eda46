// A window on the wire: a TCP proxy to put between MQTT clients and a broker. It passes every byte
// on unchanged and prints each MQTT packet it sees, in each direction, as its type, its size and
// its bytes (with --text, as text); of bytes that are not MQTT, such as TLS, the first ones.
import { connect as tcpConnect, createServer, type Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'
import { fail, messageOf } from '../../lib/cli.ts'
import { DEFAULT_URL, parseFlags } from '../../lib/demo-flags.ts'

const values = parseFlags(
  'Pass MQTT traffic between clients and a broker unchanged, printing every packet in hex.',
  {
    'listen-port': {
      type: 'string',
      arg: 'N',
      help:
        "port the clients connect to instead of the broker's (default 1884; 0 picks a free " +
        'one)',
    },
    to: {
      type: 'string',
      arg: 'URL',
      help: `the broker, an mqtt:// or mqtts:// URL (default $MQTT_URL, else ${DEFAULT_URL})`,
    },
    text: {
      type: 'boolean',
      help: 'show the bytes as text, not hex: a dot for a byte that is not a printable character',
    },
  },
)
const listenPort = Number(values['listen-port'] ?? '1884')
if (!/^\d+$/.test(values['listen-port'] ?? '1884') || listenPort > 65535) {
  fail(
    `--listen-port must be a port number from 0 to 65535, not ` +
      JSON.stringify(values['listen-port']),
  )
}
const to = values.to ?? process.env.MQTT_URL ?? DEFAULT_URL
const broker = brokerAddress(to)

// Refuse to start without a broker behind us: a tap in front of nothing would only confuse.
await new Promise<void>((resolve) => {
  const probe = tcpConnect(broker.port, broker.host, () => {
    probe.destroy()
    resolve()
  })
  probe.once('error', (error: NodeJS.ErrnoException) =>
    fail(
      error.code === 'ECONNREFUSED'
        ? `cannot reach the broker at ${to} (connection refused); start one with npm run broker, ` +
            `or pass --to`
        : `cannot reach the broker at ${to} (${error.message}); check --to`,
    ),
  )
})

let connections = 0
const sockets = new Set<Socket>()
const server = createServer((client) => {
  const n = ++connections
  const upstream = tcpConnect(broker.port, broker.host)
  for (const socket of [client, upstream]) {
    sockets.add(socket)
    // A side that is closed or reset closes the other (a TLS client may close before its broker
    // does, and nothing reads the broker's end then); the connection's end is reported once, below.
    const other = socket === client ? upstream : client
    socket.on('error', () => other.destroy())
    socket.on('close', () => other.destroy())
  }
  console.log(`connection ${n} open`)
  // The broker's packets are read in the version the client's CONNECT asked for: an MQTT 5 CONNACK
  // or PUBLISH carries properties, which a 3.1.1 parser would take for a malformed packet.
  const version = { protocolVersion: 4 }
  watch(client, `client ${n} → broker`, (connect) => (version.protocolVersion = connect))
  watch(upstream, `broker → client ${n}`, () => {}, version)
  // The bytes themselves go through untouched, in both directions.
  client.pipe(upstream)
  upstream.pipe(client)
  const closed = (socket: Socket) => new Promise((resolve) => socket.once('close', resolve))
  void Promise.all([closed(client), closed(upstream)]).then(() => {
    sockets.delete(client)
    sockets.delete(upstream)
    console.log(`connection ${n} closed`)
  })
})
server.once('error', (error: NodeJS.ErrnoException) =>
  fail(
    error.code === 'EADDRINUSE'
      ? `port ${listenPort} is already in use; pass another --listen-port (0 picks a free one)`
      : `cannot listen on port ${listenPort}: ${messageOf(error)}`,
  ),
)
server.listen(listenPort, '127.0.0.1', () => {
  const { port } = server.address() as { port: number }
  // Over TLS a client checks the broker's name: localhost, the name a local certificate is for.
  const at = broker.tls ? `mqtts://localhost:${port}` : `mqtt://127.0.0.1:${port}`
  console.log(`tap on ${at}, passing every byte to and from ${to}`)
})

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.close()
    for (const socket of sockets) socket.destroy()
    process.exit(0)
  })
}

/**
 * Print every MQTT packet in the bytes that `socket` receives. mqtt-packet's parser finds each
 * packet and its remaining length; the packet's bytes are the fixed header (1 byte, then the
 * remaining length in 1 to 4 bytes) followed by that many bytes. A CONNECT's protocol version goes
 * to `connected`; the parser reads the rest of its own direction in that version by itself, and
 * reads `version` (which it keeps, not a copy) for each packet of the other.
 */
function watch(
  socket: Socket,
  direction: string,
  connected: (protocolVersion: number) => void,
  version = { protocolVersion: 4 },
): void {
  const parser = mqttPacket.parser(version)
  let unread = Buffer.alloc(0)
  let parsing = true
  parser.on('packet', (packet) => {
    if (packet.cmd === 'connect') connected(packet.protocolVersion ?? 4)
    const remaining = packet.length ?? 0
    const size = 1 + lengthBytes(remaining) + remaining
    const bytes = unread.subarray(0, size)
    unread = unread.subarray(size)
    console.log(
      `${direction}  ${packet.cmd.toUpperCase().padEnd(11)} ${String(size).padStart(3)} bytes: ` +
        `${shown(bytes)}`,
    )
  })
  // TLS, say: its records are no MQTT packets. The first bytes are shown; the rest pass unread.
  parser.on('error', () => {
    parsing = false
    const size = String(unread.length).padStart(3)
    console.log(`${direction}  not MQTT    ${size} bytes: ${shown(unread)}`)
  })
  socket.on('data', (chunk: Buffer) => {
    if (!parsing) return
    unread = Buffer.concat([unread, chunk])
    parser.parse(chunk)
  })
}

/** The bytes as --text asks: as text, or else in hex. */
function shown(bytes: Buffer): string {
  return values.text ? text(bytes) : hex(bytes)
}

/** The bytes as text, the first 64 of them: printable ASCII as it is, a dot for any other byte. */
function text(bytes: Buffer): string {
  const shown = [...bytes.subarray(0, 64)].map((b) =>
    b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.',
  )
  return `${shown.join('')}${bytes.length > 64 ? ' …' : ''}`
}

/** How many bytes MQTT's variable-length encoding takes for `length` (MQTT 3.1.1 §2.2.3). */
function lengthBytes(length: number): number {
  return length < 128 ? 1 : length < 16_384 ? 2 : length < 2_097_152 ? 3 : 4
}

/** The bytes in hex, the first 32 of them for a long packet. */
function hex(bytes: Buffer): string {
  const shown = [...bytes.subarray(0, 32)].map((b) => b.toString(16).padStart(2, '0')).join(' ')
  return bytes.length > 32 ? `${shown} …` : shown
}

function brokerAddress(url: string): { host: string; port: number; tls: boolean } {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    fail(`${JSON.stringify(url)} is not a URL; pass --to like ${DEFAULT_URL}`)
  }
  const tls = parsed.protocol === 'mqtts:'
  if (!['mqtt:', 'tcp:', 'mqtts:'].includes(parsed.protocol)) {
    fail(
      `cannot tap ${url}: the tap passes TCP, so --to must be an mqtt:// or mqtts:// URL such as ` +
        `${DEFAULT_URL}`,
    )
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, '')
  return { host, port: Number(parsed.port || (tls ? 8883 : 1883)), tls }
}
