// MQTT 3.1.1 §3.3.1.3 [MQTT-3.3.1-6], §4.6 [MQTT-4.6.0-6]: a client that subscribes gets a topic's
// retained message before what is published there after it, even when the PUBLISH reaches the
// broker at the same moment as the SUBSCRIBE (lib/broker/fixes/retained-before-live.ts). The two
// packets are written in one turn of this process, so that the broker reads them in one turn of
// its own; aedes alone, the counter-proof, then sends the new message first and the older retained
// one after it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type RunningBroker } from '../../lib/broker/broker.ts'
import { startPlainAedes, type PlainAedes } from './aedes-alone.ts'
import { RawClient } from '../helpers/raw-client.ts'

const TRIES = 30

/**
 * Of `TRIES` subscribers, each subscribing as a publisher replaces the topic's retained "old" with
 * a live "new", those that got "new" before "old".
 */
async function overtaken(url: string): Promise<string[]> {
  const publisher = await RawClient.connected(url)
  const late: string[] = []
  try {
    for (let i = 0; i < TRIES; i++) {
      const topic = `retained-before-live/${process.pid}/${i}`
      await publisher.publish(topic, 'old', { qos: 1, retain: true })
      const subscriber = await RawClient.connected(url)
      const subscribed = subscriber.subscribe([topic], 0)
      publisher.send(publisher.publishPacket(topic, 'new'))
      await subscribed
      // After "new", from the same client on the same topic: everything before it has arrived.
      await publisher.publish(topic, 'marker', { qos: 1 })
      const got = (await subscriber.publishesBefore('marker')).map(
        (p) => `${p.payload}${p.retain ? ' (retained)' : ''}`,
      )
      if (got[0] !== 'old (retained)') late.push(`${topic}: ${got.join(', ')}`)
      subscriber.end()
      await publisher.publish(topic, '', { qos: 1, retain: true })
    }
  } finally {
    publisher.end()
  }
  return late
}

describe('a retained message and a PUBLISH that arrives with the SUBSCRIBE', () => {
  let bundled: RunningBroker
  let alone: PlainAedes
  beforeAll(async () => {
    ;[bundled, alone] = await Promise.all([startBroker({ port: 0 }), startPlainAedes()])
  })
  afterAll(() => Promise.all([bundled?.close(), alone?.close()]))

  it(
    `the bundled broker sends the retained message first, ${TRIES} subscribers of ` + `${TRIES}`,
    async () => {
      expect(await overtaken(bundled.url)).toEqual([])
    },
  )

  it('aedes alone, the counter-proof: the new message overtakes the retained one', async () => {
    expect((await overtaken(alone.url)).length).toBeGreaterThan(0)
  })
})
