// The brokers that the tests of a close (test/broker/no-loss-at-close.test.ts) and `npm run bench
// -- --a1` send publish-and-quit connections to: the bundled broker, a private Mosquitto, and aedes
// alone, which loses what arrives with the end of a connection. The brokers in this process let the
// caller watch their side of each connection close: once every one has, the broker has routed all
// it was going to.
import type { Aedes } from 'aedes'
import { startBroker } from '../../lib/broker/broker.ts'
import { inSeconds, Waiter } from '../../scenarios/stage/waiter.ts'
import { startPlainAedes } from '../broker/aedes-alone.ts'
import { mosquittoPath, startMosquitto } from './mosquitto.ts'

interface CloseCounter {
  /** How many so far. */
  count(): number
  /** Resolves once `count` connections have closed since the broker started. */
  until(count: number): Promise<void>
}

export interface CloseBroker {
  url: string
  /**
   * Connections closed on the broker's side, where they can be watched (brokers in this process).
   */
  brokerSide?: CloseCounter
  close(): Promise<void>
}

export interface CloseTarget {
  key: 'bundled' | 'mosquitto' | 'aedes'
  title: string
  installed: boolean
  start(): Promise<CloseBroker>
}

/** Count the connections an in-process aedes is handed as they close on its side. */
function watchConnections(aedes: { handle: Aedes['handle'] }): CloseCounter {
  let closed = 0
  const closes = new Waiter()
  // Wrapped outside any fix: the listener hands the socket itself to aedes.handle.
  const handle = aedes.handle
  aedes.handle = (stream, request) => {
    stream.once('close', () => {
      closed++
      closes.arrived()
    })
    return handle(stream, request)
  }
  return {
    count: () => closed,
    until: async (count) => {
      await closes.until(() => (closed >= count ? true : undefined), {
        timedOut: (ms) => {
          const waited = `waited ${inSeconds(ms)} for the broker to close ${count} connections`
          return new Error(`${waited}; it closed ${closed}`)
        },
      })
    },
  }
}

export const closeTargets: CloseTarget[] = [
  {
    key: 'bundled',
    title: 'the bundled broker (lib/broker/main.ts)',
    installed: true,
    async start() {
      const broker = await startBroker({ port: 0 })
      return {
        url: broker.url,
        brokerSide: watchConnections(broker.aedes),
        close: () => broker.close(),
      }
    },
  },
  {
    key: 'mosquitto',
    title: 'Mosquitto',
    installed: Boolean(mosquittoPath),
    start: startMosquitto,
  },
  {
    key: 'aedes',
    title: 'aedes alone, without the fixes of lib/broker/fixes.ts',
    installed: true,
    async start() {
      const broker = await startPlainAedes()
      return {
        url: broker.url,
        brokerSide: watchConnections(broker.aedes),
        close: () => broker.close(),
      }
    },
  },
]
