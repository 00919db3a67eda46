// One suite per scenario, so that each plays only twice: once to check what it proves and every docs
// block that quotes it, once more against the same broker to check that it leaves the broker as it
// found it (same output, no retained message left) and can run again in front of an audience. Where
// the experiment has Python programs (demos/<name>/python/) and paho-mqtt is installed, a third play
// with them checks that they print, line for line, what the TypeScript ones print.
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type RunningBroker } from '../lib/broker.ts'
import { byClaimId, check, claimsMet, ROOT, type Event, type Scenario } from '../scenarios/stage.ts'
import { allBlocks, normalise, printed } from './doc-blocks.ts'
import { NO_PAHO, python } from './python.ts'

/**
 * What each demo program printed, by label (processes run side by side, so only each one's order is
 * fixed), with ports normalised: a page or a tap listens on a new free port each run.
 */
function byLabel(events: Event[]): Record<string, string> {
  const lines: Record<string, string[]> = {}
  for (const e of events) if (e.kind === 'line' && e.label !== 'broker') (lines[e.label] ??= []).push(e.text)
  return Object.fromEntries(Object.entries(lines).map(([label, printed]) => [label, normalise(printed.join('\n'))]))
}

/** Every topic the bundled broker holds a retained message for, read from its store. */
async function retainedTopics(broker: RunningBroker): Promise<string[]> {
  // aedes' types leave out its persistence; the in-memory one streams the stored retained packets.
  const { persistence } = broker.aedes as unknown as { persistence: { createRetainedStream(pattern: string): AsyncIterable<{ topic: string }> } }
  const topics: string[] = []
  for await (const packet of persistence.createRetainedStream('#')) topics.push(packet.topic)
  return topics
}

/**
 * The suite of `scenario`: a test titled `title` that checks the claims it ticks (in order) and
 * whatever `verify` asserts of its events; one per docs block quoting it; and the second run.
 */
export function scenarioSuite(scenario: Scenario, title: string, claims: string[], verify: (events: Event[]) => void = () => {}): void {
  describe(`scenario ${scenario.name}`, () => {
    let broker: RunningBroker
    let first: Event[]
    let dir: string | undefined
    beforeAll(async () => {
      // The listeners the scenario needs beyond TCP, as the stage would start them itself.
      const listeners = scenario.needs?.listeners ?? []
      if (listeners.includes('unix')) dir = await mkdtemp(join(tmpdir(), 'scenario-suite-'))
      broker = await startBroker({ port: 0, wsPort: listeners.includes('ws') ? 0 : undefined, unixPath: dir && join(dir, 'broker.sock') })
      first = await check(scenario, { broker })
      // A whole scenario, a dozen programs started one after another: on two busy cores, more than a hook's usual 30 s.
    }, 120_000)
    afterAll(async () => {
      await broker?.close()
      if (dir) await rm(dir, { recursive: true, force: true })
    })

    it(title, () => {
      expect(claimsMet(first)).toEqual(claims)
      verify(first)
    })

    it('the README\'s table lists the claims its show ticks', () => {
      const row = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').find((l) => l.startsWith(`| \`npm run demo:${scenario.name}\` |`))
      expect(row, `a row for demo:${scenario.name} in README.md`).toBeDefined()
      // "C1, C5–C7, S1": ranges written with an en dash.
      const listed = row!.split('|')[3].split(',').flatMap((item) => {
        const [from, to] = item.trim().split('–')
        if (!to) return [from]
        return Array.from({ length: Number(to.slice(1)) - Number(from.slice(1)) + 1 }, (_, i) => `${from[0]}${Number(from.slice(1)) + i}`)
      })
      expect(listed.sort(byClaimId)).toEqual([...claims].sort(byClaimId))
    })

    const quoting = allBlocks.filter((b) => b.output?.scenario === scenario.name)
    it.each(quoting.map((b) => ({ where: `${b.page}:${b.line}`, label: b.output!.label, steps: b.output!.steps, body: b.body })))(
      '$where quotes what $label prints', ({ label, steps, body }) => {
        expect(normalise(body)).toBe(normalise(printed(first, label, steps)))
      })

    it('plays again on the same broker with the same output, and leaves no retained message behind', async () => {
      const second = await check(scenario, { broker })
      expect(byLabel(second)).toEqual(byLabel(first))
      expect(await retainedTopics(broker)).toEqual(['$SYS/broker/version'])
    })

    if (existsSync(join(ROOT, 'demos', scenario.name, 'python'))) {
      it.skipIf(!python)(python ? `plays with the Python programs of demos/${scenario.name}/python/ (paho-mqtt), which print the same` : NO_PAHO, async () => {
        const played = await check(scenario, { broker, python })
        const commands = played.flatMap((e) => (e.kind === 'command' ? [e.text] : []))
        expect(commands.filter((c) => c.startsWith('python3 ')).length, commands.join('\n')).toBeGreaterThan(0)
        // The same lines; their order the scenario's own expectations checked as it played. Beyond
        // that, a few lines race (a message queued for a session against the SUBACK of its
        // subscription: paho subscribes sooner after the CONNACK than MQTT.js does).
        const sorted = (events: Event[]) => Object.fromEntries(Object.entries(byLabel(events)).map(([label, text]) => [label, text.split('\n').sort()]))
        expect(sorted(played)).toEqual(sorted(first))
        expect(await retainedTopics(broker)).toEqual(['$SYS/broker/version'])
      })
    }
  })
}
