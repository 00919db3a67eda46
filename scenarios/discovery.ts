// Home Assistant style discovery: devices announce themselves with retained configs on
// homeassistant/<component>/<node_id>/<object_id>/config, listeners find them with wildcard filters,
// even when they start late, and a Last Will tells them when a device drops off. Its programs,
// demos/discovery/, are a device (publisher.ts) and a listener that plays Home Assistant (subscriber.ts).
// Run directly (npm run demo:discovery) it is the show; test/ plays it as a check.
import { isMain } from '../lib/cli.ts'
import { DEFAULT_PREFIX } from '../lib/discovery.ts'
import { show } from './show.ts'
import type { Scenario } from './stage.ts'

const device = 'demos/discovery/publisher.ts'
const listener = 'demos/discovery/subscriber.ts'
// Any client can switch the light or remove a device: the publisher of the first experiment will do.
const publisher = 'demos/basic-pubsub/publisher.ts'

export const discovery: Scenario = {
  name: 'discovery',
  // The WebSocket listener serves the dashboard page's MQTT connection.
  needs: { listeners: ['ws'], dashboard: true },
  // Devices and listeners ride out a broker restart, retrying every second: longer than most.
  budget: 180,
  title: 'devices announce themselves with retained configs; listeners discover them by wildcard, even late, and see them drop off',
  async play(stage) {
    const prefix = stage.topic(DEFAULT_PREFIX)
    const base = stage.topic('home')
    // The demos' defaults; spelled out only when the stage shares a broker and prefixes every topic.
    const prefixArgs = prefix === DEFAULT_PREFIX ? [] : ['--prefix', prefix]
    const deviceArgs = base === 'home' ? prefixArgs : [...prefixArgs, '--base', base]
    const light = {
      config: `${prefix}/light/kitchen/light/config`,
      state: `${base}/kitchen/light`,
      command: `${base}/kitchen/light/set`,
      availability: `${base}/kitchen/light/availability`,
    }
    const sensor = {
      config: `${prefix}/sensor/living_room/temperature/config`,
      state: `${base}/living_room/temperature`,
      availability: `${base}/living_room/temperature/availability`,
    }
    for (const topic of [...Object.values(light), ...Object.values(sensor)]) {
      if (topic !== light.command) stage.retains(topic)
    }

    await stage.step(`Start a listener on ${prefix}/#, as Home Assistant does`)
    const first = stage.spawn('listener-1', listener, prefixArgs)
    await first.expect(`subscribed to ${prefix}/# (QoS 0)`, undefined, 'listener-1 is subscribed to every config topic, whatever its depth')
    if (stage.wsUrl) {
      stage.say('for the projector: the same discovery as a page, in the browser, over MQTT over WebSocket (docs/09-dashboard.md)')
      const page = stage.spawn('dashboard', 'demos/dashboard/server.ts', ['--url', stage.wsUrl, '--http-port', String(stage.dashboardPort), ...prefixArgs])
      await page.expect(/^dashboard on http:\/\/127\.0\.0\.1:\d+\/ /, undefined, 'open that address in a browser to watch the devices appear')
    }

    await stage.step('Start a kitchen light: it announces itself with a retained config')
    const lamp = stage.spawn('light', device, deviceArgs)
    await lamp.expect(`published its config to ${light.config} (retained)`, undefined,
      'the light set its will, published "online" and its state, then its config, all retained')
    await lamp.expect(`listening for ON and OFF on ${light.command}`, undefined, 'and it waits for commands')
    await first.expect('discovered light kitchen/light "Kitchen light"', 'C18',
      `listener-1 discovered the light from ${light.config}: component light, node kitchen, object light`)
    await first.expect('Kitchen light is online (retained)', undefined,
      'it subscribed to the availability topic named in the config, and got the retained "online"')
    await first.expect('Kitchen light state ON (retained)', undefined, 'and to the state topic, and got the retained state')

    await stage.step('Start a temperature sensor in the living room')
    const thermometer = stage.spawn('sensor', device, [...deviceArgs, '--kind', 'sensor', '--node', 'living_room'])
    await thermometer.expect(`published its config to ${sensor.config} (retained)`, undefined,
      'the sensor announced itself under the sensor component')
    await first.expect('discovered sensor living_room/temperature "Living room temperature"', 'C18',
      `the same filter ${prefix}/# found a sensor too: one subscription follows every component`)
    await first.expect('Living room temperature is online (retained)', undefined, 'the sensor is online')
    await first.expect('Living room temperature state 21.5 °C (retained)', undefined, 'with the unit its config gave')

    await stage.step(`Start a second listener, late, that follows lights only: ${prefix}/light/#`)
    const second = stage.spawn('listener-2', listener, [...prefixArgs, '--topic', `${prefix}/light/#`])
    await second.expect(`subscribed to ${prefix}/light/# (QoS 0)`, undefined, 'listener-2 is subscribed')
    await second.expect('discovered light kitchen/light "Kitchen light" (retained)', 'S8',
      'listener-2 started after the light announced itself and still discovered it: the config is retained')
    await second.expect('Kitchen light is online (retained)', undefined, 'it knows the light is online')
    await second.expect('Kitchen light state ON (retained)', undefined, 'and that it is on')
    await stage.barrier(`${prefix}/light/marker`, [second, first], 'C18',
      `listener-2 did not discover the sensor: ${prefix}/light/# follows one component`)

    await stage.step('Restart the broker: devices and listeners reconnect by themselves')
    if (!stage.canRestartBroker) {
      stage.say('not applicable here: the stage can restart only the bundled broker, not one given by MQTT_URL')
    } else {
      stage.say('the broker stops as a crash would, and starts again on the same port with nothing retained')
      await stage.restartBroker()
      await lamp.expect(`listening for ON and OFF on ${light.command}`, undefined,
        'the light reconnected, announced itself again and subscribed to its command topic again')
      await thermometer.expect(`published its config to ${sensor.config} (retained)`, undefined,
        'the sensor reconnected and announced itself again')
      for (const proc of [first, second]) {
        await proc.expect(/^subscribed to /, undefined, `${proc.label} reconnected and subscribed again; nothing it knew has changed, so it says no more`)
      }
    }

    await stage.step(`Switch the light off from another client: publish OFF to ${light.command}`)
    const off = await stage.run('switch', publisher, ['--topic', light.command, '--message', 'OFF'])
    await off.expect(`published "OFF" to ${light.command}`, undefined, 'the command is sent')
    await lamp.expect(`published "OFF" to ${light.state} (retained)`, undefined,
      'the light obeyed its command topic and published its new state')
    await first.expect('Kitchen light state OFF', undefined, 'listener-1 saw the light go off')
    await second.expect('Kitchen light state OFF', undefined, 'and so did listener-2')

    await stage.step('Pull the sensor\'s plug: kill it, so it cannot say goodbye')
    stage.say('SIGKILL: the sensor sends no DISCONNECT; the broker sees the connection drop and publishes its Last Will')
    await thermometer.stop('SIGKILL')
    await first.expect('Living room temperature is offline', 'S8',
      'the broker published the sensor\'s Last Will, and listener-1 shows it offline')

    await stage.step('Stop the light with Ctrl-C')
    await lamp.stop()
    await lamp.expect(`published "offline" to ${light.availability} (retained)`, undefined,
      'a clean DISCONNECT cancels the will, so the light said "offline" itself before leaving')
    await first.expect('Kitchen light is offline', undefined, 'listener-1 shows the light offline')
    await second.expect('Kitchen light is offline', undefined, 'and so does listener-2')

    await stage.step('Remove the sensor: publish an empty retained config on its config topic')
    await stage.run('remover', publisher, ['--topic', sensor.config, '--message', '', '--retain', '--qos', '1'])
    await first.expect('removed sensor living_room/temperature "Living room temperature"', undefined,
      'listener-1 forgot the sensor: an empty config means the device is gone')

    await stage.step(`Start a third listener on ${prefix}/#, as a Home Assistant that restarts would`)
    const third = stage.spawn('listener-3', listener, prefixArgs)
    await third.expect('discovered light kitchen/light "Kitchen light" (retained)', 'S8',
      'listener-3 discovered the light from its retained config')
    await third.expect('Kitchen light is offline (retained)', 'S8', 'and knows at once that it is offline: that is retained too')
    await third.expect('Kitchen light state OFF (retained)', undefined, 'and its last state')
    await stage.barrier(`${prefix}/sensor/marker`, [third, first], undefined,
      'listener-3 did not discover the sensor: the empty retained config deleted the old one from the broker')
  },
}

if (isMain(import.meta.url)) await show(discovery)
