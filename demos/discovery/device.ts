// A smart-home device that announces itself the way Home Assistant's MQTT discovery expects: a retained
// JSON config on <prefix>/<component>/<node_id>/<object_id>/config, a retained "online" on its
// availability topic, with a Last Will that has the broker say "offline" if the device drops off, and
// its state. A light also obeys ON and OFF on its command topic. Runs until Ctrl-C.
import { brokerUrl, connect } from '../../lib/connect.ts'
import { deviceOptions } from '../../lib/discovery-options.ts'
import { configTopic, type DiscoveryConfig } from '../../lib/discovery.ts'

const options = deviceOptions('Play a light or a sensor that announces itself for Home Assistant MQTT discovery, until Ctrl-C.')
const { kind, nodeId, objectId } = options
let state = options.state

const home = `${options.base}/${nodeId}/${objectId}`
const topics = {
  config: configTopic(options.prefix, { component: kind, nodeId, objectId }),
  state: home,
  command: `${home}/set`,
  availability: `${home}/availability`,
}

// What a listener needs to know to show and control the entity. unique_id lets Home Assistant keep the
// entity across restarts; device groups the entities of one device.
const config: DiscoveryConfig = {
  name: options.name,
  unique_id: `${nodeId}_${objectId}`,
  device: { identifiers: [nodeId], name: options.deviceName },
  state_topic: topics.state,
  availability_topic: topics.availability,
  payload_available: 'online',
  payload_not_available: 'offline',
  ...(kind === 'light'
    ? { command_topic: topics.command, payload_on: 'ON', payload_off: 'OFF' }
    : { device_class: 'temperature', unit_of_measurement: '°C' }),
}

// Everything is retained, so a listener that starts later still learns it. QoS 1 and one publish at a
// time: aedes can lose a live copy of a retained QoS 0 message followed at once by another publish.
const publish = (topic: string, payload: string) => client.publishAsync(topic, payload, { qos: 1, retain: true })

// The Last Will is handed over in CONNECT: if the connection drops without a DISCONNECT, the broker
// publishes it for us. A clean stop (Ctrl-C) sends DISCONNECT, which cancels the will, so then we say
// "offline" ourselves first.
const will = { topic: topics.availability, payload: Buffer.from('offline'), qos: 1 as const, retain: true }
// A device rides out a broker restart: it reconnects every second and announces itself again.
const client = connect(options, { will, reconnectPeriod: 1000 }, async () => {
  await publish(topics.availability, 'offline')
  console.log(`published "offline" to ${topics.availability} (retained) before disconnecting`)
})

client.on('connect', async (connack) => {
  console.log(`connected to ${brokerUrl(client)}, result code ${connack.returnCode}`)
  console.log(`last will: the broker publishes "offline" to ${topics.availability} (retained) if the connection drops`)
  await publish(topics.availability, 'online')
  console.log(`published "online" to ${topics.availability} (retained)`)
  await publish(topics.state, state)
  console.log(`state ${state}, published to ${topics.state} (retained)`)
  // The config goes last: whoever acts on it finds the availability and the state already there.
  await publish(topics.config, JSON.stringify(config))
  console.log(`announced ${kind} "${options.name}" at ${topics.config} (retained)`)
  if (kind === 'light') {
    await client.subscribeAsync(topics.command, { qos: 1 })
    console.log(`listening for ON and OFF on ${topics.command}`)
  }
})

// Only a light subscribes, so every message here is a command for it.
client.on('message', async (_topic, payload) => {
  const command = payload.toString()
  if (command !== config.payload_on && command !== config.payload_off) {
    console.log(`ignored command ${JSON.stringify(command)}: a light takes ON or OFF`)
    return
  }
  state = command
  await publish(topics.state, state)
  console.log(`command ${command} received, state ${state}, published to ${topics.state} (retained)`)
})
