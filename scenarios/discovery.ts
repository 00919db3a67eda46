// Home Assistant's MQTT discovery as it is done in 2026: a device announces all its entities in one
// retained device config on homeassistant/device/<object_id>/config, an older one announces each
// entity on homeassistant/<component>/<node_id>/<object_id>/config (the article's form), listeners
// find both with wildcard filters, even when they start late, a Last Will tells them when a device
// drops off, and when Home Assistant restarts its birth message has the devices announce themselves
// again. Its programs, demos/discovery/, are a device (publisher.ts) and a listener that plays Home
// Assistant (subscriber.ts). Run directly (npm run demo:discovery) it is the show; test/ plays it
// as a check.
import { isMain } from '../lib/cli.ts'
import { DEFAULT_PREFIX, statusTopic } from '../lib/discovery/format.ts'
import { show } from './stage/show.ts'
import type { Scenario } from './stage/stage.ts'

const device = 'demos/discovery/publisher.ts'
const listener = 'demos/discovery/subscriber.ts'
// Any client can switch the light or remove a device: the publisher of the first experiment will
// do.
const publisher = 'demos/basic-pubsub/publisher.ts'

export const discovery: Scenario = {
  name: 'discovery',
  steps: 12,
  // The WebSocket listener serves the dashboard page's MQTT connection.
  needs: { listeners: ['ws'] },
  // Devices announce themselves again up to half a second after a birth message, twice in the play.
  budget: 150,
  title:
    'devices announce themselves with retained configs, one for a whole device or one per ' +
    'entity; listeners discover them by wildcard, even late, see them drop off, and have them ' +
    'announce again when Home Assistant restarts',
  async play(stage) {
    const prefix = stage.topic(DEFAULT_PREFIX)
    const base = stage.topic('home')
    const status = statusTopic(prefix)
    // The demos' defaults; spelled out only when the stage shares a broker and prefixes every
    // topic.
    const prefixArgs = prefix === DEFAULT_PREFIX ? [] : ['--prefix', prefix]
    const deviceArgs = base === 'home' ? prefixArgs : [...prefixArgs, '--base', base]
    const kitchen = {
      config: `${prefix}/device/kitchen/config`,
      availability: `${base}/kitchen/availability`,
      light: `${base}/kitchen/light`,
      command: `${base}/kitchen/light/set`,
      temperature: `${base}/kitchen/temperature`,
    }
    const livingRoom = {
      config: `${prefix}/sensor/living_room/temperature/config`,
      availability: `${base}/living_room/availability`,
      temperature: `${base}/living_room/temperature`,
    }
    for (const topic of [...Object.values(kitchen), ...Object.values(livingRoom)]) {
      if (topic !== kitchen.command) stage.retains(topic)
    }
    const birth = `published "online" to ${status}, the birth message`
    const answered = `Home Assistant is online (${status}): announced again`

    await stage.step(`Start a listener on ${prefix}/#, as Home Assistant does`)
    const first = stage.spawn('listener-1', listener, prefixArgs)
    await first.expect(`subscribed to ${prefix}/# (QoS 0)`, {
      says:
        'listener-1 connected with MQTT 5 and a will, "offline" ' +
        'on its status topic, and subscribed to every config topic',
    })
    await first.expect(birth, {
      says: 'then it said "online" there: Home Assistant\'s birth message',
    })
    if (stage.wsUrl) {
      stage.say(
        'for the projector: the same discovery as cards, in the browser, over MQTT over ' +
          'WebSocket (docs/09-dashboard.md), one link away from the stage view',
      )
      const page = stage.spawn('dashboard', 'demos/dashboard/server.ts', [
        '--url',
        stage.wsUrl,
        '--http-port',
        '0',
        ...prefixArgs,
      ])
      const served = /^dashboard on (http:\/\/127\.0\.0\.1:\d+\/) /
      await page.expect(served, {
        says: 'open that address, or its link on the stage view, to watch the devices appear',
      })
      const line = stage.events.findLast((e) => e.kind === 'line' && e.label === 'dashboard')
      const url = line?.kind === 'line' ? line.text.match(served)?.[1] : undefined
      if (url) stage.options.onPage?.('Device cards', url)
    }

    await stage.step('Start the kitchen: a light and a thermometer in one device config')
    const lamp = stage.spawn('kitchen', device, deviceArgs)
    await lamp.until(`published its config to ${kitchen.config} (retained)`)
    await lamp.expect(`listening for Home Assistant on ${status}`, {
      says:
        'the kitchen set its will, published "online", its two states and one config for both, ' +
        'all retained, and listens for commands and for Home Assistant',
    })
    await first.expectAll(
      [
        'discovered device kitchen "Kitchen" from mqtt-by-example 0.1.0',
        'discovered light kitchen/light "Kitchen light"',
        'discovered sensor kitchen/temperature "Kitchen temperature"',
        'Kitchen light is online (retained)',
        'Kitchen temperature is online (retained)',
        'Kitchen light state ON (retained)',
        'Kitchen temperature state 21.5 °C (retained)',
      ],
      {
        says:
          'listener-1 read the device config: the device, its origin, its two entities under ' +
          '"cmps", their one availability topic and their retained states',
      },
    )

    await stage.step(
      "Start a living-room thermometer that announces itself the older way, the article's",
    )
    const thermometer = stage.spawn('sensor', device, [
      ...deviceArgs,
      '--node',
      'living_room',
      '--components',
      'temperature',
      '--per-component',
    ])
    await thermometer.expect(`published its config to ${livingRoom.config} (retained)`, {
      says:
        'one config for its one entity, on a topic that ' +
        'names the component, the node and the object',
    })
    await thermometer.until(`listening for Home Assistant on ${status}`)
    await first.expect('discovered sensor living_room/temperature "Living room temperature"', {
      claim: 'C18',
      says:
        `listener-1 discovered it from ${livingRoom.config}: ` +
        `component sensor, node living_room, object temperature`,
    })
    await first.expect('Living room temperature is online (retained)', { says: 'it is online' })
    await first.expect('Living room temperature state 21.5 °C (retained)', {
      says: 'with the unit its config gave',
    })

    await stage.step(`Start a second listener, late, that follows sensors only: ${prefix}/sensor/#`)
    const second = stage.spawn('listener-2', listener, [
      ...prefixArgs,
      '--topic',
      `${prefix}/sensor/#`,
    ])
    await second.expect(`subscribed to ${prefix}/sensor/# (QoS 0)`, {
      says: 'listener-2 is subscribed',
    })
    await second.expect(
      'discovered sensor living_room/temperature "Living room temperature" (retained)',
      {
        claim: 'S8',
        says:
          'listener-2 started after the thermometer announced ' +
          'itself and still discovered it: the config is retained',
      },
    )
    await second.expectAll(
      [
        'Living room temperature is online (retained)',
        'Living room temperature state 21.5 °C (retained)',
      ],
      { says: 'it knows the thermometer is online, and what it measures' },
    )
    await lamp.until(answered)
    await thermometer.expect(answered, {
      says:
        "listener-2's birth message reached both devices, " +
        'which announced themselves again a moment later',
    })
    await stage.barrier(`${prefix}/sensor/marker`, [second, first], {
      claim: 'C18',
      says:
        `listener-2 did not discover the kitchen's thermometer: that is in a device config, ` +
        `not on ${prefix}/sensor/...; and listener-1 heard nothing new`,
    })

    await stage.step('Stop the kitchen with Ctrl-C')
    await lamp.stop()
    await first.expectAll(['Kitchen light is offline', 'Kitchen temperature is offline'], {
      says: 'a clean stop: the kitchen said "offline" itself',
    })

    await stage.step('Start the kitchen again without its thermometer: --drop temperature')
    const lamp2 = stage.spawn('kitchen', device, [...deviceArgs, '--drop', 'temperature'])
    await lamp2.expect(
      `published its config with "temperature": {"p": "sensor"} to ${kitchen.config} (retained)`,
      { says: 'first a config with the thermometer reduced to its platform' },
    )
    await lamp2.expect(`published its config to ${kitchen.config} (retained)`, {
      says: 'then without it, and cleared its retained state',
    })
    await lamp2.until(`listening for Home Assistant on ${status}`)
    await first.expectAll(['Kitchen light is online', 'Kitchen temperature is online'], {
      says: 'listener-1 saw the kitchen come back',
    })
    await first.expect('removed sensor kitchen/temperature "Kitchen temperature"', {
      says:
        'and removed the thermometer alone: {"p": "sensor"} ' +
        'is how a device config removes one component',
    })

    await stage.step(`Switch the light off from another client: publish OFF to ${kitchen.command}`)
    const off = await stage.run('switch', publisher, [
      '--topic',
      kitchen.command,
      '--message',
      'OFF',
    ])
    await off.expect(`published "OFF" to ${kitchen.command}`, { says: 'the command is sent' })
    await lamp2.expect(`published "OFF" to ${kitchen.light} (retained)`, {
      says: 'OFF is the payload_off of its config: the light obeyed and published its new state',
    })
    await first.expect('Kitchen light state OFF', { says: 'listener-1 saw the light go off' })

    await stage.step("Pull the thermometer's plug: kill it, so it cannot say goodbye")
    stage.say(
      'SIGKILL: the thermometer sends no DISCONNECT; the broker sees the connection drop and ' +
        'publishes its Last Will',
    )
    await thermometer.stop('SIGKILL')
    await first.expect('Living room temperature is offline', {
      claim: 'S8',
      says: "the broker published the thermometer's Last Will, and listener-1 shows it offline",
    })
    await second.expect('Living room temperature is offline', { says: 'and so does listener-2' })

    await stage.step('Remove the thermometer: publish an empty retained config on its config topic')
    await stage.run('remover', publisher, [
      '--topic',
      livingRoom.config,
      '--message',
      '',
      '--retain',
      '--qos',
      '1',
    ])
    await first.until('removed sensor living_room/temperature "Living room temperature"')
    await second.expect('removed sensor living_room/temperature "Living room temperature"', {
      says: 'both listeners forgot it: an empty config removes what was announced there',
    })

    await stage.step('Restart Home Assistant: stop listener-1 with Ctrl-C')
    await first.stop()
    await lamp2.expect(`Home Assistant is offline (${status})`, {
      says:
        'listener-1 left with a DISCONNECT that keeps its will (MQTT 5, ' +
        'reason code 4): the kitchen heard "offline"',
    })

    await stage.step('Start a new listener, listener-3, as Home Assistant does when it is back')
    const third = stage.spawn('listener-3', listener, prefixArgs)
    await third.expect(birth, { says: 'listener-3 subscribed, and said "online"' })
    await third.expect(
      'discovered device kitchen "Kitchen" from mqtt-by-example 0.1.0 (retained)',
      { claim: 'S8', says: 'it discovered the kitchen from its retained config' },
    )
    await third.expect('discovered light kitchen/light "Kitchen light" (retained)', {
      says: 'with the light alone',
    })
    await third.expect('Kitchen light is online (retained)', {
      says: 'and learned its availability',
    })
    await third.expect('Kitchen light state OFF (retained)', {
      says: 'and its state from retained messages too',
    })
    await lamp2.expect(answered, {
      says: 'the kitchen answered the birth message: its config, then its states, again',
    })
    await stage.barrier(`${prefix}/sensor/marker`, [third], {
      says:
        'listener-3 did not discover the thermometer: ' +
        'the empty retained config deleted the old one from the broker',
    })

    await stage.step(
      'Remove the kitchen: stop it, then publish an empty retained config on its device config ' +
        'topic',
    )
    await lamp2.stop()
    await third.expect('Kitchen light is offline', {
      says: 'the kitchen said "offline" as it left',
    })
    await stage.run('remover', publisher, [
      '--topic',
      kitchen.config,
      '--message',
      '',
      '--retain',
      '--qos',
      '1',
    ])
    await third.expect('removed light kitchen/light "Kitchen light"', {
      says: 'an empty device config removes every entity of the device',
    })
    await third.expect('removed device kitchen "Kitchen"', { says: 'and the device itself' })
  },
}

if (isMain(import.meta.url)) await show(discovery)
