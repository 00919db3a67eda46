// A light or a sensor that announces itself for Home Assistant's MQTT discovery, until Ctrl-C.
// All it publishes is retained: its availability, its state, then its config on
// <prefix>/<component>/<node_id>/<object_id>/config. A light obeys ON and OFF on its command topic.
import mqtt from 'mqtt'
import { deviceFlags } from '../../lib/discovery-options.ts'
import { announcement } from '../../lib/discovery.ts'
import { connackResult } from '../../lib/mqtt5.ts'
import { brokerUrl, reportProblems } from '../../lib/problems.ts'

const flags = deviceFlags({ prefix: 'homeassistant', base: 'home', kind: 'light', node: 'kitchen' })
const { topics, config } = announcement(flags)
let state = flags.state

// The Last Will goes with CONNECT: if the connection drops without a DISCONNECT, the broker
// publishes it. Like a real device it rides out a broker restart, trying again every second.
const will = { topic: topics.availability, payload: 'offline', qos: 1, retain: true } as const
const client = mqtt.connect(flags.url, { ...flags.connection, will, reconnectPeriod: 1000 })
reportProblems(client, flags.url)

client.on('connect', async (connack) => {
  console.log(`connected to ${brokerUrl(client, flags.url)}, ${connackResult(connack)}`)
  await publish(topics.availability, 'online')
  await publish(topics.state, state)
  // The config last: whoever reads it finds the availability and the state already there.
  await publish(topics.config, JSON.stringify(config), 'its config')
  if (!topics.command) return
  await client.subscribeAsync(topics.command, { qos: 1 })
  console.log(`listening for ON and OFF on ${topics.command}`)
})

// Only a light subscribes, so every message is a command for it: it takes ON and OFF.
client.on('message', async (_topic, payload) => {
  const command = payload.toString()
  if (command !== 'ON' && command !== 'OFF') return console.log(`ignored ${command}`)
  state = command
  await publish(topics.state, state)
})

// Retained, so a listener that starts later learns it too; QoS 1 and awaited: one at a time.
async function publish(topic: string, text: string, what = JSON.stringify(text)) {
  const options = { qos: 1, retain: true } as const
  await client.publishAsync(topic, text, options)
  console.log(`published ${what} to ${topic}${options.retain ? ' (retained)' : ''}`)
}

// Ctrl-C: a DISCONNECT cancels the will, so the device says "offline" itself first.
process.once('SIGINT', async () => {
  if (client.connected) await publish(topics.availability, 'offline')
  await client.endAsync()
})
