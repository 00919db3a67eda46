// Home Assistant style discovery (C18, S8): the scenario of `npm run demo:discovery` in check mode, also
// twice against one broker; the discovery format's checks in lib/discovery.ts; and the device and the
// listener facing bad input, run as real processes: a bad config costs one line, never the listener.
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type RunningBroker } from '../lib/broker.ts'
import { parseConfig, parseConfigTopic, type Checked, type Entity } from '../lib/discovery.ts'
import { topicNameProblem } from '../lib/topics.ts'
import { discovery } from '../scenarios/discovery.ts'
import type { Event } from '../scenarios/stage.ts'
import { expectOneLineError, freePort, runScript, start, type Program } from './processes.ts'
import { scenarioSuite } from './scenario-suite.ts'

const device = 'demos/discovery/publisher.ts'
const listener = 'demos/discovery/subscriber.ts'

/** The URL the demos connected to, from the broker's ready line. */
const url = (events: Event[]) => events.flatMap((e) => (e.kind === 'line' && e.label === 'broker' ? [e.text.match(/^broker ready on (\S+?)[;\s]/)?.[1]] : []))[0]
const printed = (events: Event[], label: string) =>
  events.flatMap((e) => (e.kind === 'line' && e.label === label && !/\bmarker-\d+\b/.test(e.text) ? [e.text] : []))

scenarioSuite(discovery, 'C18, S8: listeners discover devices by wildcard from retained configs, even late, and see a dropped device go offline',
  ['C18', 'S8'], {
    verify: (events) => {
      expect(printed(events, 'listener-1').slice(2)).toEqual([
        'discovered light kitchen/light "Kitchen light"',
        'Kitchen light is online (retained)',
        'Kitchen light state ON (retained)',
        'discovered sensor living_room/temperature "Living room temperature"',
        'Living room temperature is online (retained)',
        'Living room temperature state 21.5 °C (retained)',
        `lost the connection to the broker at ${url(events)}; trying again every 1 s`,
        `connected to ${url(events)}, result code 0`,
        'subscribed to homeassistant/# (QoS 0)',
        'Kitchen light state OFF',
        'Living room temperature is offline',
        'Kitchen light is offline',
        'removed sensor living_room/temperature "Living room temperature"',
      ])
      // Only lights: the sensor never shows up in listener-2.
      expect(printed(events, 'listener-2').slice(2)).toEqual([
        'discovered light kitchen/light "Kitchen light" (retained)',
        'Kitchen light is online (retained)',
        'Kitchen light state ON (retained)',
        `lost the connection to the broker at ${url(events)}; trying again every 1 s`,
        `connected to ${url(events)}, result code 0`,
        'subscribed to homeassistant/light/# (QoS 0)',
        'Kitchen light state OFF',
        'Kitchen light is offline',
      ])
    },
  })

describe('lib/discovery.ts', () => {
  const problem = <T>(checked: Checked<T> | undefined) => (checked && 'problem' in checked ? checked.problem : undefined)
  const value = <T>(checked: Checked<T> | undefined) => (checked && 'value' in checked ? checked.value : undefined)

  it('C18: reads <prefix>/<component>/[<node_id>/]<object_id>/config, with or without a node id', () => {
    expect(value(parseConfigTopic('homeassistant', 'homeassistant/light/kitchen/light/config')))
      .toEqual({ component: 'light', nodeId: 'kitchen', objectId: 'light' })
    expect(value(parseConfigTopic('homeassistant', 'homeassistant/sensor/outdoor_temp/config')))
      .toEqual({ component: 'sensor', nodeId: undefined, objectId: 'outdoor_temp' })
    expect(value(parseConfigTopic('site-a/ha', 'site-a/ha/switch/pump-1/config')))
      .toEqual({ component: 'switch', nodeId: undefined, objectId: 'pump-1' })
  })

  it('tells a topic that is not meant as a config from a config topic of the wrong shape', () => {
    expect(parseConfigTopic('homeassistant', 'homeassistant/status')).toBeUndefined()
    expect(parseConfigTopic('homeassistant', 'home/kitchen/light/config')).toBeUndefined()
    expect(problem(parseConfigTopic('homeassistant', 'homeassistant/light/config'))).toMatch(/^not a discovery topic: 3 levels/)
    expect(problem(parseConfigTopic('homeassistant', 'homeassistant/light/a/b/c/config'))).toMatch(/^not a discovery topic: 6 levels/)
    expect(problem(parseConfigTopic('homeassistant', 'homeassistant/light//x/config'))).toMatch(/^level "" may only use/)
    expect(problem(parseConfigTopic('homeassistant', 'homeassistant/light/a.b/config'))).toMatch(/^level "a.b" may only use/)
  })

  const light = { component: 'light', objectId: 'lamp' }
  it('reads abbreviated keys, the ~ base and the availability list as Home Assistant does', () => {
    const entity = value(parseConfig(light, JSON.stringify({
      '~': 'home/lamp', name: 'Lamp', uniq_id: 'lamp-1', stat_t: '~/state', cmd_t: '~/set',
      avty: [{ t: '~/up', pl_avail: 'yes' }], avty_t: 'bridge/state', dev: { ids: 'lamp-1' },
    })))
    expect(entity).toEqual<Entity>({
      component: 'light', objectId: 'lamp', name: 'Lamp', uniqueId: 'lamp-1', stateTopic: 'home/lamp/state', commandTopic: 'home/lamp/set',
      unit: undefined,
      availability: [{ topic: 'bridge/state', online: 'online', offline: 'offline' }, { topic: 'home/lamp/up', online: 'yes', offline: 'offline' }],
    })
  })

  it.each([
    ['{"name": "Lamp"', 'not JSON ({"name": "Lamp")'],
    ['"lamp"', 'the config must be a JSON object, not a string'],
    ['{"state_topic": "home/lamp", "command_topic": "home/lamp/set"}', 'missing "name" and "unique_id"'],
    ['{"name": "Lamp", "unique_id": "l", "state_topic": "home/lamp"}', 'a light needs "command_topic", the topic it takes ON and OFF on'],
    ['{"name": 7, "unique_id": "l", "state_topic": "s", "command_topic": "c"}', '"name" must be a string, not a number'],
    ['{"name": "L", "unique_id": "l", "state_topic": ["s"], "command_topic": "c"}', '"state_topic" must be a topic name, not a list'],
    ['{"name": "L", "unique_id": "l", "state_topic": "home/+", "command_topic": "c"}', `"state_topic" is not a topic a client can publish to: ${topicNameProblem('home/+')}`],
    ['{"name": "L", "unique_id": "l", "state_topic": "s", "command_topic": "c", "device": {"name": "D"}}', '"device" needs "identifiers" (or "connections") to tell one device from another'],
    ['{"name": "L", "unique_id": "l", "state_topic": "s", "command_topic": "c", "availability": "up"}', '"availability" must be a list of objects, each with a "topic"'],
  ])('refuses %s with one line', (payload, line) => {
    expect(problem(parseConfig(light, payload))).toBe(line)
  })
})

describe('the listener facing bad configs', () => {
  let broker: RunningBroker
  let client: MqttClient
  let program: Program
  beforeAll(async () => {
    broker = await startBroker({ port: 0 })
    program = start(listener, [], { MQTT_URL: broker.url })
    await program.waitForLine('subscribed to homeassistant/# (QoS 0)')
    client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
  })
  afterAll(async () => {
    program.child.kill('SIGINT')
    await program.finish()
    await client.endAsync()
    await broker.close()
  })

  // QoS 1, awaited one by one: each is with the broker before the next one leaves.
  const send = (topic: string, payload: string, retain = false) => client.publishAsync(topic, payload, { qos: 1, retain })
  const good = (name: string, id: string) => JSON.stringify({
    '~': 'home/garden/pump', name, uniq_id: id, stat_t: '~/state', cmd_t: '~/set', avty: [{ t: '~/up' }], dev: { ids: ['garden'] },
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
    ['homeassistant/sensor/nameless/config', '{"state_topic": "home/x"}', 'missing "name" and "unique_id"'],
    ['homeassistant/light/mute/config', '{"name": "Mute", "unique_id": "mute", "state_topic": "home/mute"}',
      'a light needs "command_topic", the topic it takes ON and OFF on'],
    ['homeassistant/sensor/wild/config', '{"name": "Wild", "unique_id": "wild", "state_topic": "home/#"}',
      `"state_topic" is not a topic a client can publish to: ${topicNameProblem('home/#')}`],
    ['homeassistant/light/config', '{}', 'not a discovery topic: 3 levels, expected homeassistant/<component>/[<node_id>/]<object_id>/config'],
    ['homeassistant/light/a/b/c/config', '{}', 'not a discovery topic: 6 levels, expected homeassistant/<component>/[<node_id>/]<object_id>/config'],
    ['homeassistant/light/my lamp/config', '{}',
      'level "my lamp" may only use letters, digits, _ and - (expected homeassistant/<component>/[<node_id>/]<object_id>/config)'],
    ['homeassistant/light/ghost/config', '', 'an empty config, but nothing was discovered there'],
  ])('%s %s: one line, and the listener carries on', async (topic, payload, problem) => {
    await expectLine(topic, payload, `ignored ${topic}: ${problem}`)
  })

  it('prints a message under the prefix that is not a config as it is', async () => {
    await expectLine('homeassistant/status', 'online', 'homeassistant/status online')
  })

  it('C18: after all that, still discovers a good config (abbreviated, as small devices send it) and follows it', async () => {
    // Availability and state go first and retained, as the device does: the listener subscribes to them
    // only once it has read the config, and gets them then.
    await send('home/garden/pump/up', 'online', true)
    await send('home/garden/pump/state', 'on', true)
    await expectLine('homeassistant/switch/garden/pump/config', good('Garden pump', 'garden_pump'), 'discovered switch garden/pump "Garden pump"')
    lines.push('Garden pump is online (retained)', 'Garden pump state on (retained)')
    await program.waitForLine('Garden pump state on (retained)')
    await expectLine('home/garden/pump/up', 'maybe', 'Garden pump sent "maybe" on home/garden/pump/up, neither "online" nor "offline"')
    await expectLine('homeassistant/switch/garden/pump2/config', good('Pump twin', 'garden_pump'),
      'ignored homeassistant/switch/garden/pump2/config: unique_id "garden_pump" is already used by homeassistant/switch/garden/pump/config')
    await expectLine('homeassistant/switch/garden/pump/config', good('Pump', 'garden_pump'), 'updated switch garden/pump "Pump"')
    lines.push('Pump is online (retained)', 'Pump state on (retained)')
    await program.waitForLine('Pump state on (retained)')
    await expectLine('homeassistant/switch/garden/pump/config', '', 'removed switch garden/pump "Pump"')
    // A forgotten entity's state is no longer followed: nothing is printed for it before the next line.
    await send('home/garden/pump/state', 'off')
    await expectLine('homeassistant/status', 'still here', 'homeassistant/status still here')
    await send('home/garden/pump/up', '', true)
    await send('home/garden/pump/state', '', true)

    expect(program.stdout.trimEnd().split('\n')).toEqual([`connected to ${broker.url}, result code 0`, 'subscribed to homeassistant/# (QoS 0)', ...lines])
    expect(program.stderr).toBe('')
    expect(program.child.exitCode).toBeNull()
  })
})

describe('the device', () => {
  it('C18: announces a retained config with the keys Home Assistant reads, and obeys ON and OFF only', async () => {
    const broker = await startBroker({ port: 0 })
    const light = start(device, ['--node', 'hall', '--name', 'Hall lamp'], { MQTT_URL: broker.url })
    const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
    try {
      await light.waitForLine('listening for ON and OFF on home/hall/light/set')
      const retained = new Promise<{ payload: string; retain: boolean }>((resolve) =>
        client.once('message', (_topic, payload, packet) => resolve({ payload: payload.toString(), retain: packet.retain })))
      await client.subscribeAsync('homeassistant/light/hall/light/config')
      const config = await retained
      expect(config.retain).toBe(true)
      expect(JSON.parse(config.payload)).toEqual({
        name: 'Hall lamp', unique_id: 'hall_light', device: { identifiers: ['hall'], name: 'Hall' },
        state_topic: 'home/hall/light', command_topic: 'home/hall/light/set', payload_on: 'ON', payload_off: 'OFF',
        availability_topic: 'home/hall/light/availability', payload_available: 'online', payload_not_available: 'offline',
      })
      // What the device announces, the listener accepts.
      expect(parseConfig({ component: 'light', nodeId: 'hall', objectId: 'light' }, config.payload)).toHaveProperty('value')

      await client.publishAsync('home/hall/light/set', 'BLINK', { qos: 1 })
      await light.waitForLine('ignored BLINK')
      await client.publishAsync('home/hall/light/set', 'OFF', { qos: 1 })
      await light.waitForLine('published "OFF" to home/hall/light (retained)')
    } finally {
      light.child.kill('SIGINT')
      await light.finish()
      await client.endAsync()
      await broker.close()
    }
    expect(light.stdout).toContain('published "offline" to home/hall/light/availability (retained)')
  })
})

describe('bad flags and no broker', () => {
  let broker: RunningBroker
  beforeAll(async () => {
    broker = await startBroker({ port: 0 })
  })
  afterAll(() => broker.close())

  it.concurrent.each([
    [device, ['--kind', 'fan'], /--kind must be light or sensor, not "fan"/],
    [device, ['--node', 'my kitchen'], /--node must be made of letters, digits, _ and - only .*not "my kitchen"/],
    [device, ['--object', ''], /--object must be made of letters, digits, _ and - only/],
    [device, ['--state', 'DIM'], /--state of a light must be ON or OFF, not "DIM"/],
    [device, ['--kind', 'sensor', '--state', 'warm'], /--state of a sensor must be a number, not "warm"/],
    [device, ['--name', ''], /--name must not be empty/],
    [device, ['--prefix', 'homeassistant/#'], /--prefix "homeassistant\/#" cannot begin a topic name: .*wildcards/],
    [device, ['--base', ''], /--base "" cannot begin a topic name: .*at least one character/],
    [device, ['--qos', '1'], /Unknown option '--qos'; see --help/],
    [listener, ['--topic', 'homeassistant/#/x'], /cannot subscribe to "homeassistant\/#\/x": # must fill a whole level/],
    [listener, ['--prefix', 'ha/+'], /--prefix "ha\/\+" cannot begin a topic name/],
    [listener, ['--qos', '3'], /--qos must be 0, 1 or 2, not "3"/],
    [listener, ['extra'], /Unexpected argument 'extra'.*; see --help/],
  ])('%s %j is refused before anything is sent', async (script, args, line) => {
    // The broker is up: these must fail on the input, not on the connection.
    expectOneLineError(await runScript(script, args, { MQTT_URL: broker.url }), line)
  })

  it.concurrent.each([device, listener])('%s names the URL it cannot reach and suggests npm run broker', async (script) => {
    const url = `mqtt://127.0.0.1:${await freePort()}`
    expectOneLineError(await runScript(script, ['--url', url]), new RegExp(`cannot reach the broker at ${url}.*npm run broker`))
  })

  it.concurrent.each([
    [device, ['--kind', '--node', '--object', '--name', '--state', '--prefix', '--base', '--url', '--id']],
    [listener, ['--topic', '--prefix', '--url', '--qos', '--id']],
  ])('%s --help explains every flag and exits 0', async (script, flags) => {
    const result = await runScript(script, ['--help'])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(new RegExp(`^usage: npx tsx ${script} \\[options\\]`))
    for (const flag of [...flags, '--help']) expect(result.stdout).toContain(flag)
  })
})
