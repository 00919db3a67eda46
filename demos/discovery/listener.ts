// A discovery listener, what Home Assistant does with MQTT discovery: subscribe to the config topics
// with a wildcard filter, and for every device that announces itself there, follow its availability
// and its state. An empty config means the device was removed. Runs until Ctrl-C.
import { fail } from '../../lib/cli.ts'
import { brokerUrl, connect } from '../../lib/connect.ts'
import { listenerOptions } from '../../lib/discovery-options.ts'
import { entityPath, parseConfig, parseConfigTopic, type Entity } from '../../lib/discovery.ts'
import { topicMatches } from '../../lib/topics.ts'

const options = listenerOptions('Discover Home Assistant style devices from their retained configs and follow them, until Ctrl-C.')
// Like Home Assistant, it rides out a broker restart: it reconnects every second, and MQTT.js
// subscribes again to every topic it had subscribed to.
const client = connect(options, { reconnectPeriod: 1000 })

/** What this listener has discovered, by config topic. */
const entities = new Map<string, Entity>()
/** The last payload seen on each state and availability topic followed. */
const lastSeen = new Map<string, string>()

client.on('connect', (connack) => {
  console.log(`connected to ${brokerUrl(client)}, result code ${connack.returnCode}`)
  subscribed = false
  client.subscribe(options.topic, { qos: options.qos })
})

// The first SUBACK after connecting answers the subscription to the config topics. Seen as the packet
// arrives, it is printed before the retained configs that follow it. 128 means the broker refused.
let subscribed = false
client.on('packetreceive', (packet) => {
  if (packet.cmd !== 'suback' || subscribed) return
  subscribed = true
  if (packet.granted[0] === 128) fail(`the broker refused the subscription to ${options.topic}; check its access rules`)
  console.log(`subscribed to ${options.topic} (QoS ${packet.granted[0]})`)
})

// One message at a time: discovering an entity subscribes to its topics, and what arrives meanwhile
// waits its turn, so it is printed after the entity it belongs to.
let queue = Promise.resolve()
client.on('message', (topic, payload, packet) => {
  const retained = packet.retain ? ' (retained)' : ''
  queue = queue.then(() => handle(topic, payload.toString(), retained))
})

async function handle(topic: string, payload: string, retained: string): Promise<void> {
  const followed = [...entities.values()]
  const stateOf = followed.filter((e) => e.stateTopic === topic)
  const availabilityOf = followed.flatMap((e) => e.availability.filter((a) => a.topic === topic).map((a) => ({ e, a })))
  if (stateOf.length > 0 || availabilityOf.length > 0) {
    // An empty payload clears a retained state; it is not a state. And what has not changed is no news:
    // a device that reconnects says "online" and its state again.
    if (payload === '' || lastSeen.get(topic) === payload) return
    lastSeen.set(topic, payload)
    for (const e of stateOf) console.log(`${e.name} state ${payload}${e.unit ? ` ${e.unit}` : ''}${retained}`)
    for (const { e, a } of availabilityOf) {
      const said = payload === a.online ? 'online' : payload === a.offline ? 'offline' : undefined
      console.log(said ? `${e.name} is ${said}${retained}`
        : `${e.name} sent ${JSON.stringify(payload)} on ${topic}, neither ${JSON.stringify(a.online)} nor ${JSON.stringify(a.offline)}`)
    }
    return
  }

  const at = parseConfigTopic(options.prefix, topic)
  if (at === undefined) {
    // Under the filter but not a config (Home Assistant's own homeassistant/status, say): print it as is.
    console.log(`${topic} ${payload === '' ? '(empty)' : payload}${retained}`)
    return
  }
  if ('problem' in at) return console.log(`ignored ${topic}: ${at.problem}`)

  const known = entities.get(topic)
  if (payload === '') {
    // An empty retained message on a config topic is how a device is removed.
    if (!known) return console.log(`ignored ${topic}: an empty config, but nothing was discovered there`)
    await forget(topic)
    return console.log(`removed ${known.component} ${entityPath(known)} "${known.name}"`)
  }
  const config = parseConfig(at.value, payload)
  if ('problem' in config) return console.log(`ignored ${topic}: ${config.problem}`)
  const entity = config.value
  if (known && JSON.stringify(known) === JSON.stringify(entity)) return
  const twin = [...entities.entries()].find(([t, e]) => t !== topic && e.uniqueId === entity.uniqueId)
  if (twin) return console.log(`ignored ${topic}: unique_id ${JSON.stringify(entity.uniqueId)} is already used by ${twin[0]}`)

  if (known) await forget(topic)
  entities.set(topic, entity)
  console.log(`${known ? 'updated' : 'discovered'} ${entity.component} ${entityPath(entity)} "${entity.name}"${retained}`)
  // Availability first, then state: each subscription brings the retained message of its topic.
  for (const t of topicsOf(entity)) {
    if (users(t) === 1 && !topicMatches(options.topic, t)) await client.subscribeAsync(t, { qos: options.qos })
  }
}

/** Stop following an entity, and unsubscribe from its topics that no other entity uses. */
async function forget(configTopic: string): Promise<void> {
  const entity = entities.get(configTopic)!
  entities.delete(configTopic)
  for (const t of topicsOf(entity)) {
    if (users(t) > 0) continue
    lastSeen.delete(t)
    if (!topicMatches(options.topic, t)) await client.unsubscribeAsync(t)
  }
}

/** The topics an entity reports on: availability first, then state. */
function topicsOf(entity: Entity): Set<string> {
  return new Set([...entity.availability.map((a) => a.topic), entity.stateTopic])
}

/** How many followed entities read `topic`. */
function users(topic: string): number {
  return [...entities.values()].filter((e) => e.stateTopic === topic || e.availability.some((a) => a.topic === topic)).length
}
