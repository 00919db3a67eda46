// MQTT 5's publisher: publish "on" to my_topic with the properties its flags give, then disconnect;
// given a response topic, it makes a request and waits for the reply.
import mqtt from 'mqtt'
import { fail } from '../../lib/cli.ts'
import { acknowledgement, connackResult, messageProperties } from '../../lib/mqtt5-print.ts'
import { mqtt5PublisherFlags } from '../../lib/mqtt5-flags.ts'
import { reportProblems } from '../../lib/problems.ts'

// The calls below say what it does; a flag replaces the value after its ?? (--help lists them).
const flags = mqtt5PublisherFlags()
const messages = flags.messages ?? ['on']

// protocolVersion: 5 is in flags.connection (and --auth-method's property, if given).
const client = mqtt.connect(flags.url, flags.connection)
// A refusal, of the connection or of a message, ends the program with one line and its reason code.
reportProblems(client, flags.url)

client.on('connect', async (connack) => {
  console.log(`connected to ${flags.url}, ${connackResult(connack)}`)
  // A request: listen on the response topic before asking, or the reply could come first.
  if (flags.responseTopic) await client.subscribeAsync(flags.responseTopic, { qos: 1 })
  // The properties travel in the PUBLISH, beside the payload; at QoS 1 a PUBACK says how it went.
  for (const message of messages) {
    await client.publishAsync(flags.topic ?? 'my_topic', message, {
      qos: flags.qos ?? 1,
      retain: flags.retain ?? false,
      properties: flags.properties,
    })
  }
  if (!flags.responseTopic) return client.endAsync()
  // No responder: say so after 5 s (unref: once the reply has come, this keeps nothing running).
  const noReply = `no reply on ${flags.responseTopic} within 5 s: is a responder running?`
  setTimeout(() => fail(noReply), 5000).unref()
})

// A reply, which the responder sent to our response topic with our correlation data.
let replies = 0
client.on('message', async (topic, payload, packet) => {
  console.log(`reply on ${topic}: ${payload}${messageProperties(packet)}`)
  if (++replies === messages.length) await client.endAsync()
})

// Printed from each PUBLISH packet as it leaves, and from each PUBACK, with its reason code.
client.on('packetsend', (packet) => {
  if (packet.cmd !== 'publish') return
  const retained = packet.retain ? ' (retained)' : ''
  const text = JSON.stringify(String(packet.payload))
  console.log(`published ${text} to ${packet.topic}${retained}${messageProperties(packet)}`)
})
client.on('packetreceive', (ack) => ack.cmd === 'puback' && console.log(acknowledgement(ack)))
