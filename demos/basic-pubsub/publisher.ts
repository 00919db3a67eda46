// The article's publisher: connect to the broker, publish "on" to my_topic, disconnect.
import { brokerUrl, connect, disconnect } from '../../lib/connect.ts'
import { publisherOptions } from '../../lib/options.ts'

const options = publisherOptions('Publish a message to a topic, then disconnect.', { topic: 'my_topic', message: 'on' })
const client = connect(options)

client.on('connect', async (connack) => {
  console.log(`connected to ${brokerUrl(client)}, result code ${connack.returnCode}`)
  // With QoS 1 or 2, publishAsync resolves once the broker has acknowledged the message.
  for (const message of options.messages) {
    await client.publishAsync(options.topic, message, { qos: options.qos, retain: options.retain })
    console.log(`published ${JSON.stringify(message)} to ${options.topic}${options.retain ? ' (retained)' : ''}`)
  }
  await disconnect(client)
})
