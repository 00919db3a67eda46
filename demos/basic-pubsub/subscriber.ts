// The article's subscriber: connect, subscribe to my_topic, print every message that arrives until Ctrl-C.
import { fail } from '../../lib/cli.ts'
import { brokerUrl, connect } from '../../lib/connect.ts'
import { subscriberOptions } from '../../lib/options.ts'

const options = subscriberOptions('Subscribe to a topic filter and print every message until Ctrl-C.', { topic: 'my_topic' })
const client = connect(options)

// Called when the broker answers the CONNECT with a CONNACK; return code 0 means accepted.
client.on('connect', (connack) => {
  // With --no-clean the broker keeps our session between connections; CONNACK says if it had one.
  const session = options.clean ? '' : `, session present: ${connack.sessionPresent ? 'yes' : 'no'}`
  console.log(`connected to ${brokerUrl(client)}, result code ${connack.returnCode}${session}`)
  client.subscribe(options.topic, { qos: options.qos })
})

// Called for each packet as it arrives; the broker answers SUBSCRIBE with a SUBACK, then sends the
// topic's retained message, if any (paho calls this on_subscribe). 128 means it refused.
client.on('packetreceive', (packet) => {
  if (packet.cmd !== 'suback') return
  if (packet.granted[0] === 128) fail(`the broker refused the subscription to ${options.topic}; check its access rules`)
  console.log(`subscribed to ${options.topic} (QoS ${packet.granted[0]})`)
})

// Called for each PUBLISH the broker forwards. The RETAIN flag marks a stored message, not a live one.
client.on('message', (topic, payload, packet) => {
  console.log(`${topic} ${payload.length ? payload.toString() : '(empty)'}${packet.retain ? ' (retained)' : ''}`)
})
