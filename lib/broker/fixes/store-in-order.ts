// With a store on disk, messages are stored and routed in the order they were numbered.
// Keeps [MQTT-4.6.0-6] of MQTT 3.1.1 and [MQTT-4.6.0-5] of MQTT 5 (§4.6), with a store on disk.
import type { Aedes } from 'aedes'

/**
 * Messages from one client on a topic reach subscribers in the order they were sent, with a store
 * on disk too. aedes writes a retained message, and a QoS 1 message for each session that is away,
 * to its store before it routes the message; aedes-persistence-level runs those writes side by
 * side, and they finish in any order: a burst of QoS 1 messages from one client then reached a
 * subscriber shuffled (or, with aedes' duplicate filter, cut short) whenever a session away from
 * the broker followed the topic. Here each write starts once the one before it has finished, so
 * messages leave the store in the order they came. In memory, writes finish in order already.
 */
export function storeInOrder(aedes: Aedes): void {
  // aedes keeps its store in `persistence`, which its types leave out.
  const persistence = (
    aedes as Aedes & {
      persistence: Record<
        'storeRetained' | 'outgoingEnqueueCombi',
        (...args: unknown[]) => Promise<unknown>
      >
    }
  ).persistence
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
