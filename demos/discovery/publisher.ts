// A device that announces itself for Home Assistant's MQTT discovery, until Ctrl-C: a light and a
// thermometer, in one retained device config or with --per-component one each, the article's form.
import mqtt from 'mqtt'
import { announcement, answerBirth } from '../../lib/discovery/device.ts'
import { deviceFlags } from '../../lib/discovery/flags.ts'
import { connackResult } from '../../lib/mqtt5-print.ts'
import { brokerUrl, reportProblems } from '../../lib/problems.ts'

const flags = deviceFlags()
const { availability, status, light, states, removal, configs, said } = announcement(flags)
// The broker publishes the will if the connection drops; like a device, it retries every second.
const will = { topic: availability, payload: 'offline', qos: 1, retain: true } as const
const client = mqtt.connect(flags.url, { ...flags.connection, will, reconnectPeriod: 1000 })
reportProblems(client, flags.url)

// Retained, so that a listener that starts later learns them too; QoS 1, awaited: one at a time.
async function publish(messages: Iterable<[string, string]>, say = true) {
  for (const [topic, payload] of messages) {
    await client.publishAsync(topic, payload, { qos: 1, retain: true })
    if (say) console.log(`published ${said(payload)} to ${topic} (retained)`)
  }
}
client.on('connect', async (connack) => {
  console.log(`connected to ${brokerUrl(client, flags.url)}, ${connackResult(connack)}`)
  // Configs last, for whoever reads one to find the states; a dropped component goes first, once.
  await publish([[availability, 'online'], ...states, ...removal.splice(0), ...configs])
  await client.subscribeAsync([...(light ? [light.commandTopic] : []), status], { qos: 1 })
  if (light) console.log(`listening for ${light.on} and ${light.off} on ${light.commandTopic}`)
  console.log(`listening for Home Assistant on ${status}`)
})

// The light's commands, and Home Assistant's status: at "online", announce again, configs first.
client.on('message', async (topic, payload) => {
  const text = payload.toString()
  if (topic === light?.commandTopic && (text === light.on || text === light.off)) {
    states.set(light.stateTopic, text)
    await publish([[light.stateTopic, text]])
  } else if (topic !== status) console.log(`ignored ${text}`)
  else if (text === 'offline') console.log(`Home Assistant is offline (${status})`)
  else if (text === 'online')
    await answerBirth(async () => {
      await publish([...configs, [availability, 'online'], ...states], false)
      console.log(`Home Assistant is online (${status}): announced again`)
    })
})
// Ctrl-C: a DISCONNECT cancels the will, so the device says "offline" itself first.
process.once('SIGINT', async () => {
  if (client.connected) await publish([[availability, 'offline']])
  await client.endAsync()
})
