// A discovery listener that plays Home Assistant's part, until Ctrl-C.
// It follows what each config announces; lib/discovery/home-assistant.ts reads every message.
import mqtt from 'mqtt'
import { listenerFlags } from '../../lib/discovery/flags.ts'
import { statusTopic } from '../../lib/discovery/format.ts'
import { Discoveries } from '../../lib/discovery/home-assistant.ts'
import { brokerUrl, reportProblems } from '../../lib/problems.ts'

// The calls below say what it does; a flag replaces the value after its ?? (--help lists them).
const flags = listenerFlags()
const status = statusTopic(flags.prefix)
const qos = flags.qos ?? 0
let discovered: Discoveries
// MQTT 5, as Home Assistant speaks, and its will: "offline", which the broker publishes when it is
// gone. It rides out a broker restart, trying again every second; MQTT.js then subscribes again.
const client = mqtt.connect(flags.url, {
  ...flags.connection,
  protocolVersion: 5,
  will: { topic: status, payload: 'offline', qos: 0, retain: false },
  reconnectPeriod: 1000,
})
// A refused connection, or a refused subscription, ends the program with one line.
reportProblems(client, flags.url)

// One thing at a time: what arrives while an entity's topics are being followed waits its turn.
let queue = Promise.resolve()
client.on('connect', (connack) => {
  const present = connack.sessionPresent ? 'yes' : 'no'
  const kept = client.options.clean ? '' : `, session present: ${present}`
  const broker = brokerUrl(client, flags.url)
  console.log(`connected to ${broker}, result code ${connack.reasonCode}${kept}`)
  // Every config with one wildcard filter; once granted, the birth message, for devices to answer.
  queue = queue.then(async () => {
    const [granted] = await client.subscribeAsync(flags.topic ?? 'homeassistant/#', { qos })
    console.log(`subscribed to ${granted.topic} (QoS ${granted.qos})`)
    discovered ??= new Discoveries(flags.prefix, granted.topic)
    client.publish(status, 'online', { qos: 0, retain: false })
    console.log(`published "online" to ${status}, the birth message`)
  })
})
client.on('message', (topic, payload, packet) => {
  queue = queue.then(async () => {
    const news = discovered.read(topic, payload.toString(), packet.retain)
    for (const unused of news.unfollow) await client.unsubscribeAsync(unused)
    for (const line of news.lines) console.log(line)
    for (const next of news.follow) await client.subscribeAsync(next, { qos })
  })
})
// Ctrl-C: MQTT 5's DISCONNECT with reason code 4 has the broker publish the will all the same.
process.once('SIGINT', () => client.end(false, { reasonCode: 4 }))
