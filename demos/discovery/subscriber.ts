// A discovery listener that plays Home Assistant's part, until Ctrl-C.
// It connects with MQTT 5, subscribes to every config topic with one wildcard filter, says "online"
// on Home Assistant's status topic, and follows the availability and the state of each entity that
// a config announces. lib/discovery/home-assistant.ts checks each config and reads each message.
import mqtt from 'mqtt'
import { listenerFlags } from '../../lib/discovery/flags.ts'
import { statusTopic } from '../../lib/discovery/format.ts'
import { Discoveries } from '../../lib/discovery/home-assistant.ts'
import { brokerUrl, reportProblems } from '../../lib/problems.ts'

// What it does unless a flag says otherwise (--help lists them): the filter follows every config.
const flags = listenerFlags({ prefix: 'homeassistant', topic: 'homeassistant/#', qos: 0 })
const discovered = new Discoveries(flags.prefix, flags.topic)

// Home Assistant's birth and will: "online" once it has subscribed, and "offline", which the broker
// publishes when it is gone. Like Home Assistant it rides out a broker restart, trying again every
// second, and MQTT.js then subscribes again to every topic it had subscribed to.
const status = statusTopic(flags.prefix)
const will = { topic: status, payload: 'offline', qos: 0, retain: false } as const
const client = mqtt.connect(flags.url, {
  ...flags.connection, protocolVersion: 5, will, reconnectPeriod: 1000,
})
// A refused connection, or a refused subscription, ends the program with one line.
reportProblems(client, flags.url)

let subscribed = false
client.on('connect', (connack) => {
  // A client that keeps its session (clean: false) hears whether the broker had one for it.
  const present = connack.sessionPresent ? 'yes' : 'no'
  const kept = client.options.clean ? '' : `, session present: ${present}`
  // Of a list of brokers (--url a,b), the one it is on.
  const broker = brokerUrl(client, flags.url)
  console.log(`connected to ${broker}, result code ${connack.reasonCode}${kept}`)
  subscribed = false
  client.subscribe(flags.topic, { qos: flags.qos })
})

// The first SUBACK after connecting answers the subscription to the configs: now the birth message,
// so that the devices which answer it are heard.
client.on('packetreceive', (packet) => {
  if (packet.cmd !== 'suback' || subscribed) return
  subscribed = true
  console.log(`subscribed to ${flags.topic} (QoS ${packet.granted[0]})`)
  client.publish(status, 'online', { qos: 0, retain: false })
  console.log(`published "online" to ${status}, the birth message`)
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

// Ctrl-C: MQTT 5 lets a client leave with a DISCONNECT that still has the broker publish its will
// (reason code 4), as Home Assistant's "offline" goes out when it stops, too.
process.once('SIGINT', () => client.end(false, { reasonCode: 4 }))
