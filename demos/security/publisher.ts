// A publisher that proves who it is: as alice, with a password, over TLS when the URL is mqtts://.
import mqtt from 'mqtt'
import { acknowledgement, connackResult } from '../../lib/mqtt5-print.ts'
import { publisherFlags } from '../../lib/demo-flags.ts'
import { reportProblems } from '../../lib/problems.ts'

// The calls below say what it does; a flag replaces the value after its ?? (--help lists them).
const flags = publisherFlags()

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
// A refused or lost connection ends the program with one line that says what to do.
reportProblems(client, flags.url)

// Called when the broker answers the CONNECT with a CONNACK; code 0 means accepted.
client.on('connect', async (connack) => {
  console.log(`connected to ${flags.url}, ${connackResult(connack)}`)
  for (const message of flags.messages ?? ['on']) {
    // At QoS 1 or 2 this waits until the broker has acknowledged the message.
    await client.publishAsync(flags.topic ?? 'users/alice/notes', message, {
      qos: flags.qos ?? 1,
      retain: flags.retain ?? false,
    })
  }
  // DISCONNECT: the broker knows we left on purpose.
  await client.endAsync()
})

// Printed from each PUBLISH packet as it leaves, so it says what was really sent.
client.on('packetsend', (packet) => {
  if (packet.cmd !== 'publish') return
  const retained = packet.retain ? ' (retained)' : ''
  console.log(`published ${JSON.stringify(String(packet.payload))} to ${packet.topic}${retained}`)
})

// With -V 5 a PUBACK says how it went: 0x10 when nobody subscribes; a refusal ends the program.
client.on('packetreceive', (ack) => {
  if (ack.cmd === 'puback' && ack.reasonCode !== undefined) console.log(acknowledgement(ack))
})
