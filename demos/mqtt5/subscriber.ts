// MQTT 5's subscriber: subscribe to my_topic with the options its flags give and print each message
// with its properties until Ctrl-C; it can also answer requests, publish, and leave a delayed will.
import mqtt from 'mqtt'
import { connackResult, messageProperties } from '../../lib/mqtt5-print.ts'
import { mqtt5SubscriberFlags } from '../../lib/mqtt5-flags.ts'
import { reportProblems } from '../../lib/problems.ts'

// The calls below say what it does; a flag replaces the value after its ?? (--help lists them).
const flags = mqtt5SubscriberFlags()

// In flags.connection: protocolVersion 5, Clean Start (--no-clean clears it), the Session Expiry
// Interval (--session-expiry), a will and its Will Delay Interval (--will-topic, --will-delay).
// Topic Alias Maximum: how many topics the broker may replace by a two-byte alias (0: none).
const properties = { ...flags.connection.properties, topicAliasMaximum: flags.topicAliases ?? 0 }
const client = mqtt.connect(flags.url, { ...flags.connection, properties })
// A refused or lost connection, or a refused subscription, ends the program with its reason code.
reportProblems(client, flags.url)

client.on('connect', (connack) => {
  const present = connack.sessionPresent ? 'yes' : 'no'
  console.log(`connected to ${flags.url}, ${connackResult(connack)}, session present: ${present}`)
  // MQTT 5's subscription options: retain handling (rh), retain as published (rap), no local (nl).
  const { retainHandling: rh, retainAsPublished: rap, noLocal: nl } = flags
  client.subscribe(flags.topic ?? 'my_topic', { qos: flags.qos ?? 1, rh, rap, nl })
})

let filter = '' // a SUBACK names no filter: the SUBSCRIBE did, as it left
client.on('packetsend', (out) => out.cmd === 'subscribe' && (filter = out.subscriptions[0].topic))
client.on('packetreceive', async (packet) => {
  if (packet.cmd !== 'suback') return
  console.log(`subscribed to ${filter} (QoS ${packet.granted[0]})`)
  // --publish: a message of its own, which --no-local keeps from coming back to it.
  if (!flags.publish) return
  await client.publishAsync(flags.publish.topic, flags.publish.message, { qos: 1 })
  console.log(`published ${JSON.stringify(flags.publish.message)} to ${flags.publish.topic}`)
})

client.on('message', async (topic, payload, packet) => {
  const text = payload.length > 0 ? payload.toString() : '(empty)'
  console.log(`${topic} ${text}${packet.retain ? ' (retained)' : ''}${messageProperties(packet)}`)
  // A request says where to answer; the answer takes its correlation data back (--answer).
  const { responseTopic, correlationData } = packet.properties ?? {}
  if (flags.answer === undefined || !responseTopic) return
  const properties = { correlationData }
  await client.publishAsync(responseTopic, flags.answer, { qos: 1, properties })
  console.log(`answered ${JSON.stringify(flags.answer)} on ${responseTopic}`)
})

// Ctrl-C: a DISCONNECT, which cancels the will; the session stays for its expiry interval.
process.once('SIGINT', () => client.end())
