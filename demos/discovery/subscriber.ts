// A discovery listener that does Home Assistant's part, until Ctrl-C.
// It subscribes to every config topic with one wildcard filter, and follows the availability and
// the state of each entity that a config announces. lib/discovery.ts checks each config and says
// what a message means.
import mqtt from 'mqtt'
import { listenerFlags } from '../../lib/discovery-options.ts'
import { Discoveries } from '../../lib/discovery.ts'
import { connackResult } from '../../lib/mqtt5.ts'
import { brokerUrl, reportProblems } from '../../lib/problems.ts'

// What it does unless a flag says otherwise (--help lists them): the filter follows every config.
const flags = listenerFlags({ prefix: 'homeassistant', topic: 'homeassistant/#', qos: 0 })
const discovered = new Discoveries(flags.prefix, flags.topic)

// Like Home Assistant it rides out a broker restart: it tries again every second, and MQTT.js then
// subscribes again to every topic it had subscribed to.
const client = mqtt.connect(flags.url, { ...flags.connection, reconnectPeriod: 1000 })
// A refused connection, or a refused subscription, ends the program with one line.
reportProblems(client, flags.url)

let subscribed = false
client.on('connect', (connack) => {
  // A client that keeps its session (clean: false) hears whether the broker had one for it.
  const present = connack.sessionPresent ? 'yes' : 'no'
  const kept = client.options.clean ? '' : `, session present: ${present}`
  // Of a list of brokers (--url a,b), the one it is on.
  const broker = brokerUrl(client, flags.url)
  console.log(`connected to ${broker}, ${connackResult(connack)}${kept}`)
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

// Ctrl-C: say goodbye with a DISCONNECT, so the broker knows we left on purpose.
process.once('SIGINT', () => client.end())
