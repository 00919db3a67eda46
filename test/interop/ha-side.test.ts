// A client that plays Home Assistant's side as its documentation describes it (home-assistant.io,
// integrations/mqtt: "Birth and last will messages", "Device discovery payload", "Using
// availability topics"), written here on its own, without lib/discovery/format.ts or
// lib/discovery/home-assistant.ts, so that it judges our device rather than agrees with our
// listener. It connects with MQTT 5, sets its will, sends its birth message, discovers
// demos/discovery/publisher.ts from its device config, restarts and has it announce again, and
// switches its light with the payloads the config names. On the bundled broker and on Mosquitto.
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type RunningBroker } from '../../lib/broker/broker.ts'
import { inSeconds, Waiter } from '../../scenarios/stage/waiter.ts'
import {
  mosquittoPath,
  NOT_INSTALLED,
  startMosquitto,
  type RunningMosquitto,
} from '../helpers/mosquitto.ts'
import { start, type Program } from '../helpers/processes.ts'

const STATUS = 'homeassistant/status'

/** A message as Home Assistant's side saw it. */
interface Seen {
  topic: string
  payload: string
  retain: boolean
}

/**
 * Home Assistant's side of MQTT discovery, as little of it as it takes to discover and switch a
 * device.
 */
class HomeAssistant {
  readonly seen: Seen[] = []
  private readonly arrivals = new Waiter()

  readonly client: MqttClient

  private constructor(client: MqttClient) {
    this.client = client
    client.on('message', (topic, payload, packet) => {
      this.seen.push({ topic, payload: payload.toString(), retain: packet.retain })
      this.arrivals.arrived()
    })
  }

  /**
   * Connect with MQTT 5 and a will ("offline", not retained, on homeassistant/status), and
   * subscribe to discovery.
   */
  static async start(url: string): Promise<HomeAssistant> {
    const client = await mqtt.connectAsync(url, {
      protocolVersion: 5,
      reconnectPeriod: 0,
      will: { topic: STATUS, payload: Buffer.from('offline'), qos: 0, retain: false },
    })
    const ha = new HomeAssistant(client)
    await client.subscribeAsync('homeassistant/#', { qos: 0 })
    return ha
  }

  /** The birth message: "online", not retained, once it has subscribed to what it needs. */
  birth(): Promise<unknown> {
    return this.client.publishAsync(STATUS, 'online', { qos: 0, retain: false })
  }

  /** The first message seen, from `from` on, that `matches`; fails naming `what` if none comes. */
  next(what: string, matches: (m: Seen) => boolean, from = 0): Promise<Seen> {
    return this.arrivals.until(() => this.seen.slice(from).find(matches), {
      timedOut: (ms) => {
        const saw = JSON.stringify(this.seen.map((m) => m.topic))
        const none = `Home Assistant's side saw no ${what} within ${inSeconds(ms)}`
        return new Error(`${none}; it saw ${saw}`)
      },
    })
  }

  /**
   * Leave as Home Assistant stopping does: its will goes out (MQTT 5 DISCONNECT with reason code
   * 4).
   */
  stop(): Promise<void> {
    return this.client.endAsync(false, { reasonCode: 4 })
  }
}

/** The docs' abbreviations for the keys read here (a device config may use either name). */
function key<T>(object: Record<string, unknown>, full: string, short: string): T | undefined {
  return (object[full] ?? object[short]) as T | undefined
}

/** A light of a device config, with the shared options of the root where it has none of its own. */
function lightOf(config: Record<string, unknown>) {
  const components =
    key<Record<string, Record<string, unknown>>>(config, 'components', 'cmps') ?? {}
  const entry = Object.values(components).find((c) => key(c, 'platform', 'p') === 'light')
  if (!entry) throw new Error(`no component with "p": "light" in ${JSON.stringify(config)}`)
  const option = <T>(full: string, short: string) =>
    key<T>(entry, full, short) ?? key<T>(config, full, short)
  return {
    uniqueId: key<string>(entry, 'unique_id', 'uniq_id'),
    stateTopic: option<string>('state_topic', 'stat_t')!,
    commandTopic: option<string>('command_topic', 'cmd_t')!,
    availabilityTopic: option<string>('availability_topic', 'avty_t')!,
    qos: option<0 | 1 | 2>('qos', 'qos') ?? 0,
    payloadOn: option<string>('payload_on', 'pl_on') ?? 'ON',
    payloadOff: option<string>('payload_off', 'pl_off') ?? 'OFF',
  }
}

const brokers: [string, () => Promise<{ url: string; close: () => Promise<void> }>][] = [
  [
    'the bundled broker',
    () =>
      startBroker({ port: 0 }).then((b: RunningBroker) => ({ url: b.url, close: () => b.close() })),
  ],
  [
    'Mosquitto',
    () => startMosquitto().then((m: RunningMosquitto) => ({ url: m.url, close: () => m.close() })),
  ],
]

describe.each(brokers)("Home Assistant's documented side, on %s", (name, startOne) => {
  const skip = name === 'Mosquitto' && !mosquittoPath
  let broker: { url: string; close: () => Promise<void> }
  let device: Program
  let ha: HomeAssistant
  const topic = 'homeassistant/device/garage/config'

  beforeAll(async () => {
    if (skip) return
    broker = await startOne()
    ha = await HomeAssistant.start(broker.url)
    await ha.birth()
    device = start(
      'demos/discovery/publisher.ts',
      ['--node', 'garage', '--payload-on', 'lit', '--payload-off', 'dark'],
      { MQTT_URL: broker.url },
    )
    // Printed once its SUBSCRIBE is acknowledged: from then on it hears Home Assistant's will and
    // birth.
    await device.waitForLine('listening for Home Assistant on homeassistant/status')
  })
  afterAll(async () => {
    if (skip) return
    device.child.kill('SIGINT')
    await device.finish()
    await ha.stop()
    // What the device left retained goes, so that the broker is as it was.
    const cleaner = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
    for (const t of [
      topic,
      'home/garage/availability',
      'home/garage/light',
      'home/garage/temperature',
    ])
      await cleaner.publishAsync(t, '', { qos: 1, retain: true })
    await cleaner.endAsync()
    await broker.close()
  })

  it.skipIf(skip)(
    skip
      ? NOT_INSTALLED
      : 'discovers the device from its device config: dev and o at the root, each component with ' +
          'p and unique_id',
    async () => {
      const config = JSON.parse(
        (await ha.next('device config', (m) => m.topic === topic)).payload,
      ) as Record<string, unknown>
      const dev = key<Record<string, unknown>>(config, 'device', 'dev')!
      const origin = key<Record<string, unknown>>(config, 'origin', 'o')!
      expect(key(dev, 'identifiers', 'ids')).toEqual(['garage'])
      expect(key(origin, 'name', 'name')).toBe('mqtt-by-example')
      expect(key(origin, 'sw_version', 'sw')).toMatch(/^\d+\.\d+\.\d+$/)
      for (const component of Object.values(
        key<Record<string, Record<string, unknown>>>(config, 'components', 'cmps')!,
      )) {
        expect(key(component, 'platform', 'p')).toMatch(/^(light|sensor)$/)
        expect(key(component, 'unique_id', 'uniq_id')).toMatch(/^garage_/)
        expect(component).not.toHaveProperty('object_id')
        expect(key(component, 'default_entity_id', 'def_ent_id')).toMatch(
          new RegExp(`^${key(component, 'platform', 'p')}\\.garage_`),
        )
      }
      expect(lightOf(config).uniqueId).toBe('garage_light')
    },
  )

  it.skipIf(skip)(
    skip
      ? NOT_INSTALLED
      : 'restarts: its will says "offline", and its new birth message has the device announce ' +
          'again, config first, then states',
    async () => {
      await ha.stop()
      await device.waitForLine('Home Assistant is offline (homeassistant/status)')
      ha = await HomeAssistant.start(broker.url)
      // The retained config comes at once; Home Assistant follows the topics it names, then says
      // "online".
      const light = lightOf(
        JSON.parse(
          (await ha.next('retained device config', (m) => m.topic === topic && m.retain)).payload,
        ),
      )
      await ha.client.subscribeAsync([light.availabilityTopic, light.stateTopic], {
        qos: light.qos,
      })
      await ha.next('retained state', (m) => m.topic === light.stateTopic && m.retain)
      await ha.birth()
      // What the birth message brings comes live, RETAIN off: the config, then "the state topics
      // will need an update".
      const live = (t: string) => (m: Seen) => m.topic === t && !m.retain
      await ha.next('device config sent again', live(topic))
      const config = ha.seen.findIndex(live(topic))
      await ha.next(
        'availability sent again',
        (m) => live(light.availabilityTopic)(m) && m.payload === 'online',
        config,
      )
      await ha.next(
        'state sent again',
        (m) => live(light.stateTopic)(m) && m.payload === light.payloadOn,
        config,
      )
    },
  )

  it.skipIf(skip)(
    skip
      ? NOT_INSTALLED
      : 'switches the light off and on with the payloads its config names, at its QoS',
    async () => {
      const config = JSON.parse(ha.seen.findLast((m) => m.topic === topic)!.payload) as Record<
        string,
        unknown
      >
      const light = lightOf(config)
      expect([light.payloadOn, light.payloadOff, light.qos]).toEqual(['lit', 'dark', 1])
      let from = ha.seen.length
      await ha.client.publishAsync(light.commandTopic, light.payloadOff, { qos: light.qos })
      await ha.next(
        'the state payload_off',
        (m) => m.topic === light.stateTopic && m.payload === light.payloadOff,
        from,
      )
      from = ha.seen.length
      await ha.client.publishAsync(light.commandTopic, light.payloadOn, { qos: light.qos })
      await ha.next(
        'the state payload_on',
        (m) => m.topic === light.stateTopic && m.payload === light.payloadOn,
        from,
      )
    },
  )
})
