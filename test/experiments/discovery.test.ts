// Home Assistant's MQTT discovery (C18, S8, and the device-based discovery of today): the scenario
// of `npm run demo:discovery` in check mode, on both brokers and with its Python programs; the
// format's checks in lib/discovery/format.ts and what lib/discovery/home-assistant.ts makes of each
// message; and the device and the listener as real processes, facing bad input: a bad config costs
// one line, never the listener.
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { announcement } from '../../lib/discovery/device.ts'
import { startBroker, type RunningBroker } from '../../lib/broker/broker.ts'
import table from '../../lib/discovery/abbreviations.json' with { type: 'json' }
import {
  parseComponentConfig,
  parseConfigTopic,
  parseDeviceConfig,
  type Checked,
  type Entity,
  type Read,
} from '../../lib/discovery/format.ts'
import { Discoveries } from '../../lib/discovery/home-assistant.ts'
import { topicNameProblem } from '../../lib/topics.ts'
import { discovery } from '../../scenarios/discovery.ts'
import type { Event } from '../../scenarios/stage/scenario.ts'
import { allBlocks } from '../docs/doc-blocks.ts'
import {
  expectOneLineError,
  refusedPort,
  runScript,
  start,
  type Program,
} from '../helpers/processes.ts'
import { scenarioSuite } from './scenario-suite.ts'

const device = 'demos/discovery/publisher.ts'
const listener = 'demos/discovery/subscriber.ts'

const printed = (events: Event[], label: string) =>
  events.flatMap((e) =>
    e.kind === 'line' && e.label === label && !/\bmarker-\d+\b/.test(e.text) ? [e.text] : [],
  )

scenarioSuite(
  discovery,
  'C18, S8: listeners discover devices by wildcard from retained configs, a device config or one ' +
    'per entity, even late; see them drop off, lose a component and go; and have them announce ' +
    'again after the birth message',
  ['C18', 'S8'],
  {
    verify: (events) => {
      const birth = 'published "online" to homeassistant/status, the birth message'
      expect(printed(events, 'listener-1').slice(1)).toEqual([
        'subscribed to homeassistant/# (QoS 0)',
        birth,
        'discovered device kitchen "Kitchen" from mqtt-by-example 0.1.0',
        'discovered light kitchen/light "Kitchen light"',
        'discovered sensor kitchen/temperature "Kitchen temperature"',
        'Kitchen light is online (retained)',
        'Kitchen temperature is online (retained)',
        'Kitchen light state ON (retained)',
        'Kitchen temperature state 21.5 °C (retained)',
        'discovered sensor living_room/temperature "Living room temperature"',
        'Living room temperature is online (retained)',
        'Living room temperature state 21.5 °C (retained)',
        'Kitchen light is offline',
        'Kitchen temperature is offline',
        'Kitchen light is online',
        'Kitchen temperature is online',
        'removed sensor kitchen/temperature "Kitchen temperature"',
        'Kitchen light state OFF',
        'Living room temperature is offline',
        'removed sensor living_room/temperature "Living room temperature"',
      ])
      // Sensors only: the kitchen's device config never shows up in listener-2.
      expect(printed(events, 'listener-2').slice(1)).toEqual([
        'subscribed to homeassistant/sensor/# (QoS 0)',
        birth,
        'discovered sensor living_room/temperature "Living room temperature" (retained)',
        'Living room temperature is online (retained)',
        'Living room temperature state 21.5 °C (retained)',
        'Living room temperature is offline',
        'removed sensor living_room/temperature "Living room temperature"',
      ])
      // Each birth message had both devices, then the kitchen, announce again: once each.
      const answered = 'Home Assistant is online (homeassistant/status): announced again'
      expect(printed(events, 'kitchen').filter((l) => l === answered)).toHaveLength(2)
      expect(printed(events, 'sensor').filter((l) => l === answered)).toHaveLength(1)
    },
  },
)

const value = <T>(read: Read<T> | Checked<T> | undefined) =>
  read && 'value' in read ? read.value : undefined
const problem = <T>(read: Read<T> | Checked<T> | undefined) =>
  read && 'problem' in read ? read.problem : undefined
const notes = <T>(read: Read<T>) => ('notes' in read ? read.notes : [])

describe('lib/discovery/format.ts: the format', () => {
  it(
    'C18: reads <prefix>/<component>/[<node_id>/]<object_id>/config, with or without a node id, ' +
      'and device configs',
    () => {
      expect(
        value(parseConfigTopic('homeassistant', 'homeassistant/light/kitchen/light/config')),
      ).toEqual({ component: 'light', nodeId: 'kitchen', objectId: 'light' })
      expect(
        value(parseConfigTopic('homeassistant', 'homeassistant/sensor/outdoor_temp/config')),
      ).toEqual({ component: 'sensor', nodeId: undefined, objectId: 'outdoor_temp' })
      expect(value(parseConfigTopic('site-a/ha', 'site-a/ha/device/pump-1/config'))).toEqual({
        component: 'device',
        nodeId: undefined,
        objectId: 'pump-1',
      })
    },
  )

  it('tells a topic that is not meant as a config from a config topic of the wrong shape', () => {
    expect(parseConfigTopic('homeassistant', 'homeassistant/status')).toBeUndefined()
    expect(parseConfigTopic('homeassistant', 'home/kitchen/light/config')).toBeUndefined()
    expect(problem(parseConfigTopic('homeassistant', 'homeassistant/light/config'))).toMatch(
      /^not a discovery topic: 3 levels/,
    )
    expect(problem(parseConfigTopic('homeassistant', 'homeassistant/light/a/b/c/config'))).toMatch(
      /^not a discovery topic: 6 levels/,
    )
    expect(problem(parseConfigTopic('homeassistant', 'homeassistant/light/a.b/config'))).toMatch(
      /^level "a.b" may only use/,
    )
  })

  const lamp = { component: 'light', objectId: 'lamp' }
  it(
    'expands abbreviated keys, of the entity, its device and its origin, and the ~ base, as ' +
      'Home Assistant does',
    () => {
      const read = parseComponentConfig(
        lamp,
        JSON.stringify({
          '~': 'home/lamp',
          name: 'Lamp',
          uniq_id: 'lamp-1',
          def_ent_id: 'light.lamp_1',
          stat_t: '~/state',
          cmd_t: '~/set',
          pl_on: 'on',
          pl_off: 'off',
          avty: [{ t: '~/up', pl_avail: 'yes' }, { t: 'bridge/~' }],
          avty_mode: 'all',
          qos: 1,
          dev: { ids: 'lamp-1', name: 'Desk', mf: 'Acme', mdl: 'L1', sw: '1.0', sn: 'A1' },
          o: { name: 'lamp2mqtt', sw: '2.1', url: 'https://example.org' },
        }),
      )
      expect(notes(read)).toEqual([])
      expect(value(read)).toEqual<Entity>({
        platform: 'light',
        path: 'lamp',
        name: 'Desk Lamp',
        uniqueId: 'lamp-1',
        stateTopic: 'home/lamp/state',
        commandTopic: 'home/lamp/set',
        payloadOn: 'on',
        payloadOff: 'off',
        qos: 1,
        availabilityMode: 'all',
        device: { identifiers: ['lamp-1'], name: 'Desk' },
        availability: [
          { topic: 'home/lamp/up', online: 'yes', offline: 'offline' },
          { topic: 'bridge/home/lamp', online: 'online', offline: 'offline' },
        ],
      })
    },
  )

  it(
    'knows every abbreviation the docs list, for entities, devices and origins: a config made ' +
      'of them all has no unknown key',
    () => {
      const config = Object.fromEntries(
        Object.keys(table.entity)
          .filter((key) => !['dev', 'o', 'cmps', 'avty', 'p'].includes(key))
          .map((key) => [key, 'x']),
      )
      const read = parseComponentConfig(
        { component: 'fan', objectId: 'all' },
        JSON.stringify({
          ...config,
          qos: 0,
          avty_t: 'home/up',
          avty_mode: 'latest',
          def_ent_id: 'fan.all',
          dev: Object.fromEntries(Object.keys(table.device).map((key) => [key, 'x'])),
          o: Object.fromEntries(Object.keys(table.origin).map((key) => [key, 'x'])),
        }),
      )
      expect(value(read)?.platform).toBe('fan')
      expect(notes(read)).toEqual([])
      expect(Object.keys(table.entity)).toHaveLength(258)
    },
  )

  it(
    'an unknown key is kept and noted, as Home Assistant allows and ignores it; object_id is ' +
      'noted as the key that stopped working',
    () => {
      const read = parseComponentConfig(
        lamp,
        JSON.stringify({
          name: 'Lamp',
          cmd_t: 'home/lamp/set',
          colour: 'red',
          object_id: 'lamp',
          dev: { ids: 'x', serial: 1 },
        }),
      )
      expect(value(read)?.name).toBe('Lamp')
      expect(notes(read)).toEqual([
        'unknown key "colour", ignored as Home Assistant does',
        'unknown key "serial" in "device", ignored as Home Assistant does',
        '"object_id" stopped working in Home Assistant 2026.4; "default_entity_id": "light.<id>" ' +
          'took its place',
      ])
    },
  )

  const kitchen = { component: 'device', objectId: 'kitchen' }
  const deviceConfig = (cmps: Record<string, unknown>, extra = {}) =>
    JSON.stringify({
      dev: { ids: ['kitchen'], name: 'Kitchen' },
      o: { name: 'demo', sw: '1.0' },
      cmps,
      avty_t: 'home/kitchen/availability',
      qos: 1,
      ...extra,
    })
  const light = {
    p: 'light',
    name: 'light',
    uniq_id: 'kitchen_light',
    cmd_t: 'home/kitchen/light/set',
    stat_t: 'home/kitchen/light',
  }

  it(
    'reads a device config: device and origin at the root, shared options given to each ' +
      'component unless it has its own',
    () => {
      const read = parseDeviceConfig(
        kitchen,
        deviceConfig({
          light,
          temperature: {
            p: 'sensor',
            name: 'temperature',
            uniq_id: 'kitchen_t',
            stat_t: 'home/kitchen/t',
            qos: 0,
          },
        }),
      )
      const config = value(read)!
      expect(config.device).toEqual({ identifiers: ['kitchen'], name: 'Kitchen' })
      expect(config.origin).toEqual({ name: 'demo', sw: '1.0' })
      const entity = (id: string) => {
        const c = config.components.get(id)!
        return 'entity' in c ? c.entity : undefined
      }
      expect(entity('light')).toMatchObject({
        platform: 'light',
        path: 'kitchen/light',
        name: 'Kitchen light',
        qos: 1,
        availability: [
          { topic: 'home/kitchen/availability', online: 'online', offline: 'offline' },
        ],
      })
      expect(entity('temperature')).toMatchObject({
        platform: 'sensor',
        path: 'kitchen/temperature',
        qos: 0,
      })
    },
  )

  it(
    'a component reduced to {"p": ...} is a removal; one without a platform or a unique_id is a ' +
      'problem of its own',
    () => {
      const config = value(
        parseDeviceConfig(
          kitchen,
          deviceConfig({
            light,
            temperature: { p: 'sensor' },
            x: { name: 'x' },
            y: { p: 'sensor', stat_t: 's' },
          }),
        ),
      )!
      expect(config.components.get('temperature')).toEqual({ removed: 'sensor' })
      expect(config.components.get('x')).toEqual({
        problem: 'a component needs its "platform" ("p"), such as "light" or "sensor"',
      })
      expect(config.components.get('y')).toEqual({
        problem: 'a component of a device config needs "unique_id" ("uniq_id")',
      })
    },
  )

  it.each([
    [
      '{"o": {"name": "x"}, "cmps": {}}',
      'a device config needs "device" ("dev"), with its "identifiers"',
    ],
    [
      '{"dev": {"ids": "k"}, "cmps": {}}',
      'a device config needs "origin" ("o"), with the "name" of the software that sent it',
    ],
    [
      '{"dev": {"ids": "k"}, "o": {"name": "x"}}',
      'a device config needs "components" ("cmps"), each with its "platform" ("p")',
    ],
    [
      '{"dev": {"name": "k"}, "o": {"name": "x"}, "cmps": {}}',
      '"device" needs "identifiers" (or "connections") to tell one device from another',
    ],
    [
      '{"dev": {"ids": "k"}, "o": {"sw": "1"}, "cmps": {}}',
      '"origin" needs the "name" of the software that sent the config',
    ],
  ])('a device config %s is refused: %s', (payload, line) => {
    expect(problem(parseDeviceConfig(kitchen, payload))).toBe(line)
  })

  it.each([
    ['{"name": "Lamp"', 'not JSON ({"name": "Lamp")'],
    ['"lamp"', 'the config must be a JSON object, not a string'],
    [
      '{"name": "Lamp", "state_topic": "home/lamp"}',
      'a light needs "command_topic", the topic it takes its on and off commands on',
    ],
    [
      '{"name": 7, "command_topic": "c"}',
      '"name" must be a string, or null for the device\'s name alone, not a number',
    ],
    [
      '{"command_topic": "home/+/set"}',
      `"command_topic" is not a topic a client can publish to: ${topicNameProblem('home/+/set')}`,
    ],
    [
      '{"command_topic": "c", "availability": [{"payload_available": "up"}]}',
      '"availability" must be a list of objects, each with a "topic"',
    ],
    [
      '{"command_topic": "c", "availability": [{"topic": "a"}], "availability_topic": "b"}',
      '"availability" and "availability_topic" must not be used together',
    ],
    [
      '{"command_topic": "c", "availability_mode": "most"}',
      '"availability_mode" must be "all", "any" or "latest", not "most"',
    ],
    ['{"command_topic": "c", "qos": 3}', '"qos" must be 0, 1 or 2, not 3'],
    [
      '{"command_topic": "c", "device": {"name": "Lamp"}}',
      '"device" needs "identifiers" (or "connections") to tell one device from another',
    ],
  ])('a light config %s is refused: %s', (payload, line) => {
    expect(problem(parseComponentConfig(lamp, payload))).toBe(line)
  })
})

describe('lib/discovery/device.ts: what the device announces', () => {
  it(
    "docs/05-discovery.md shows the configs the device publishes: the kitchen's device config, " +
      "then the living room's, one entity's",
    () => {
      const identity = {
        prefix: 'homeassistant',
        base: 'home',
        payloadOn: 'ON',
        payloadOff: 'OFF',
        state: 'ON',
        temperature: '21.5',
      }
      const kitchen = announcement({
        ...identity,
        nodeId: 'kitchen',
        deviceName: 'Kitchen',
        components: ['light', 'temperature'],
        perComponent: false,
      })
      const livingRoom = announcement({
        ...identity,
        nodeId: 'living_room',
        deviceName: 'Living room',
        components: ['temperature'],
        perComponent: true,
      })
      const shown = allBlocks
        .filter((b) => b.page === 'docs/05-discovery.md' && b.lang === 'json')
        .map((b) => JSON.parse(b.body))
      expect(shown).toEqual([
        JSON.parse(kitchen.configs.get('homeassistant/device/kitchen/config')!),
        JSON.parse(livingRoom.configs.get('homeassistant/sensor/living_room/temperature/config')!),
      ])
    },
  )
})

describe('lib/discovery/home-assistant.ts: what a listener makes of each message', () => {
  const read = (d: Discoveries, topic: string, payload: string, retain = false) =>
    d.read(topic, payload, retain)
  const lines = (d: Discoveries, topic: string, payload: string) => read(d, topic, payload).lines
  const config = (avty: unknown[], mode?: string) =>
    JSON.stringify({
      name: 'Pump',
      cmd_t: 'pump/set',
      stat_t: 'pump',
      avty,
      ...(mode && { avty_mode: mode }),
    })

  it.each([
    ['latest', ['online', undefined, 'offline', 'online']],
    ['all', [undefined, 'online', 'offline', 'online']],
    ['any', ['online', undefined, undefined, undefined]],
  ] as const)(
    'availability_mode %s: which messages on two topics change what the listener says',
    (mode, said) => {
      const d = new Discoveries('ha', 'ha/#')
      const news = read(d, 'ha/switch/pump/config', config([{ t: 'a' }, { t: 'b' }], mode))
      expect(news.follow).toEqual(['a', 'b', 'pump'])
      // a online, b online, a offline, a online again.
      const steps = [
        ['a', 'online'],
        ['b', 'online'],
        ['a', 'offline'],
        ['a', 'online'],
      ]
      expect(steps.map(([topic, payload]) => lines(d, topic!, payload!)[0])).toEqual(
        said.map((s) => s && `Pump is ${s}`),
      )
    },
  )

  it(
    'a device config: the device and its entities discovered; a component reduced to {"p"} ' +
      'removed; one left out kept; an empty config removes them all',
    () => {
      const d = new Discoveries('ha', 'ha/#')
      const topic = 'ha/device/k/config'
      const cmps = (extra = {}) => ({
        light: { p: 'light', uniq_id: 'k_l', name: 'light', cmd_t: 'k/l/set', stat_t: 'k/l' },
        ...extra,
      })
      const temperature = {
        p: 'sensor',
        uniq_id: 'k_t',
        name: 'temperature',
        stat_t: 'k/t',
        unit_of_meas: '°C',
      }
      const payload = (c: object) =>
        JSON.stringify({
          dev: { ids: 'k', name: 'K' },
          o: { name: 'demo' },
          avty_t: 'k/up',
          cmps: c,
        })
      const first = read(d, topic, payload(cmps({ temperature })), true)
      expect(first.lines).toEqual([
        'discovered device k "K" from demo (retained)',
        'discovered light k/light "K light" (retained)',
        'discovered sensor k/temperature "K temperature" (retained)',
      ])
      expect(first.follow).toEqual(['k/up', 'k/l', 'k/t'])
      expect(lines(d, 'k/up', 'online')).toEqual(['K light is online', 'K temperature is online'])
      expect(read(d, topic, payload(cmps({ temperature })))).toEqual({
        unfollow: [],
        lines: [],
        follow: [],
      })
      expect(read(d, topic, payload(cmps({ temperature: { p: 'sensor' } })))).toEqual({
        unfollow: ['k/t'],
        lines: ['removed sensor k/temperature "K temperature"'],
        follow: [],
      })
      expect(lines(d, topic, payload(cmps()))).toEqual([])
      expect(lines(d, topic, payload(cmps({ temperature })))).toEqual([
        'discovered sensor k/temperature "K temperature"',
      ])
      expect(lines(d, topic, payload(cmps()))).toEqual([
        'kept sensor k/temperature "K temperature": left out of ha/device/k/config, but not ' +
          'removed first with {"p": "sensor"}',
      ])
      expect(read(d, topic, '')).toEqual({
        unfollow: ['k/up', 'k/l', 'k/t'],
        lines: [
          'removed light k/light "K light"',
          'removed sensor k/temperature "K temperature"',
          'removed device k "K"',
        ],
        follow: [],
      })
    },
  )

  it(
    "Home Assistant's own status topic is not a device, and a state that is neither payload_on " +
      'nor payload_off is said to be so',
    () => {
      const d = new Discoveries('ha', 'ha/#')
      expect(lines(d, 'ha/status', 'online')).toEqual([])
      read(
        d,
        'ha/light/lamp/config',
        JSON.stringify({
          name: 'Lamp',
          cmd_t: 'lamp/set',
          stat_t: 'lamp',
          pl_on: 'on',
          pl_off: 'off',
        }),
      )
      expect(lines(d, 'lamp', 'on')).toEqual(['Lamp state on'])
      expect(lines(d, 'lamp', 'ON')).toEqual(['Lamp sent "ON" on lamp, neither "on" nor "off"'])
    },
  )
})

describe('the listener facing bad configs', () => {
  let broker: RunningBroker
  let client: MqttClient
  let program: Program
  beforeAll(async () => {
    broker = await startBroker({ port: 0 })
    program = start(listener, [], { MQTT_URL: broker.url })
    await program.waitForLine('the birth message')
    client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
  })
  afterAll(async () => {
    program.child.kill('SIGINT')
    await program.finish()
    await client.endAsync()
    await broker.close()
  })

  // QoS 1, awaited one by one: each is with the broker before the next one leaves.
  const send = (topic: string, payload: string, retain = false) =>
    client.publishAsync(topic, payload, { qos: 1, retain })
  const good = (name: string, id: string) =>
    JSON.stringify({
      '~': 'home/garden/pump',
      name,
      uniq_id: id,
      stat_t: '~/state',
      cmd_t: '~/set',
      avty: [{ t: '~/up' }],
      dev: { ids: ['garden'] },
    })
  const lines: string[] = []
  /** Send, then wait for the line the listener must print for it. */
  async function expectLine(topic: string, payload: string, line: string, retain = false) {
    await send(topic, payload, retain)
    expect(await program.waitForLine(line)).toBe(line)
    lines.push(line)
  }

  it.each([
    ['homeassistant/light/broken/config', '{"name": "Broken"', 'not JSON ({"name": "Broken")'],
    ['homeassistant/sensor/list/config', '[1, 2]', 'the config must be a JSON object, not a list'],
    [
      'homeassistant/sensor/nameless/config',
      '{"name": "x"}',
      'a sensor needs "state_topic", the topic it reports on',
    ],
    [
      'homeassistant/light/mute/config',
      '{"name": "Mute", "unique_id": "mute", "state_topic": "home/mute"}',
      'a light needs "command_topic", the topic it takes its on and off commands on',
    ],
    [
      'homeassistant/sensor/wild/config',
      '{"name": "Wild", "unique_id": "wild", "state_topic": "home/#"}',
      `"state_topic" is not a topic a client can publish to: ${topicNameProblem('home/#')}`,
    ],
    [
      'homeassistant/device/orphan/config',
      '{"dev": {"ids": "o"}, "cmps": {}}',
      'a device config needs "origin" ("o"), with the "name" of the software that sent it',
    ],
    [
      'homeassistant/light/config',
      '{}',
      'not a discovery topic: 3 levels, expected ' +
        'homeassistant/<component>/[<node_id>/]<object_id>/config',
    ],
    [
      'homeassistant/light/my lamp/config',
      '{}',
      'level "my lamp" may only use letters, digits, _ and - (expected ' +
        'homeassistant/<component>/[<node_id>/]<object_id>/config)',
    ],
    ['homeassistant/light/ghost/config', '', 'an empty config, but nothing was discovered there'],
  ])('%s %s: one line, and the listener carries on', async (topic, payload, problem) => {
    await expectLine(topic, payload, `ignored ${topic}: ${problem}`)
  })

  it(
    "prints a message under the prefix that is not a config as it is, but not Home Assistant's " +
      'own status',
    async () => {
      await send('homeassistant/status', 'offline')
      await expectLine('homeassistant/news', 'hello', 'homeassistant/news hello')
    },
  )

  it(
    'C18: after all that, still discovers a good config (abbreviated, as small devices send it) ' +
      'and follows it',
    async () => {
      // Availability and state go first and retained, as the device does: the listener subscribes
      // to them only once it has read the config, and gets them then.
      await send('home/garden/pump/up', 'online', true)
      await send('home/garden/pump/state', 'ON', true)
      await expectLine(
        'homeassistant/switch/garden/pump/config',
        good('Garden pump', 'garden_pump'),
        'discovered switch garden/pump "Garden pump"',
      )
      lines.push('Garden pump is online (retained)', 'Garden pump state ON (retained)')
      await program.waitForLine('Garden pump state ON (retained)')
      await expectLine(
        'home/garden/pump/up',
        'maybe',
        'Garden pump sent "maybe" on home/garden/pump/up, neither "online" nor "offline"',
      )
      await expectLine(
        'homeassistant/switch/garden/pump2/config',
        good('Pump twin', 'garden_pump'),
        'ignored homeassistant/switch/garden/pump2/config: unique_id "garden_pump" is already ' +
          'used ' +
          'by homeassistant/switch/garden/pump/config',
      )
      await expectLine(
        'homeassistant/switch/garden/pump/config',
        good('Pump', 'garden_pump'),
        'updated switch garden/pump "Pump"',
      )
      await expectLine(
        'homeassistant/switch/garden/pump/config',
        '',
        'removed switch garden/pump "Pump"',
      )
      // A forgotten entity's state is no longer followed: nothing is printed for it before the next
      // line.
      await send('home/garden/pump/state', 'OFF')
      await expectLine('homeassistant/news', 'still here', 'homeassistant/news still here')
      await send('home/garden/pump/up', '', true)
      await send('home/garden/pump/state', '', true)

      expect(program.stdout.trimEnd().split('\n')).toEqual([
        `connected to ${broker.url}, result code 0`,
        'subscribed to homeassistant/# (QoS 0)',
        'published "online" to homeassistant/status, the birth message',
        ...lines,
      ])
      expect(program.stderr).toBe('')
      expect(program.child.exitCode).toBeNull()
    },
  )
})

describe('the device', () => {
  let broker: RunningBroker
  let client: MqttClient
  beforeAll(async () => {
    broker = await startBroker({ port: 0 })
    client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
  })
  afterAll(async () => {
    await client.endAsync()
    await broker.close()
  })

  /** The next message on `topic`, once subscribed (a retained one arrives at once). */
  async function next(topic: string): Promise<{ payload: string; retain: boolean }> {
    const got = new Promise<{ payload: string; retain: boolean }>((resolve) => {
      const on = (t: string, payload: Buffer, packet: { retain: boolean }) => {
        if (t !== topic) return
        client.removeListener('message', on)
        resolve({ payload: payload.toString(), retain: packet.retain })
      }
      client.on('message', on)
    })
    await client.subscribeAsync(topic, { qos: 1 })
    return got
  }
  async function stop(program: Program) {
    program.child.kill('SIGINT')
    await program.finish()
  }
  async function clear(topics: string[]) {
    await client.unsubscribeAsync(topics)
    for (const topic of topics) await client.publishAsync(topic, '', { qos: 1, retain: true })
  }

  it(
    'announces one retained device config, with dev and o at the root and its entities under ' +
      'cmps, and obeys its payloads only',
    async () => {
      const hall = start(device, ['--node', 'hall', '--payload-on', 'on', '--payload-off', 'off'], {
        MQTT_URL: broker.url,
      })
      try {
        await hall.waitForLine('listening for Home Assistant on homeassistant/status')
        const config = await next('homeassistant/device/hall/config')
        expect(config.retain).toBe(true)
        expect(JSON.parse(config.payload)).toEqual({
          dev: { ids: ['hall'], name: 'Hall' },
          o: { name: 'mqtt-by-example', sw: '0.1.0' },
          cmps: {
            light: {
              p: 'light',
              name: 'light',
              unique_id: 'hall_light',
              default_entity_id: 'light.hall_light',
              state_topic: 'home/hall/light',
              command_topic: 'home/hall/light/set',
              payload_on: 'on',
              payload_off: 'off',
            },
            temperature: {
              p: 'sensor',
              name: 'temperature',
              unique_id: 'hall_temperature',
              default_entity_id: 'sensor.hall_temperature',
              state_topic: 'home/hall/temperature',
              device_class: 'temperature',
              unit_of_measurement: '°C',
            },
          },
          availability_topic: 'home/hall/availability',
          qos: 1,
        })
        expect(hall.stdout).toContain('listening for on and off on home/hall/light/set')
        await client.publishAsync('home/hall/light/set', 'OFF', { qos: 1 })
        await hall.waitForLine('ignored OFF')
        await client.publishAsync('home/hall/light/set', 'off', { qos: 1 })
        await hall.waitForLine('published "off" to home/hall/light (retained)')
      } finally {
        await stop(hall)
      }
      expect(hall.stdout).toContain('published "offline" to home/hall/availability (retained)')
      await clear([
        'homeassistant/device/hall/config',
        'home/hall/availability',
        'home/hall/light',
        'home/hall/temperature',
      ])
    },
  )

  it(
    "announces again after Home Assistant's birth message, the config first, then availability " +
      'and states',
    async () => {
      const hall = start(device, ['--node', 'hall', '--components', 'light'], {
        MQTT_URL: broker.url,
      })
      try {
        await hall.waitForLine('listening for Home Assistant on homeassistant/status')
        // What was retained comes at once; what the birth message brings comes live, retain flag
        // off.
        const seen: string[] = []
        client.on('message', (topic, _payload, packet) =>
          seen.push(`${topic}${packet.retain ? ' (retained)' : ''}`),
        )
        await client.subscribeAsync(
          ['homeassistant/device/hall/config', 'home/hall/availability', 'home/hall/light'],
          { qos: 1 },
        )
        await client.publishAsync('homeassistant/status', 'online', { qos: 1 })
        await hall.waitForLine('Home Assistant is online (homeassistant/status): announced again')
        await expect
          .poll(() => seen.filter((s) => !s.endsWith('(retained)')))
          .toEqual([
            'homeassistant/device/hall/config',
            'home/hall/availability',
            'home/hall/light',
          ])
        client.removeAllListeners('message')
        await client.publishAsync('homeassistant/status', 'offline', { qos: 1 })
        await hall.waitForLine('Home Assistant is offline (homeassistant/status)')
      } finally {
        await stop(hall)
      }
      await clear(['homeassistant/device/hall/config', 'home/hall/availability', 'home/hall/light'])
    },
  )

  it(
    '--drop: reduces the component to its platform, then leaves it out, and clears its state; ' +
      "in the article's form, an empty config",
    async () => {
      const dropped = start(device, ['--node', 'hall', '--drop', 'temperature'], {
        MQTT_URL: broker.url,
      })
      try {
        await dropped.waitForLine('listening for Home Assistant')
        const published = dropped.stdout.split('\n').filter((l) => l.startsWith('published'))
        expect(published).toEqual([
          'published "online" to home/hall/availability (retained)',
          'published "ON" to home/hall/light (retained)',
          'published its config with "temperature": {"p": "sensor"} to ' +
            'homeassistant/device/hall/config (retained)',
          'published "" to home/hall/temperature (retained)',
          'published its config to homeassistant/device/hall/config (retained)',
        ])
        expect(
          Object.keys(JSON.parse((await next('homeassistant/device/hall/config')).payload).cmps),
        ).toEqual(['light'])
      } finally {
        await stop(dropped)
      }
      await clear(['homeassistant/device/hall/config', 'home/hall/availability', 'home/hall/light'])

      const older = start(device, ['--node', 'hall', '--per-component', '--drop', 'light'], {
        MQTT_URL: broker.url,
      })
      try {
        await older.waitForLine('listening for Home Assistant')
        expect(older.stdout).toContain(
          'published "" to homeassistant/light/hall/light/config (retained)\npublished "" to ' +
            'home/hall/light (retained)\n' +
            'published its config to homeassistant/sensor/hall/temperature/config (retained)',
        )
      } finally {
        await stop(older)
      }
      await clear([
        'homeassistant/sensor/hall/temperature/config',
        'home/hall/availability',
        'home/hall/temperature',
      ])
    },
  )
})

describe('bad flags and no broker', () => {
  let broker: RunningBroker
  beforeAll(async () => {
    broker = await startBroker({ port: 0 })
  })
  afterAll(() => broker.close())

  it.concurrent.each([
    [device, ['--components', 'fan'], /--components takes light and temperature, not "fan"/],
    [device, ['--components', 'light,light'], /--components lists a component twice: light,light/],
    [
      device,
      ['--drop', 'light', '--components', 'light'],
      /--drop light removes a component that --components still lists/,
    ],
    [
      device,
      ['--node', 'my kitchen'],
      /--node must be made of letters, digits, _ and - only .*not "my kitchen"/,
    ],
    [device, ['--state', 'DIM'], /--state of the light must be ON or OFF, not "DIM"/],
    [
      device,
      ['--components', 'temperature', '--state', 'ON'],
      /--state is the light's, and this device has no light/,
    ],
    [
      device,
      ['--payload-on', 'x', '--payload-off', 'x'],
      /--payload-on and --payload-off must be two different payloads, not "x" and "x"/,
    ],
    [device, ['--temperature', 'warm'], /--temperature must be a number, not "warm"/],
    [device, ['--name', ''], /--name must not be empty/],
    [
      device,
      ['--prefix', 'homeassistant/#'],
      /--prefix "homeassistant\/#" cannot begin a topic name: .*wildcards/,
    ],
    [device, ['--base', ''], /--base "" cannot begin a topic name: .*at least one character/],
    [device, ['--qos', '1'], /Unknown option '--qos'; see --help/],
    [
      listener,
      ['--topic', 'homeassistant/#/x'],
      /cannot subscribe to "homeassistant\/#\/x": # must fill a whole level/,
    ],
    [listener, ['--prefix', 'ha/+'], /--prefix "ha\/\+" cannot begin a topic name/],
    [listener, ['--qos', '3'], /--qos must be 0, 1 or 2, not "3"/],
    [listener, ['extra'], /Unexpected argument 'extra'.*; see --help/],
  ])('%s %j is refused before anything is sent', async (script, args, line) => {
    // The broker is up: these must fail on the input, not on the connection.
    expectOneLineError(await runScript(script, args, { MQTT_URL: broker.url }), line)
  })

  it.concurrent.each([device, listener])(
    '%s names the URL it cannot reach and suggests npm run broker',
    async (script) => {
      const url = `mqtt://127.0.0.1:${await refusedPort()}`
      expectOneLineError(
        await runScript(script, ['--url', url]),
        new RegExp(`cannot reach the broker at ${url}.*npm run broker`),
      )
    },
  )

  it.concurrent.each([
    [
      device,
      [
        '--node',
        '--name',
        '--components',
        '--per-component',
        '--drop',
        '--state',
        '--temperature',
        '--payload-on',
        '--payload-off',
        '--prefix',
        '--base',
        '--url',
        '--id',
      ],
    ],
    [listener, ['--topic', '--prefix', '--url', '--qos', '--id']],
  ])('%s --help explains every flag and exits 0', async (script, flags) => {
    const result = await runScript(script, ['--help'])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(new RegExp(`^usage: npx tsx ${script} \\[options\\]`))
    for (const flag of [...flags, '--help']) expect(result.stdout).toContain(flag)
  })
})
