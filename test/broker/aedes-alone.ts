// aedes as it comes, with none of lib/broker/fixes.ts: the tests that prove a fix run against it
// too, and must see the fault the fix repairs; `npm run bench` runs it as a process of its own
// (`node --import tsx test/broker/aedes-alone.ts --port N`) to measure what the fixes cost.
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { Aedes } from 'aedes'
import { fail, isMain, messageOf, startProgram } from '../../lib/cli.ts'
import { parseFlags } from '../../lib/parse-flags.ts'

export interface PlainAedes {
  url: string
  aedes: Aedes
  /** How many connections the broker's side has closed so far. */
  closedConnections(): number
  close(): Promise<void>
}

/**
 * Start aedes on a loopback port (0: a free one), handed each TCP connection by a listener like
 * lib/broker/main.ts's (no Nagle, so that a benchmark compares the fixes and nothing else), but
 * without the fixes; in memory, or with the given `persistence` (lib/broker/store.ts makes one on
 * disk).
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
  const { values } = parseFlags(
    {
      invocation: 'npx tsx test/broker/aedes-alone.ts',
      description:
        'Run aedes without the fixes of lib/broker/fixes.ts, until Ctrl-C (npm run bench ' +
        'compares it with the bundled broker).',
    },
    {
      port: { type: 'string', arg: 'N', help: 'TCP port on 127.0.0.1 (default 0: a free one)' },
    },
  )
  const port = Number(values.port ?? '0')
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    fail(`--port must be a port number from 0 to 65535, not ${JSON.stringify(values.port)}`)
  const broker = await startPlainAedes(port).catch((error: unknown) => fail(messageOf(error)))
  process.once('SIGTERM', () => void broker.close().then(() => process.exit(0)))
  process.once('SIGINT', () => void broker.close().then(() => process.exit(0)))
  console.log(`aedes alone ready on ${broker.url}`)
}
