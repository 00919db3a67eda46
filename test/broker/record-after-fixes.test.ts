// The packet record sees what goes on the wire even when a fix that changes outgoing packets (a
// topic alias, lib/broker/fixes/outgoing.ts) was hooked in before anyone listened to a record: in a
// file of its own, since that hook is made once per process and the order is what is under test.
import mqtt from 'mqtt'
import { afterAll, expect, it } from 'vitest'
import { startBroker } from '../../lib/broker/broker.ts'
import type { PacketRecord } from '../../lib/broker/record.ts'

const brokers = await Promise.all([startBroker({ port: 0 }), startBroker({ port: 0 })])
afterAll(() => Promise.all(brokers.map((b) => b.close())))

/** An MQTT 5 subscriber that accepts one alias gets `rec/alias` twice from `url`. */
async function twiceWithAliases(url: string, id: string): Promise<void> {
  const sub = await mqtt.connectAsync(url, {
    clientId: id,
    protocolVersion: 5,
    properties: { topicAliasMaximum: 1 },
  })
  const pub = await mqtt.connectAsync(url, { clientId: `${id}-pub` })
  try {
    await sub.subscribeAsync('rec/alias')
    const got = new Promise<void>((resolve) => {
      let n = 0
      sub.on('message', () => ++n === 2 && resolve())
    })
    await pub.publishAsync('rec/alias', 'a')
    await pub.publishAsync('rec/alias', 'b')
    await got
  } finally {
    await Promise.all([sub.endAsync(), pub.endAsync()])
  }
}

it('records the topic alias a broker gave a PUBLISH, and its empty topic, as sent', async () => {
  // First the fix, on a broker nobody records; then the record, on another.
  await twiceWithAliases(brokers[0].url, 'unrecorded')
  const records: PacketRecord[] = []
  brokers[1].onPacket((record) => records.push(record))
  await twiceWithAliases(brokers[1].url, 'recorded')
  const sent = records
    .filter((r) => r.client === 'recorded' && r.dir === 'out' && r.packet.cmd === 'publish')
    .map((r) => [r.packet.topic, r.packet.topicAlias])
  expect(sent).toEqual([
    ['rec/alias', 1],
    ['', 1],
  ])
})
