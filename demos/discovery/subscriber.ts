// A discovery listener that does Home Assistant's part, until Ctrl-C: it subscribes to every config
// topic with one wildcard filter, and follows the availability and the state of each entity that a
// config announces. lib/discovery.ts checks each config and says what a message means.
import mqtt from 'mqtt'
import { listenerFlags } from '../../lib/discovery-options.ts'
import { Discoveries } from '../../lib/discovery.ts'
import { reportProblems } from '../../lib/problems.ts'

const flags = listenerFlags({ prefix: 'homeassistant', topic: 'homeassistant/#', qos: 0 })
const discovered = new Discoveries(flags.prefix, flags.topic)

// Like Home Assistant it rides out a broker restart: it tries again every second, and MQTT.js then
// subscribes again to every topic it had subscribed to.
const client = mqtt.connect(flags.url, { ...flags.connection, reconnectPeriod: 1000 })
reportProblems(client, flags.url)

let subscribed = false
client.on('connect', (connack) => {
  console.log(`connected to ${flags.url}, result code ${connack.returnCode}`)
  subscribed = false
  client.subscribe(flags.topic, { qos: flags.qos })
})

// The first SUBACK after connecting answers the subscription to the configs.
client.on('packetreceive', (packet) => {
  if (packet.cmd !== 'suback' || subscribed) return
  subscribed = true
  console.log(`subscribed to ${flags.topic} (QoS ${packet.granted[0]})`)
})

// One message at a time: what arrives while an entity's topics are being followed waits its turn.
let queue = Promise.resolve()
client.on('message', (topic, payload, packet) => {
  queue = queue.then(async () => {
    const news = discovered.read(topic, payload.toString(), packet.retain)
    for (const unused of news.unfollow) await client.unsubscribeAsync(unused)
    for (const line of news.lines) console.log(line)
    for (const followed of news.follow) await client.subscribeAsync(followed, { qos: flags.qos })
  })
})

// Ctrl-C: say goodbye with a DISCONNECT.
process.once('SIGINT', () => client.end())
