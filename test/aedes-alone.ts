// aedes as it comes, with none of lib/broker-fixes.ts: the tests that prove a fix run against it too,
// and must see the fault the fix repairs; `npm run bench` runs it as a process of its own
// (`node --import tsx test/aedes-alone.ts --port N`) to measure what the fixes cost.
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { parseArgs } from 'node:util'
import { Aedes } from 'aedes'
import { fail, isMain, messageOf, startProgram } from '../lib/cli.ts'

export interface PlainAedes {
  url: string
  aedes: Aedes
  /** How many connections the broker's side has closed so far. */
  closedConnections(): number
  close(): Promise<void>
}

/**
 * Start aedes on a loopback port (0: a free one), handed each TCP connection by a listener like lib/broker.ts's
 * (no Nagle, so that a benchmark compares the fixes and nothing else), but without the fixes; in memory,
 * or with the given `persistence` (lib/store.ts makes one on disk).
 */
export async function startPlainAedes(port = 0, persistence?: unknown): Promise<PlainAedes> {
  const aedes = await Aedes.createBroker(persistence === undefined ? {} : { persistence })
  let closed = 0
  const server = createServer({ noDelay: true }, (socket: Socket) => {
    socket.once('close', () => closed++)
    aedes.handle(socket)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', resolve)
  })
  return {
    url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`,
    aedes,
    closedConnections: () => closed,
    close: async () => {
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

if (isMain(import.meta.url)) {
  startProgram()
  const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } })
  const broker = await startPlainAedes(Number(values.port)).catch((error: unknown) => fail(messageOf(error)))
  process.once('SIGTERM', () => void broker.close().then(() => process.exit(0)))
  process.once('SIGINT', () => void broker.close().then(() => process.exit(0)))
  console.log(`aedes alone ready on ${broker.url}`)
}
