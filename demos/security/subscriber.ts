// A subscriber that proves who it is: as alice, with a password, over TLS when the URL is mqtts://.
import mqtt from 'mqtt'
import { connackResult, messageProperties } from '../../lib/mqtt5-print.ts'
import { subscriberFlags } from '../../lib/demo-flags.ts'
import { reportProblems } from '../../lib/problems.ts'

// The calls below say what it does; a flag replaces the value after its ?? (--help lists them).
const flags = subscriberFlags()

const client = mqtt.connect(flags.url, {
  ...flags.connection,
  // Who we are. The password comes from --password or MQTT_PASSWORD, never from the source.
  username: flags.username ?? 'alice',
  password: flags.password,
  // Over mqtts://: the CA that signed the broker's certificate, and our own certificate, if any.
  ca: flags.ca,
  cert: flags.cert,
  key: flags.key,
})
// A refused or lost connection, or a refused subscription, ends the program with one line.
reportProblems(client, flags.url)

// Called when the broker answers the CONNECT with a CONNACK; code 0 means accepted.
client.on('connect', (connack) => {
  // A client that keeps its session (clean: false) hears whether the broker had one for it.
  const present = connack.sessionPresent ? 'yes' : 'no'
  const kept = client.options.clean ? '' : `, session present: ${present}`
  console.log(`connected to ${flags.url}, ${connackResult(connack)}${kept}`)
  client.subscribe(flags.topic ?? 'users/alice/#', { qos: flags.qos ?? 0 })
})

// The broker's SUBACK, seen as it arrives: before a retained message that follows it. It names
// no filter; the SUBSCRIBE did, as it left.
let filter = ''
client.on('packetsend', (packet) => {
  if (packet.cmd === 'subscribe') filter = packet.subscriptions[0].topic
})
client.on('packetreceive', (packet) => {
  if (packet.cmd === 'suback') console.log(`subscribed to ${filter} (QoS ${packet.granted[0]})`)
})

// Called for each PUBLISH the broker forwards: RETAIN marks a stored message; -V 5 adds properties.
client.on('message', (topic, payload, packet) => {
  const text = payload.length > 0 ? payload.toString() : '(empty)'
  console.log(`${topic} ${text}${packet.retain ? ' (retained)' : ''}${messageProperties(packet)}`)
})

// Ctrl-C: say goodbye with a DISCONNECT, so the broker knows we left on purpose.
process.once('SIGINT', () => client.end())
