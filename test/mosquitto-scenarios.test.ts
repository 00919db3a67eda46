// Every experiment again, against a real Mosquitto (the article's broker) that this file starts on a
// free port: so what the scenarios show is MQTT, not a quirk of the bundled broker. Each one plays
// once, under a topic prefix of its own, as it would on a broker shared with others, and must leave
// no retained message behind. The wildcards experiment plays once more without a prefix, the only
// way to show S4 with #: nobody else uses this Mosquitto. A scenario that runs brokers of its own
// (needs.none: the persistence experiment, about the bundled broker's store) has nothing to show here.
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { scenarios } from '../scenarios/index.ts'
import { byClaimId, check, claimsMet } from '../scenarios/stage.ts'
import { wildcards } from '../scenarios/wildcards.ts'
import { mosquittoPath, NOT_INSTALLED, startMosquitto, type RunningMosquitto } from './mosquitto.ts'

/** The claims each scenario ticks on Mosquitto, in order: those it ticks on the bundled broker (see its test file), except where said. */
const expected: Record<string, string[] | undefined> = {
  'basic-pubsub': ['C6', 'C5', 'C7', 'C1'],
  ephemeral: ['C8', 'C9', 'C10', 'S1'],
  retained: ['C11', 'C12', 'S2', 'C13'],
  // Under a prefix, # becomes <prefix>/#, which cannot show S4: the run without a prefix below does.
  wildcards: ['C14', 'C15', 'C16', 'S3', 'C17', 'S5'],
  discovery: ['C18', 'S8'],
  wire: ['S6', 'C2'],
  // The WebSocket and Unix socket listeners are the bundled broker's: on Mosquitto, TCP only (C3 needs more than one transport).
  transports: ['S7'],
}

const played = scenarios.filter((scenario) => !scenario.needs?.none)

if (!mosquittoPath) console.warn('Mosquitto not installed: apt-get install mosquitto to play the experiments and the conformance tests against it too')

/**
 * The topics under `filter` that hold a retained message. Mosquitto sends the retained messages of a
 * subscription right after its SUBACK, so a marker this client publishes afterwards comes after them.
 */
async function retainedUnder(url: string, filter: string, markerTopic: string): Promise<string[]> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000 })
  try {
    const topics: string[] = []
    const marker = new Promise<void>((resolve) => client.on('message', (topic, _payload, packet) => {
      if (topic === markerTopic) resolve()
      else if (packet.retain) topics.push(topic)
    }))
    await client.subscribeAsync(filter)
    await client.publishAsync(markerTopic, 'marker', { qos: 1 })
    await marker
    return topics
  } finally {
    await client.endAsync()
  }
}

/** Run at most `n` of the functions given at once: on two cores, more would only make each one slower. */
function limiter(n: number): <T>(run: () => Promise<T>) => Promise<T> {
  let active = 0
  const waiting: (() => void)[] = []
  return async (run) => {
    while (active >= n) await new Promise<void>((resolve) => waiting.push(resolve))
    active++
    try {
      return await run()
    } finally {
      active--
      waiting.shift()?.()
    }
  }
}

describe.skipIf(!mosquittoPath)(mosquittoPath ? 'every experiment against Mosquitto' : NOT_INSTALLED, () => {
  // One Mosquitto for the runs under a prefix, which may share it; one for the run without a prefix,
  // whose # subscriber must hear nobody else.
  let shared: RunningMosquitto
  let alone: RunningMosquitto
  beforeAll(async () => {
    ;[shared, alone] = await Promise.all([startMosquitto(), startMosquitto()])
  })
  afterAll(() => Promise.all([shared?.close(), alone?.close()]))
  // The scenarios play side by side: most of their time is spent starting processes and waiting for them.
  const limit = limiter(2)

  it.concurrent.each(played.map((scenario) => [[...expected[scenario.name] ?? []].sort(byClaimId).join(', '), scenario.name, scenario] as const))(
    '%s: %s plays on Mosquitto under a topic prefix of its own and leaves no retained message under it', (_ids, _name, scenario) => limit(async () => {
      expect(expected[scenario.name], `the claims ${scenario.name} shows on Mosquitto, in test/mosquitto-scenarios.test.ts`).toBeDefined()
      const topicPrefix = `mqtt-by-example-${Math.random().toString(16).slice(2, 10)}/`
      const events = await check(scenario, { url: shared.url, topicPrefix })
      expect(claimsMet(events)).toEqual(expected[scenario.name])
      expect(await retainedUnder(shared.url, `${topicPrefix}#`, `${topicPrefix}marker`)).toEqual([])
    }))

  it.concurrent('C14, C15, C16, C17, S3, S4, S5: wildcards plays on Mosquitto with the article\'s topics, where # gets nothing of $SYS', () => limit(async () => {
    const events = await check(wildcards, { url: alone.url })
    expect(claimsMet(events)).toEqual(['S4', ...expected.wildcards!])
    expect(await retainedUnder(alone.url, '#', 'mqtt-by-example/marker')).toEqual([])
  }))
})
