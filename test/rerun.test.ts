// Every scenario leaves the broker as it found it: played twice against one broker, it passes twice
// with the same transcript (no retained message or session left behind by the first run).
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startBroker, type RunningBroker } from '../lib/broker.ts'
import { scenarios } from '../scenarios/index.ts'
import { check, type Event } from '../scenarios/stage.ts'

let broker: RunningBroker
beforeAll(async () => {
  broker = await startBroker({ port: 0 })
})
afterAll(() => broker.close())

/** What each demo program printed, by label (processes run side by side, so only each one's order is fixed). */
function transcript(events: Event[]): Record<string, string[]> {
  const byLabel: Record<string, string[]> = {}
  for (const e of events) if (e.kind === 'line' && e.label !== 'broker') (byLabel[e.label] ??= []).push(e.text)
  return byLabel
}

it.each(scenarios.map((s) => [s.name, s]))('%s passes twice in a row against the same broker', async (_name, scenario) => {
  const first = await check(scenario, { url: broker.url })
  const second = await check(scenario, { url: broker.url })
  expect(transcript(second)).toEqual(transcript(first))
  expect(await retainedTopics(broker)).toEqual(['$SYS/broker/version'])
})

/** Every topic the broker holds a retained message for, read from its store. */
async function retainedTopics(broker: RunningBroker): Promise<string[]> {
  const topics: string[] = []
  // aedes' types leave out its persistence; the in-memory one streams stored retained packets.
  const { persistence } = broker.aedes as unknown as { persistence: { createRetainedStream(pattern: string): AsyncIterable<{ topic: string }> } }
  for await (const packet of persistence.createRetainedStream('#')) topics.push(packet.topic)
  return topics
}
