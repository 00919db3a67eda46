// The article's subscriber: connect, subscribe to my_topic, print every message that arrives until Ctrl-C.
import { connect } from '../../lib/connect.ts'
import { subscriberOptions } from '../../lib/options.ts'

const options = subscriberOptions('Subscribe to a topic filter and print every message until Ctrl-C.', { topic: 'my_topic' })
const client = connect(options)

// Called when the broker answers the CONNECT with a CONNACK; return code 0 means accepted.
// Subscribing here, and not once at start, means a reconnect subscribes again.
client.on('connect', async (connack) => {
  console.log(`connected to ${options.url}, result code ${connack.returnCode}`)
  const [granted] = await client.subscribeAsync(options.topic, { qos: options.qos })
  console.log(`subscribed to ${granted.topic} (QoS ${granted.qos})`)
})

// Called for each PUBLISH the broker forwards. The RETAIN flag marks a stored message, not a live one.
client.on('message', (topic, payload, packet) => {
  console.log(`${topic} ${payload.length ? payload.toString() : '(empty)'}${packet.retain ? ' (retained)' : ''}`)
})
