// The departures of aedes from MQTT that the bundled broker corrects, each with the section of the
// specification it restores. Each fix is made of aedes' own hooks (no fork, no patch), and a test runs
// aedes without them to show each is needed: test/conformance.test.ts (which names them on
// docs/conformance.md), test/no-loss-at-close.test.ts, test/retained-before-live.test.ts, and the --persist
// part of test/persistence.test.ts.
// lib/broker.ts applies them all to every aedes it starts; add a new fix to applyFixes. Hooks run on
// every message, so each fix keeps the common case to a few comparisons: the bundled broker must relay
// as fast as aedes alone (npm run bench).
import type { IncomingMessage } from 'node:http'
import { Readable, type Duplex } from 'node:stream'
import type { Aedes, Client } from 'aedes'
import type { IPublishPacket } from 'mqtt-packet'
import { fixMqtt5 } from './broker-mqtt5.ts'
import { topicMatches } from './topics.ts'

/**
 * Every fix, in the order its hooks must wrap each other; `onDisk` when aedes keeps its store on disk
 * (--persist) or on Redis, `onRedis` when its messages also flow through Redis (--redis).
 */
export function applyFixes(aedes: Aedes, { onDisk = false, onRedis = false }: { onDisk?: boolean; onRedis?: boolean } = {}): void {
  // Only a store on disk makes aedes route messages out of the order it numbered them in.
  if (onDisk) {
    storeInOrder(aedes)
    dropOnlyTrueDuplicates(aedes)
  }
  if (!onRedis) sendRetainedBeforeLive(aedes)
  keepDollarTopicsFromWildcards(aedes)
  deliverAtGrantedQoS(aedes)
  keepEachClientsPublishesInOrder(aedes)
  deliverQueuedBeforeLive(aedes)
  // After the 3.1.1 fixes: its size check must see each message as they leave it.
  fixMqtt5(aedes)
  // Last, so that its hooks see each PUBLISH as it arrives, before the ordering fix holds it back.
  handleWhatArrivedBeforeTheEnd(aedes)
}

/** What aedes keeps of a client's subscriptions (`subscriptions`, left out of its types): filter -> granted QoS. */
type Subscriptions = Record<string, { qos: number }>
const subscriptionsOf = (client: Client) => (client as Client & { subscriptions: Subscriptions }).subscriptions

/**
 * MQTT 3.1.1 §3.3.1.3, §4.6: a new subscriber gets a topic's retained message before anything published
 * there after it. aedes adds a subscription to its message flow, which says so on the next turn of
 * the event loop (setImmediate); only then does aedes send the SUBACK and the retained messages. A
 * PUBLISH read in that turn, from a client that published at the moment the subscriber subscribed,
 * reached the subscriber first, and the retained message, older, came after it, every time: a Home
 * Assistant that follows a device's availability as it discovers it was left with the stale value.
 * The in-memory flow adds a subscription at once, so here it says so before any more input is read.
 * (On Redis the flow must wait for Redis, and this is not done; with a store on disk, aedes reads the
 * retained messages from the disk, and a PUBLISH may still come first.)
 */
export function sendRetainedBeforeLive(aedes: Aedes): void {
  // aedes keeps its message flow in `mq`, which its types leave out.
  const mq = (aedes as Aedes & { mq: { on(topic: string, notify: unknown, done?: () => void): unknown } }).mq
  const on = mq.on.bind(mq)
  mq.on = (topic, notify, done) => {
    on(topic, notify)
    if (done) process.nextTick(done)
    return mq
  }
}

/**
 * MQTT 3.1.1 §4.6: messages from one client on a topic reach subscribers in the order they were sent,
 * with a store on disk too. aedes writes a retained message, and a QoS 1 message for each session that
 * is away, to its store before it routes the message; aedes-persistence-level runs those writes side by
 * side, and they finish in any order: a burst of QoS 1 messages from one client then reached a
 * subscriber shuffled (or, with aedes' duplicate filter, cut short) whenever a session away from the
 * broker followed the topic. Here each write starts once the one before it has finished, so messages
 * leave the store in the order they came. In memory, writes finish in order already.
 */
export function storeInOrder(aedes: Aedes): void {
  // aedes keeps its store in `persistence`, which its types leave out.
  const persistence = (aedes as Aedes & { persistence: Record<'storeRetained' | 'outgoingEnqueueCombi', (...args: unknown[]) => Promise<unknown>> }).persistence
  let last: Promise<unknown> = Promise.resolve()
  for (const name of ['storeRetained', 'outgoingEnqueueCombi'] as const) {
    const write = persistence[name].bind(persistence)
    persistence[name] = (...args) => {
      const mine = last.then(() => write(...args))
      last = mine.catch(() => undefined)
      return mine
    }
  }
}

/**
 * MQTT 3.1.1 §4.3: a message is delivered (at least once, at QoS 1), even when another overtakes it on
 * its way. aedes numbers every message as it comes in, and drops, as a duplicate, any message whose
 * number is below the last one a client was sent. That only holds while messages leave in the order
 * they came: with a store on disk (--persist), a retained message waits for its write, and so does a
 * QoS 1 message queued for a session that is away; a message from another client passes it meanwhile,
 * and a subscriber of both lost the first one, every time (in memory, nothing passes: writes take no
 * time). What the filter is for, within one broker,
 * is a message that matches two filters of one client, which aedes would otherwise send twice; those
 * copies reach the client one right after the other. So aedes' filter is turned off, and a message is
 * dropped only when it is the very one the client was just sent.
 */
export function dropOnlyTrueDuplicates(aedes: Aedes): void {
  // aedes reads and writes a client's `duplicates` (left out of its types) for its filter: here it reads nothing.
  const noFilter = new Proxy({}, { get: () => undefined, set: () => true, deleteProperty: () => true })
  const handle = aedes.handle
  aedes.handle = (stream, request) => {
    const client = handle(stream, request)
    ;(client as Client & { duplicates: object }).duplicates = noFilter
    return client
  }
  const lastSent = new WeakMap<Client, number>()
  const forward = aedes.authorizeForward
  aedes.authorizeForward = (client, packet) => {
    // Retained messages sent on SUBSCRIBE carry no broker id: aedes never filters them either.
    if (packet.brokerId) {
      if (lastSent.get(client) === packet.brokerCounter) return null
      lastSent.set(client, packet.brokerCounter)
    }
    return forward.call(aedes, client, packet)
  }
}

/**
 * MQTT 3.1.1 §4.7.2: a filter that starts with + or # must not match a topic name that starts with $.
 * aedes keeps to this for live messages but sends retained ones anyway (subscribe to # and you get
 * $SYS/broker/version); this hook, which sees every message on its way to a client, drops a $ topic
 * unless one of the client's filters that does not start with a wildcard matches it.
 */
export function keepDollarTopicsFromWildcards(aedes: Aedes): void {
  const forward = aedes.authorizeForward
  aedes.authorizeForward = (client, packet) => {
    if (packet.topic.startsWith('$')) {
      const filters = Object.keys(subscriptionsOf(client))
      if (!filters.some((filter) => !/^[+#]/.test(filter) && topicMatches(filter, packet.topic))) return null
    }
    return forward.call(aedes, client, packet)
  }
}

/**
 * MQTT 3.1.1 §3.8.4: a message reaches a subscriber at the lower of its own QoS and the QoS granted
 * to the matching subscription. aedes looks the subscription up by the message's topic name, which
 * finds an exact filter but never a wildcard one: so a retained QoS 1 message reached a QoS 0
 * subscription to homeassistant/# at QoS 1 (the discovery listener's case). This hook lowers the
 * QoS to the highest granted by the client's filters that match the topic. Most clients hold no
 * subscription granted below the message's QoS, which is known from the lowest QoS they were granted,
 * kept per client until it subscribes or unsubscribes again: they pay one lookup per message.
 */
export function deliverAtGrantedQoS(aedes: Aedes): void {
  const lowestGranted = new WeakMap<Client, number>()
  const forget = (_subscriptions: unknown, client: Client) => lowestGranted.delete(client)
  aedes.on('subscribe', forget)
  aedes.on('unsubscribe', forget)
  const lowest = (client: Client) => {
    let qos = lowestGranted.get(client)
    if (qos === undefined) {
      qos = Math.min(2, ...Object.values(subscriptionsOf(client)).map((subscription) => subscription.qos))
      lowestGranted.set(client, qos)
    }
    return qos
  }
  const forward = aedes.authorizeForward
  aedes.authorizeForward = (client, packet) => {
    const toForward = forward.call(aedes, client, packet)
    if (!toForward || toForward.qos === 0 || lowest(client) >= toForward.qos) return toForward
    const granted = Math.max(0, ...Object.entries(subscriptionsOf(client))
      .filter(([filter]) => topicMatches(filter, toForward.topic))
      .map(([, subscription]) => subscription.qos))
    return granted < toForward.qos ? { ...toForward, qos: granted as 0 | 1 } : toForward
  }
}

/**
 * MQTT 3.1.1 §4.6: messages from one client on a topic reach subscribers in the order they were sent.
 * aedes stores a retained message before routing it, asynchronously, so a publish that follows at
 * once overtakes it; aedes' duplicate filter then drops the overtaken message as already seen. So a
 * subscriber of a topic that got "on" (retained) then "off" saw only "off". Here a client's publishes
 * that follow a retained one wait until it has been routed (aedes calls `published` last, with the
 * very packet the client sent), then go on in the order they came. Any other publish is routed at
 * once, in order, by aedes itself. QoS 2 is left alone: aedes does not route a retransmitted QoS 2
 * message again, so it would wait forever.
 */
export function keepEachClientsPublishesInOrder(aedes: Aedes): void {
  /** Per client, only while one of its retained messages is being stored: that message, and what waits behind it. */
  const lanes = new WeakMap<Client, { storing?: object; waiting: (() => void)[] }>()
  const routed = (client: Client, packet: object) => {
    const lane = lanes.get(client)
    if (lane?.storing !== packet) return
    lane.storing = undefined
    while (!lane.storing && lane.waiting.length > 0) lane.waiting.shift()!()
    if (!lane.storing && lane.waiting.length === 0 && lanes.get(client) === lane) lanes.delete(client)
  }
  const authorize = aedes.authorizePublish
  aedes.authorizePublish = (client, packet, callback) => {
    const lane = client && lanes.get(client)
    if (!client || packet.qos === 2 || (!lane && !packet.retain)) return authorize.call(aedes, client, packet, callback)
    const go = () => {
      if (packet.retain) {
        const current = lanes.get(client) ?? { waiting: [] }
        current.storing = packet
        lanes.set(client, current)
      }
      authorize.call(aedes, client, packet, (error) => {
        // Refused: it will never be routed, so it holds nothing back.
        if (error) routed(client, packet)
        callback(error)
      })
    }
    if (lane) lane.waiting.push(go)
    else go()
  }
  const published = aedes.published
  aedes.published = (packet, client, callback) => {
    if (client && packet.retain) routed(client, packet)
    published.call(aedes, packet, client, callback)
  }
}

type Deliver = (packet: IPublishPacket, done: () => void) => void

/**
 * MQTT 3.1.1 §4.6 (MQTT 5 §4.6 too): a client's messages on a topic reach a subscriber in the order it
 * sent them, and a session that was away is no exception. When it comes back, aedes restores its
 * subscriptions (so live messages flow again) and only then sends what was queued for it, one message
 * at a time from its store: a device that kept publishing had its new messages delivered between its
 * older ones. Here, for a client that resumes a session (Clean Session 0; Clean Start 0 in MQTT 5),
 * live messages wait until aedes has sent the queue ('clientReady'), then go on in the order they
 * came. A client that starts clean has no queue and is left alone, at no cost. (From Redis each
 * queued message takes round trips, so there a burst queued for a session reached it with a later
 * message in the middle, every time.)
 */
export function deliverQueuedBeforeLive(aedes: Aedes): void {
  const releases = new WeakMap<Client, () => void>()
  aedes.on('clientReady', (client) => releases.get(client)?.())
  const preConnect = aedes.preConnect
  aedes.preConnect = (client, packet, callback) => {
    if (packet.clean === false) {
      // aedes subscribes each filter with the client's delivery at QoS 0 or above (left out of its
      // types), once it has restored the session: wrapped before that, they see every live message.
      const internals = client as Client & Record<'deliver0' | 'deliverQoS', Deliver>
      const held: (() => void)[] = []
      let queueSent = false
      for (const name of ['deliver0', 'deliverQoS'] as const) {
        const deliver = internals[name]
        internals[name] = (message, done) => {
          if (queueSent) return deliver(message, done)
          held.push(() => deliver(message, () => undefined))
          // Taken now, as aedes takes a message it has yet to write, so that routing goes on for
          // everyone else meanwhile: from Redis a long queue takes many round trips.
          setImmediate(done)
        }
      }
      const release = () => {
        releases.delete(client)
        queueSent = true
        for (const deliver of held.splice(0)) deliver()
      }
      releases.set(client, release)
      // A connection lost before it is ready: what waited is handed to aedes, which drops it as for
      // any closed client.
      client.conn.once('close', release)
    }
    preConnect.call(aedes, client, packet, callback)
  }
}

/**
 * No message lost at a close. A client that publishes and quits at once (the article's publisher:
 * connect, publish, end of script) sends CONNECT, PUBLISH and the end of its connection together.
 * aedes closes the client as soon as the connection's end is read, which throws away what it had
 * read but not yet handled: packets queued until the CONNACK is sent, the CONNECT being
 * authenticated, the PUBACK of a QoS 1 message that it sends before routing it. A reset connection
 * (a peer that quits with unread data sends RST) loses what it had received as well. Mosquitto
 * handles every packet it received before it acts on the end; so does the bundled broker: each
 * connection reaches aedes through a ClosingAfterWork stream, which tells aedes of the end only once
 * the client is connected (or refused), aedes has read every byte that came before the end, and every
 * PUBLISH has been through the authorization hooks. aedes' own requests to close the connection (a
 * DISCONNECT) wait for the same; an error closes it at once.
 */
export function handleWhatArrivedBeforeTheEnd(aedes: Aedes): void {
  /**
   * Per client, PUBLISH packets whose authorization hooks have not answered yet (the order fix holds
   * some back). Once they answer, aedes writes the PUBACK at once and routes the message without the
   * connection; until then, it needs the connection. Hooks that answer at once, as most do, cost nothing here.
   */
  const unanswered = new WeakMap<Client, number>()
  const answered = (client: Client) => {
    const left = unanswered.get(client)! - 1
    if (left > 0) return void unanswered.set(client, left)
    unanswered.delete(client)
    if (client.conn instanceof ClosingAfterWork) client.conn.endIfDone()
  }
  const authorize = aedes.authorizePublish
  aedes.authorizePublish = (client, packet, callback) => {
    if (!client) return authorize.call(aedes, client, packet, callback)
    let answeredNow = false
    let counted = false
    authorize.call(aedes, client, packet, (error) => {
      answeredNow = true
      callback(error)
      if (counted) answered(client)
    })
    if (answeredNow) return
    counted = true
    unanswered.set(client, (unanswered.get(client) ?? 0) + 1)
  }
  const handle = aedes.handle
  aedes.handle = (stream: Duplex, request?: IncomingMessage) => {
    const connection = new ClosingAfterWork(stream, (client) => !unanswered.has(client))
    // aedes' types ask for a Duplex; it reads, writes, corks and destroys, which is what this one does.
    const client = handle(connection as unknown as Duplex, request)
    client.on('connected', () => connection.endIfDone())
    return client
  }
}

/** How long a connection that has ended may wait for aedes to finish with it, at most. */
const FINISH_TIMEOUT_MS = 5000

/**
 * A connection as aedes sees it: the bytes of `socket`, passed on as they come, whose end (or reset)
 * reaches aedes only once aedes is done with what came before it. Writes go straight to the socket,
 * without a stream of their own, and are dropped once the peer is gone (aedes routes a QoS 1 message
 * only after writing its PUBACK, even to a peer that has left). TCP sockets must allow half-open
 * connections, or Node.js would stop writing once the peer's FIN is read.
 */
export class ClosingAfterWork extends Readable {
  /** Set by aedes' Client on the stream it is given. */
  declare client?: Client
  private peerEnded = false
  /** The socket can no longer be written to: reset, or closed. */
  private gone = false
  private ended = false
  private destroying?: (error: Error | null) => void
  private timeout?: NodeJS.Timeout

  private readonly socket: Duplex
  private readonly allAnswered: (client: Client) => boolean

  constructor(socket: Duplex, allAnswered: (client: Client) => boolean) {
    super()
    this.socket = socket
    this.allAnswered = allAnswered
    socket.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause()
    })
    const peerEnded = () => {
      if (this.peerEnded) return
      this.peerEnded = true
      this.endIfDone()
    }
    const gone = () => {
      this.gone = true
      peerEnded()
    }
    socket.on('end', peerEnded)
    socket.on('error', gone)
    socket.on('close', gone)
    socket.on('drain', () => this.emit('drain'))
  }

  /**
   * aedes reads once per 'readable' event, `read(null)`, and parses what it gets: every byte waiting, as
   * Node.js gave up to version 25. From Node.js 26 a read without a size returns only the first chunk
   * waiting (nodejs/node#60441), and 'readable' comes again only once the buffer has been emptied: the
   * rest of a CONNECT that came in several pieces (MQTT.js sends one WebSocket frame per piece) waited
   * for ever, and no CONNACK came. So a read without a size takes every byte waiting, on every Node.js.
   */
  override read(size?: number | null): Buffer | null {
    return super.read(size ?? (this.readableLength || undefined))
  }

  override _read(): void {
    this.socket.resume()
    // aedes reads when it is ready for more; what it reads now is handled by the next tick.
    if (this.peerEnded) process.nextTick(() => this.endIfDone())
  }

  write(chunk: Buffer | string, encoding?: BufferEncoding | ((error?: Error | null) => void), callback?: (error?: Error | null) => void): boolean {
    if (this.gone) {
      const done = typeof encoding === 'function' ? encoding : callback
      if (done) process.nextTick(done)
      return true
    }
    return this.socket.write(chunk, encoding as BufferEncoding, callback)
  }

  cork(): void {
    this.socket.cork()
  }

  uncork(): void {
    this.socket.uncork()
  }

  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    if (error || this.done()) {
      this.finish(callback, error)
      return
    }
    this.destroying = callback
    this.startTimeout()
  }

  /** Whether aedes has handled everything the peer sent: connected or refused, all bytes read, every PUBLISH authorized. */
  private done(): boolean {
    const { client } = this
    if (!client || client.closed) return true
    return !client.connecting && this.readableLength === 0 && this.allAnswered(client)
  }

  /** Tell aedes of the end (or let its close go ahead) if the peer has ended and aedes is done; called whenever that may have become true. */
  endIfDone(): void {
    if (this.destroyed && !this.destroying) return
    if (this.destroying) {
      if (this.done()) this.finish(this.destroying, null)
      return
    }
    if (!this.peerEnded || this.ended) return
    if (!this.done()) {
      this.startTimeout()
      return
    }
    this.ended = true
    clearTimeout(this.timeout)
    this.push(null)
    // As a socket does at its end: 'end' is emitted now, not once aedes reads again.
    this.read(0)
  }

  private finish(callback: (error: Error | null) => void, error: Error | null): void {
    this.destroying = undefined
    clearTimeout(this.timeout)
    this.socket.destroy()
    callback(error)
  }

  /** A client that never finishes connecting, or a hook that never answers, must not hold a connection open. */
  private startTimeout(): void {
    this.timeout ??= setTimeout(() => {
      if (this.destroying) this.finish(this.destroying, null)
      else this.destroy(new Error(`the connection ended, and aedes had not finished with it ${FINISH_TIMEOUT_MS / 1000} s later`))
    }, FINISH_TIMEOUT_MS).unref()
  }
}
