// The wildcards experiment, played by the same scenario as `npm run demo:wildcards`, in check mode,
// and the broker's side of S5: a wildcard in a PUBLISH topic that a raw client sends anyway.
import mqtt from 'mqtt'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { startBroker, type RunningBroker } from '../../lib/broker/broker.ts'
import type { Event } from '../../scenarios/stage/scenario.ts'
import { wildcards } from '../../scenarios/wildcards.ts'
import { RawClient } from '../helpers/raw-client.ts'
import { scenarioSuite } from './scenario-suite.ts'

const messages = (events: Event[], label: string) =>
  events.flatMap((e) =>
    e.kind === 'line' && e.label === label && e.text.endsWith(' on') ? [e.text.slice(0, -3)] : [],
  )

scenarioSuite(
  wildcards,
  'C14, C15, C16, C17, S3, S4, S5: each filter gets exactly the topics it matches',
  ['S4', 'C14', 'C15', 'C16', 'S3', 'C17', 'S5'],
  {
    // Under a prefix, # becomes <prefix>/#, which cannot show S4: it plays with the article's
    // topics, on a Mosquitto of its own, where every claim shows (and a round under a prefix would
    // prove less).
    onMosquitto: [{ prefixed: false, claims: ['S4', 'C14', 'C15', 'C16', 'S3', 'C17', 'S5'] }],
    verify: (events) => {
      expect(messages(events, 'home/living_room/light')).toEqual(['home/living_room/light'])
      expect(messages(events, 'home/living_room/+')).toEqual([
        'home/living_room/light',
        'home/living_room/tv',
      ])
      expect(messages(events, 'home/+/light')).toEqual([
        'home/living_room/light',
        'home/bedroom/light',
        'home//light',
      ])
      const all = [
        'home/living_room/light',
        'home/living_room/tv',
        'home/bedroom/light',
        'home',
        'home//light',
      ]
      expect(messages(events, 'home/#')).toEqual(all)
      expect(messages(events, '#')).toEqual(all)
    },
  },
)

let broker: RunningBroker
beforeAll(async () => {
  broker = await startBroker({ port: 0 })
})
afterAll(() => broker.close())

it.each(['home/+/light', 'home/#', '#'])(
  'S5: the broker closes a raw client that publishes to %j, delivers nothing, and keeps serving',
  async (topic) => {
    const subscriber = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
    const received: string[] = []
    const marker = new Promise<void>((resolve) =>
      subscriber.on('message', (name, payload) => {
        received.push(`${name} ${payload}`)
        if (String(payload) === 'marker') resolve()
      }),
    )
    await subscriber.subscribeAsync('#')

    const raw = await RawClient.connected(broker.url)
    raw.send({
      cmd: 'publish',
      topic,
      payload: Buffer.from('on'),
      qos: 0,
      retain: false,
      dup: false,
    })
    expect(await raw.closed()).toEqual([])

    // The broker still serves, and the refused message never reached the # subscriber before the
    // marker.
    const publisher = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
    await publisher.publishAsync('home/bedroom/light', 'marker')
    await marker
    expect(received).toEqual(['home/bedroom/light marker'])
    await Promise.all([subscriber.endAsync(), publisher.endAsync()])
  },
)
