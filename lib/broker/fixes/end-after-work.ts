// A client's end reaches aedes only once aedes has handled everything the client sent before it.
// Keeps [MQTT-4.5.0-1] (§4.5 of MQTT 3.1.1 and of MQTT 5): a message the broker took is delivered.
import type { IncomingMessage } from 'node:http'
import { Readable, type Duplex } from 'node:stream'
import type { Aedes, Client } from 'aedes'

/**
 * No message lost at a close. A client that publishes and quits at once (the article's publisher:
 * connect, publish, end of script) sends CONNECT, PUBLISH and the end of its connection together.
 * aedes closes the client as soon as the connection's end is read, which throws away what it had
 * read but not yet handled: packets queued until the CONNACK is sent, the CONNECT being
 * authenticated, the PUBACK of a QoS 1 message that it sends before routing it. A reset connection
 * (a peer that quits with unread data sends RST) loses what it had received as well. Mosquitto
 * handles every packet it received before it acts on the end; so does the bundled broker: each
 * connection reaches aedes through a ClosingAfterWork stream, which tells aedes of the end only
 * once the client is connected (or refused), aedes has read every byte that came before the end,
 * and every PUBLISH has been through the authorization hooks. aedes' own requests to close the
 * connection (a DISCONNECT) wait for the same; an error closes it at once.
 */
export function handleWhatArrivedBeforeTheEnd(aedes: Aedes): void {
  /**
   * Per client, PUBLISH packets whose authorization hooks have not answered yet (the order fix
   * holds some back). Once they answer, aedes writes the PUBACK at once and routes the message
   * without the connection; until then, it needs the connection. Hooks that answer at once, as most
   * do, cost nothing here.
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
    // aedes' types ask for a Duplex; it reads, writes, corks and destroys, which is what this one
    // does.
    const client = handle(connection as unknown as Duplex, request)
    client.on('connected', () => connection.endIfDone())
    return client
  }
}

/** How long a connection that has ended may wait for aedes to finish with it, at most. */
const FINISH_TIMEOUT_MS = 5000

/**
 * A connection as aedes sees it: the bytes of `socket`, passed on as they come, whose end (or
 * reset) reaches aedes only once aedes is done with what came before it. Writes go straight to the
 * socket, without a stream of their own, and are dropped once the peer is gone (aedes routes a QoS
 * 1 message only after writing its PUBACK, even to a peer that has left). TCP sockets must allow
 * half-open connections, or Node.js would stop writing once the peer's FIN is read.
 */
class ClosingAfterWork extends Readable {
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
   * aedes reads once per 'readable' event, `read(null)`, and parses what it gets: every byte
   * waiting, as Node.js gave up to version 25. From Node.js 26 a read without a size returns only
   * the first chunk waiting (nodejs/node#60441), and 'readable' comes again only once the buffer
   * has been emptied: the rest of a CONNECT that came in several pieces (MQTT.js sends one
   * WebSocket frame per piece) waited for ever, and no CONNACK came. So a read without a size takes
   * every byte waiting, on every Node.js.
   */
  override read(size?: number | null): Buffer | null {
    return super.read(size ?? (this.readableLength || undefined))
  }

  override _read(): void {
    this.socket.resume()
    // aedes reads when it is ready for more; what it reads now is handled by the next tick.
    if (this.peerEnded) process.nextTick(() => this.endIfDone())
  }

  write(
    chunk: Buffer | string,
    encoding?: BufferEncoding | ((error?: Error | null) => void),
    callback?: (error?: Error | null) => void,
  ): boolean {
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

  /**
   * Whether aedes has handled everything the peer sent: connected or refused, all bytes read, every
   * PUBLISH authorized.
   */
  private done(): boolean {
    const { client } = this
    if (!client || client.closed) return true
    return !client.connecting && this.readableLength === 0 && this.allAnswered(client)
  }

  /**
   * Tell aedes of the end (or let its close go ahead) if the peer has ended and aedes is done;
   * called whenever that may have become true.
   */
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

  /**
   * A client that never finishes connecting, or a hook that never answers, must not hold a
   * connection open.
   */
  private startTimeout(): void {
    this.timeout ??= setTimeout(() => {
      if (this.destroying) this.finish(this.destroying, null)
      else
        this.destroy(
          new Error(
            `the connection ended, and aedes had not finished with it ` +
              `${FINISH_TIMEOUT_MS / 1000} s later`,
          ),
        )
    }, FINISH_TIMEOUT_MS).unref()
  }
}
