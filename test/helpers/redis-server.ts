// A private Redis for the tests: Debian's redis-server on a free loopback port with nothing on
// disk, ready once it says so, killed and started again on the same port when a test needs Redis to
// go away, and stopped afterwards; and two bundled brokers on one, behind one address. Where
// redis-server is not installed, tests that need it are skipped under the title
// REDIS_NOT_INSTALLED. Written with zx (through ./daemon.ts), as Mosquitto's start is.
import { connect as tcpConnect, createServer, type AddressInfo, type Socket } from 'node:net'
import { $ } from 'zx'
import { startBroker } from '../../lib/broker/broker.ts'
import { messageOf } from '../../lib/cli.ts'
import { startDaemon, type Daemon } from './daemon.ts'
import { findProgram } from './mosquitto.ts'
import { freePort } from './processes.ts'

/** The title of a skipped suite where Redis is missing: one line saying how to get it. */
export const REDIS_NOT_INSTALLED =
  'redis-server not installed: apt-get install redis-server to run these'

export const redisServerPath = findProgram('redis-server')

/** "Redis server v=7.0.15", as `redis-server --version` says it, or undefined. */
export function redisVersion(): string | undefined {
  if (!redisServerPath) return undefined
  return $.sync({ nothrow: true, quiet: true })`${redisServerPath} --version`.stdout.match(
    /Redis server v=\S+/,
  )?.[0]
}

export interface RunningRedis {
  /** redis://127.0.0.1:port */
  url: string
  port: number
  /** SIGKILL, as a crash would: what it held is gone, as it writes nothing to disk. */
  kill(): Promise<void>
  /** Start again on the same port (after kill()), empty. */
  start(): Promise<void>
  /**
   * SIGSTOP and SIGCONT: a Redis that stops answering without closing a connection, then answers
   * again.
   */
  freeze(): void
  thaw(): void
  close(): Promise<void>
}

/**
 * Start a Redis that only this test run knows about (with `extra` settings, such as --requirepass);
 * resolves once it accepts connections.
 */
export async function startRedis(extra: string[] = []): Promise<RunningRedis> {
  if (!redisServerPath) throw new Error(REDIS_NOT_INSTALLED)
  // The free port can be taken by someone else before Redis binds it: then try another one.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    try {
      let redis = await startOn(redisServerPath, port, extra)
      return {
        url: `redis://127.0.0.1:${port}`,
        port,
        kill: () => redis.stop('SIGKILL'),
        async start() {
          redis = await startOn(redisServerPath!, port, extra)
        },
        freeze: () => redis.signal('SIGSTOP'),
        thaw: () => redis.signal('SIGCONT'),
        close: async () => {
          redis.signal('SIGCONT')
          await redis.stop()
        },
      }
    } catch (error) {
      if (attempt === 3 || !(error instanceof PortTaken)) throw error
    }
  }
}

class PortTaken extends Error {}

async function startOn(binary: string, port: number, extra: string[]): Promise<Daemon> {
  const name = `redis-server on port ${port}`
  try {
    return (
      await startDaemon(
        name,
        [
          binary,
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
          ...extra,
        ],
        /Ready to accept connections/,
      )
    ).daemon
  } catch (error) {
    throw /Address already in use/.test(messageOf(error)) ? new PortTaken(messageOf(error)) : error
  }
}

/**
 * Two bundled brokers on a private Redis, behind one address that hands each new connection to the
 * next broker in turn, A, B, A...: what a test of one broker sees of a cluster, its clients spread
 * over both. The front only copies bytes (half-open, as the brokers' own listeners are).
 */
export async function startCluster(): Promise<{ url: string; close(): Promise<void> }> {
  const redis = await startRedis()
  const brokers = await Promise.all([
    startBroker({ port: 0, redis: redis.url }),
    startBroker({ port: 0, redis: redis.url }),
  ])
  let next = 0
  const sockets = new Set<Socket>()
  const front = createServer({ noDelay: true, allowHalfOpen: true }, (client) => {
    const broker = tcpConnect({
      port: brokers[next++ % brokers.length].port,
      host: '127.0.0.1',
      noDelay: true,
      allowHalfOpen: true,
    })
    for (const socket of [client, broker]) {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
      socket.on('error', () => {
        for (const s of [client, broker]) s.destroy()
      })
    }
    client.pipe(broker).pipe(client)
  })
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve))
  return {
    url: `mqtt://127.0.0.1:${(front.address() as AddressInfo).port}`,
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => front.close(resolve))
      for (const broker of brokers) await broker.close()
      await redis.close()
    },
  }
}
