// Runs of the article's publisher, as a Python program of our own
// (test/interop/paho_publish_and_quit.py): it connects, publishes and ends, with no network loop
// and no DISCONNECT, and each run is a process of its own. The A1 tests run it through each broker
// and count what a subscriber misses; `npm run bench -- --a1` runs it more times and prints the
// counts. Written with zx: it runs a program and waits for it.
import { join } from 'node:path'
import { $ } from 'zx'
import { ROOT } from '../../lib/build-cache.ts'
import { python } from '../helpers/python.ts'
import { RawClient } from '../helpers/raw-client.ts'

const RUNS_SCRIPT = join(ROOT, 'test', 'interop', 'paho_runs.py')
/** Publishers running at once: each is a process of its own, as a reader's runs are. */
const AT_ONCE = 4

/**
 * Run the paho publisher `runs` times against `url`, publishing `run 0`, `run 1`... to `topic`, and
 * return the payloads a subscriber missed. `settled` resolves once the broker has closed every
 * run's connection on its side, where that can be watched (a broker in this process); then a marker
 * proves that the subscriber has everything the broker routed.
 */
export async function pahoRuns(
  url: string,
  topic: string,
  runs: number,
  settled?: () => Promise<void>,
): Promise<string[]> {
  if (!python) throw new Error('paho-mqtt is not installed: apt-get install python3-paho-mqtt')
  const subscriber = await RawClient.connected(url)
  try {
    await subscriber.subscribe([topic], 0)
    const { hostname, port } = new URL(url)
    // Each run forked from one Python that has loaded paho-mqtt (see paho_runs.py): a run then
    // costs a fork rather than a Python start, and is still a process that ends without a
    // DISCONNECT.
    await $({
      quiet: true,
    })`${python} ${RUNS_SCRIPT} ${runs} ${AT_ONCE} ${hostname} ${port} ${topic}`
    await settled?.()
    const publisher = await RawClient.connected(url)
    await publisher.publish(topic, 'marker', { qos: 1 })
    publisher.end()
    const received = new Set(
      (await subscriber.publishesBefore('marker')).map((p) => String(p.payload)),
    )
    return Array.from({ length: runs }, (_, n) => `run ${n}`).filter(
      (payload) => !received.has(payload),
    )
  } finally {
    subscriber.end()
  }
}
