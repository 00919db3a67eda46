// A device that announces itself for Home Assistant's MQTT discovery, until Ctrl-C: a light and a
// thermometer in one retained config on <prefix>/device/<node>/config, or with --per-component one
// config each on <prefix>/<platform>/<node>/<component>/config, the article's form. The light obeys
// the payloads its config names, and it announces itself again when Home Assistant restarts.
import mqtt from 'mqtt'
import { announcement } from '../../lib/discovery/device.ts'
import { deviceFlags } from '../../lib/discovery/flags.ts'
import { connackResult } from '../../lib/mqtt5-print.ts'
import { brokerUrl, reportProblems } from '../../lib/problems.ts'

const flags = deviceFlags({
  prefix: 'homeassistant', base: 'home', node: 'kitchen', components: ['light', 'temperature'],
})
const { availability, status, light, states, removal, configs } = announcement(flags)

// The Last Will goes with CONNECT: if the connection drops without a DISCONNECT, the broker
// publishes it. Like a real device it rides out a broker restart, trying again every second.
const will = { topic: availability, payload: 'offline', qos: 1, retain: true } as const
const client = mqtt.connect(flags.url, { ...flags.connection, will, reconnectPeriod: 1000 })
reportProblems(client, flags.url)

client.on('connect', async (connack) => {
  console.log(`connected to ${brokerUrl(client, flags.url)}, ${connackResult(connack)}`)
  await publish(availability, 'online')
  for (const [topic, state] of states) await publish(topic, state)
  // A component it no longer has is removed once, before the configs without it.
  for (const { topic, payload, what } of removal.splice(0)) await publish(topic, payload, what)
  // The configs last: whoever reads them finds the availability and the states already there.
  for (const [topic, config] of configs) await publish(topic, config, 'its config')
  await client.subscribeAsync([...(light ? [light.commandTopic] : []), status], { qos: 1 })
  if (light) console.log(`listening for ${light.on} and ${light.off} on ${light.commandTopic}`)
  console.log(`listening for Home Assistant on ${status}`)
})

let announcing = false
client.on('message', async (topic, payload) => {
  const text = payload.toString()
  if (topic === status) return homeAssistant(text)
  // Otherwise a command for the light: it takes the two payloads its config names.
  if (text !== light!.on && text !== light!.off) return console.log(`ignored ${text}`)
  states.set(light!.stateTopic, text)
  await publish(light!.stateTopic, text)
})

// Home Assistant says "online" when it starts: announce again, after a short random delay (so
// that a house of devices does not answer at once; up to half a second here), the configs first,
// then the states, as the docs ask. One announcement at a time.
async function homeAssistant(text: string) {
  if (text === 'offline') console.log(`Home Assistant is offline (${status})`)
  if (text !== 'online' || announcing) return
  announcing = true
  await new Promise((done) => setTimeout(done, Math.random() * 500))
  for (const [topic, text] of [...configs, [availability, 'online'], ...states]) {
    await client.publishAsync(topic, text, { qos: 1, retain: true })
  }
  announcing = false
  console.log(`Home Assistant is online (${status}): announced again`)
}

// Retained, so a listener that starts later learns it too; QoS 1 and awaited: one at a time.
async function publish(topic: string, text: string, what = JSON.stringify(text)) {
  const options = { qos: 1, retain: true } as const
  await client.publishAsync(topic, text, options)
  console.log(`published ${what} to ${topic}${options.retain ? ' (retained)' : ''}`)
}

// Ctrl-C: a DISCONNECT cancels the will, so the device says "offline" itself first.
process.once('SIGINT', async () => {
  if (client.connected) await publish(availability, 'offline')
  await client.endAsync()
})
