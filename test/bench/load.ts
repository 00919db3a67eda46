// One load process of `npm run bench`. test/bench/bench.ts bundles this file and starts several
// copies with plain node (no TypeScript loader), so that the clients are not what limits a broker:
// each speaks MQTT with prepared packets over raw sockets, far cheaper per message than a client
// library. Told over IPC what to do (Task), it answers each task with 'ready' once connected, and
// 'done' when its part is over.
import { connect, type Socket } from 'node:net'
import mqttPacket, { type Packet } from 'mqtt-packet'

interface Subscribe {
  kind: 'subscribe'
  url: string
  protocolVersion: 4 | 5
  topic: string
  qos: 0 | 1
  /** Connections, each subscribed to `topic`. */
  connections: number
  /** Messages each connection must receive before this task is done. */
  expect: number
  /**
   * Name the first connection's count of messages received, for a publisher of this process to pace
   * itself by (Publish's pacedBy).
   */
  pacer?: string
}

interface Publish {
  kind: 'publish'
  url: string
  protocolVersion: 4 | 5
  topic: string
  qos: 0 | 1
  count: number
  payloadBytes: number
  /**
   * At QoS 0: keep at most WINDOW messages between this publisher and the subscriber connection of
   * this process named so (Subscribe's pacer), as QoS 1 does with PUBACKs. Without it a QoS 0
   * publisher writes as fast as its socket takes, and what a round measures is how the broker's
   * queues behave under a flood, which swings by a third from one round to the next whatever the
   * broker.
   */
  pacedBy?: string
}

/** Start publishing (after every task is ready), or close every connection of the tasks before. */
type Control = { kind: 'go' } | { kind: 'close' }

export type Task = Subscribe | Publish | Control

export type Report = { event: 'ready' } | { event: 'done' } | { event: 'error'; message: string }

/**
 * Messages in flight per publisher at QoS 1, and at QoS 0 when paced: a window, as a client library
 * keeps one.
 */
const WINDOW = 200
/**
 * QoS 0 messages written at once when not paced: one write of a few hundred packets, as a busy
 * client's socket carries.
 */
const BATCH = 500

const report = (message: Report) => process.send!(message)
const sockets: Socket[] = []
/** Messages received so far by each named subscriber connection, and who waits on it. */
const pacers = new Map<string, { received: number; changed?: () => void }>()
let go: (() => void) | undefined

process.on('message', (task: Task) => {
  if (task.kind === 'go') return go?.()
  if (task.kind === 'close') {
    for (const socket of sockets.splice(0)) socket.destroy()
    pacers.clear()
    return report({ event: 'done' })
  }
  const run = task.kind === 'subscribe' ? subscribe(task) : publish(task)
  run.catch((error: unknown) =>
    report({ event: 'error', message: error instanceof Error ? error.message : String(error) }),
  )
})
// The bench ends: so does this process.
process.on('disconnect', () => process.exit(0))

/**
 * A connected MQTT session: CONNECT sent and CONNACK received; `packets` gets every packet after
 * it.
 */
async function session(
  url: string,
  protocolVersion: 4 | 5,
  packets: (packet: Packet) => void,
): Promise<Socket> {
  const { hostname, port } = new URL(url)
  const socket = connect({ host: hostname, port: Number(port), noDelay: true })
  sockets.push(socket)
  const parser = mqttPacket.parser({ protocolVersion })
  let connected!: () => void
  let refused!: (error: Error) => void
  const connack = new Promise<void>((resolve, reject) => {
    connected = resolve
    refused = reject
  })
  parser.on('packet', (packet: Packet) => {
    if (packet.cmd !== 'connack') return packets(packet)
    const code = packet.reasonCode ?? packet.returnCode
    if (code === 0) connected()
    else refused(new Error(`${url} refused the connection with code ${code}`))
  })
  parser.on('error', refused)
  socket.on('data', (chunk) => parser.parse(chunk))
  socket.on('error', refused)
  socket.write(
    mqttPacket.generate(
      {
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion,
        clean: true,
        clientId: '',
        keepalive: 0,
      },
      { protocolVersion },
    ),
  )
  await connack
  return socket
}

async function subscribe(task: Subscribe): Promise<void> {
  let remaining = task.connections
  const pacer: { received: number; changed?: () => void } | undefined =
    task.pacer === undefined ? undefined : { received: 0 }
  if (task.pacer !== undefined) pacers.set(task.pacer, pacer!)
  const all = Array.from({ length: task.connections }, async (_, connection) => {
    let received = 0
    let subscribed!: () => void
    const suback = new Promise<void>((resolve) => (subscribed = resolve))
    // PUBACKs of one chunk of input go out in one write.
    let acks: Buffer[] = []
    const socket = await session(task.url, task.protocolVersion, (packet) => {
      if (packet.cmd === 'suback') return subscribed()
      if (packet.cmd !== 'publish') return
      if (packet.qos === 1)
        acks.push(Buffer.from([0x40, 0x02, packet.messageId! >> 8, packet.messageId! & 0xff]))
      if (connection === 0 && pacer) {
        pacer.received++
        pacer.changed?.()
      }
      if (++received === task.expect && --remaining === 0) report({ event: 'done' })
    })
    socket.on('data', () => {
      if (acks.length === 0) return
      socket.write(Buffer.concat(acks))
      acks = []
    })
    socket.write(
      mqttPacket.generate(
        { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: task.topic, qos: task.qos }] },
        { protocolVersion: task.protocolVersion },
      ),
    )
    await suback
  })
  await Promise.all(all)
  report({ event: 'ready' })
}

async function publish(task: Publish): Promise<void> {
  const { protocolVersion, qos } = task
  let acked = 0
  let ack: (() => void) | undefined
  const socket = await session(task.url, protocolVersion, (packet) => {
    if (packet.cmd !== 'puback') return
    acked++
    ack?.()
  })
  const payload = Buffer.alloc(task.payloadBytes, 'x')
  const template = mqttPacket.generate(
    {
      cmd: 'publish',
      topic: task.topic,
      payload,
      qos,
      retain: false,
      dup: false,
      messageId: qos ? 1 : undefined,
    },
    { protocolVersion },
  )
  // The packet identifier follows the fixed header and the topic name: there it is rewritten per
  // message.
  const idAt = template.length - payload.length - 2 - (protocolVersion === 5 ? 1 : 0)
  const packets = (first: number, n: number) => {
    const bytes = Buffer.alloc(template.length * n)
    for (let i = 0; i < n; i++) {
      template.copy(bytes, i * template.length)
      if (qos) bytes.writeUInt16BE(((first + i) % 65535) + 1, i * template.length + idAt)
    }
    return bytes
  }
  await new Promise<void>((resolve) => {
    go = resolve
    report({ event: 'ready' })
  })
  // A window of messages in one write, and the next once all of it has arrived: at QoS 1
  // acknowledged, at QoS 0 (paced) received by the pacing subscriber. Each broker is then handed
  // the same batches; a window refilled as it drains would leave the size of each write to the
  // timing of the round.
  const pacer = task.pacedBy === undefined ? undefined : pacers.get(task.pacedBy)
  if (task.pacedBy !== undefined && !pacer)
    throw new Error(`no subscriber named ${task.pacedBy} in this process to pace by`)
  const done = qos === 1 ? () => acked : pacer ? () => pacer.received : undefined
  if (!done) {
    const drained = () => new Promise<void>((resolve) => socket.once('drain', resolve))
    const batch = packets(0, BATCH)
    for (let sent = 0; sent < task.count; sent += BATCH) {
      const n = Math.min(BATCH, task.count - sent)
      if (!socket.write(n === BATCH ? batch : batch.subarray(0, n * template.length)))
        await drained()
    }
  } else {
    let sent = 0
    await new Promise<void>((resolve) => {
      const more = () => {
        if (done() >= task.count) return resolve()
        if (sent > done()) return
        const n = Math.min(WINDOW, task.count - sent)
        if (n > 0) {
          socket.write(packets(sent, n))
          sent += n
        }
      }
      if (pacer) pacer.changed = more
      else ack = more
      more()
    })
  }
  report({ event: 'done' })
}
