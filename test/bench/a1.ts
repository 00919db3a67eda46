// `npm run bench -- --a1 [--runs N]`: A1 as a measurement. The article's publisher (paho-mqtt; it
// connects, publishes and ends, with no loop and no DISCONNECT), as a Python program of our own,
// runs N times (100 unless told) through the bundled broker, Mosquitto and aedes alone, and each
// broker's count of what a subscriber received is printed. The suite makes fewer runs per broker
// (test/broker/no-loss-at-close.test.ts): enough to fail on aedes alone's losses; this makes enough
// to put a number on them.
import { closeTargets } from '../helpers/close-brokers.ts'
import { markdownTable } from '../helpers/markdown-table.ts'
import { pahoRuns } from '../interop/paho-runs.ts'
import { NO_PAHO, python } from '../helpers/python.ts'

const progress = (text: string) => process.stderr.write(`· ${text}\n`)

/**
 * The table of what arrived through each installed broker, after `runs` runs of the publisher
 * through each.
 */
export async function benchA1(runs: number): Promise<string> {
  if (!python) throw new Error(NO_PAHO)
  const rows: string[][] = []
  for (const target of closeTargets.filter((t) => t.installed)) {
    progress(`${target.title}: ${runs} runs of the publisher`)
    const broker = await target.start()
    try {
      const closedBefore = broker.brokerSide?.count() ?? 0
      const lost = await pahoRuns(
        broker.url,
        `bench-a1/${process.pid}/${target.key}`,
        runs,
        () => broker.brokerSide?.until(closedBefore + runs) ?? Promise.resolve(),
      )
      rows.push([target.title, String(runs - lost.length), String(runs)])
    } finally {
      await broker.close()
    }
  }
  const title =
    'A1: a paho-mqtt publisher that connects, publishes one message and ends, ' +
    `${runs} runs per broker`
  return `\n${title}\n\n${markdownTable(['broker', 'messages received', 'runs'], rows)}`
}
