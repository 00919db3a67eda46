// aedes as it comes, with none of lib/broker-fixes.ts: the tests that prove a fix run against it too,
// and must see the fault the fix repairs.
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { Aedes } from 'aedes'

export interface PlainAedes {
  url: string
  aedes: Aedes
  /** How many connections the broker's side has closed so far. */
  closedConnections(): number
  close(): Promise<void>
}

/** Start aedes on a free loopback port, handed each TCP connection as lib/broker.ts would, but without the fixes. */
export async function startPlainAedes(): Promise<PlainAedes> {
  const aedes = await Aedes.createBroker()
  let closed = 0
  const server = createServer((socket: Socket) => {
    socket.once('close', () => closed++)
    aedes.handle(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `mqtt://127.0.0.1:${port}`,
    aedes,
    closedConnections: () => closed,
    close: async () => {
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
      await new Promise((resolve) => server.close(resolve))
    },
  }
}
