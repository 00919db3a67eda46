// A client that speaks MQTT packet by packet, for tests of what a broker does with packets a proper
// client library would never send. Packets are built and parsed with mqtt-packet, not by hand.
import { connect as tcpConnect, type Socket } from 'node:net'
import mqttPacket, { type Packet } from 'mqtt-packet'

export class RawClient {
  private readonly received: Packet[] = []
  private readonly waiters = new Set<() => void>()
  private closedFlag = false

  private constructor(readonly socket: Socket) {
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    parser.on('packet', (packet) => {
      this.received.push(packet)
      this.wake()
    })
    socket.on('data', (chunk) => parser.parse(chunk))
    socket.on('close', () => {
      this.closedFlag = true
      this.wake()
    })
    socket.on('error', () => undefined)
  }

  /** Open a TCP connection to `url` (mqtt://host:port); nothing is sent yet. */
  static open(url: string): Promise<RawClient> {
    const { hostname, port } = new URL(url)
    return new Promise((resolve, reject) => {
      const socket = tcpConnect(Number(port), hostname, () => resolve(new RawClient(socket)))
      socket.once('error', reject)
    })
  }

  /** Open, send CONNECT (MQTT 3.1.1, clean session) and await the CONNACK. */
  static async connected(url: string, clientId = `raw-${process.pid}-${Math.random().toString(16).slice(2, 8)}`): Promise<RawClient> {
    const client = await RawClient.open(url)
    client.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 0 })
    const connack = await client.next('connack')
    if (connack.cmd !== 'connack' || connack.returnCode !== 0) throw new Error(`CONNECT refused: ${JSON.stringify(connack)}`)
    return client
  }

  send(packet: Packet): void {
    this.socket.write(mqttPacket.generate(packet))
  }

  /** Send raw bytes, well-formed or not. */
  write(bytes: Buffer): void {
    this.socket.write(bytes)
  }

  /** Resolve with the first not yet consumed packet of type `cmd`; rejects if the connection closes first. */
  next<C extends Packet['cmd']>(cmd: C, timeoutMs = 5000): Promise<Extract<Packet, { cmd: C }>> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const at = this.received.findIndex((p) => p.cmd === cmd)
        if (at >= 0) return done(() => resolve(this.received.splice(at, 1)[0] as Extract<Packet, { cmd: C }>))
        if (this.closedFlag) done(() => reject(new Error(`the connection closed before a ${cmd.toUpperCase()} arrived`)))
      }
      const timer = setTimeout(() => done(() => reject(new Error(`no ${cmd.toUpperCase()} within ${timeoutMs} ms`))), timeoutMs)
      const done = (settle: () => void) => {
        clearTimeout(timer)
        this.waiters.delete(check)
        settle()
      }
      this.waiters.add(check)
      check()
    })
  }

  /** Resolve once the broker has closed the connection; returns the packets it sent and nobody consumed. */
  closed(timeoutMs = 5000): Promise<Packet[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!this.closedFlag) return
        clearTimeout(timer)
        this.waiters.delete(check)
        resolve(this.received.splice(0))
      }
      const timer = setTimeout(() => {
        this.waiters.delete(check)
        reject(new Error(`the broker did not close the connection within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiters.add(check)
      check()
    })
  }

  end(): void {
    this.socket.destroy()
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter()
  }
}
