// The bundled broker's packet record (lib/broker/record.ts), what the stage view draws: every
// packet it reads and writes, of every type, in order, with the client's id, and its own acts: a
// will it publishes, a retained message handed to a new subscriber, a PUBLISH that reached nobody.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type RunningBroker } from '../../lib/broker/broker.ts'
import { recordLine, type PacketRecord } from '../../lib/broker/record.ts'
import { RawClient } from '../helpers/raw-client.ts'
import { Waiter } from '../../scenarios/stage/waiter.ts'

describe("the bundled broker's packet record", () => {
  let broker: RunningBroker
  const records: PacketRecord[] = []
  const recorded = new Waiter()
  let stopHearing: () => void
  beforeAll(async () => {
    broker = await startBroker({ port: 0 })
    stopHearing = broker.onPacket((record) => {
      records.push(record)
      recorded.arrived()
    })
  })
  afterAll(() => broker?.close())

  /** What the record says of `client`, in order: `in publish`, `out puback`, `act will`. */
  const of = (client: string) =>
    records
      .filter((r) => r.client === client)
      .map((r) => `${r.dir} ${r.packet.cmd}${r.act ? ` ${r.act}` : ''}`)
  const until = (found: () => boolean) =>
    recorded.until(() => found() || undefined, { timeoutMs: 10_000, timedOut: () => new Error() })

  it('holds every packet type both ways, in order, with its fields', async () => {
    const { client: sub } = await RawClient.connect(broker.url, { clientId: 'rec-sub' })
    expect(await sub.subscribe(['rec/t'], 2)).toEqual([2])
    const pub = await RawClient.connected(broker.url, 'rec-pub')
    await pub.publish('rec/t', 'one', { qos: 1 })
    await sub.next('publish')
    pub.send({ ...pub.publishPacket('rec/t', 'two'), qos: 2, messageId: 7 })
    await pub.next('pubrec')
    pub.send({ cmd: 'pubrel', messageId: 7 })
    await pub.next('pubcomp')
    const two = await sub.next('publish')
    sub.send({ cmd: 'pubrec', messageId: two.messageId })
    await sub.next('pubrel')
    sub.send({ cmd: 'pubcomp', messageId: two.messageId })
    pub.send({ cmd: 'pingreq' })
    await pub.next('pingresp')
    sub.send({ cmd: 'unsubscribe', messageId: 9, unsubscriptions: ['rec/t'] })
    await sub.next('unsuback')
    await sub.disconnect()
    await pub.disconnect()
    await until(() => of('rec-sub').includes('in disconnect'))
    expect(of('rec-sub')).toEqual([
      'in connect',
      'out connack',
      'in subscribe',
      'out suback',
      'out publish',
      'in puback',
      'out publish',
      'in pubrec',
      'out pubrel',
      'in pubcomp',
      'in unsubscribe',
      'out unsuback',
      'in disconnect',
    ])
    expect(of('rec-pub')).toEqual([
      'in connect',
      'out connack',
      'in publish',
      'out puback',
      'in publish',
      'out pubrec',
      'in pubrel',
      'out pubcomp',
      'in pingreq',
      'out pingresp',
      'in disconnect',
    ])
    const first = records.find((r) => r.client === 'rec-pub' && r.packet.cmd === 'publish')!
    expect(first.packet).toMatchObject({ topic: 'rec/t', payload: 'one', bytes: 3, qos: 1 })
    const suback = records.find((r) => r.client === 'rec-sub' && r.packet.cmd === 'suback')!
    expect(suback.packet.granted).toEqual([2])
    const numbers = records.map((r) => r.n)
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b))
    // `npm run broker -- --record` writes each as a line of JSON of its own making.
    for (const r of records)
      expect(JSON.parse(recordLine(r))).toEqual(JSON.parse(JSON.stringify(r)))
  })

  it('tells a PUBLISH that reached nobody, and a retained message sent on SUBSCRIBE', async () => {
    const pub = await RawClient.connected(broker.url, 'rec-lonely')
    await pub.publish('rec/nobody', 'unheard', { qos: 1 })
    await pub.publish('rec/kept', 'kept', { qos: 1, retain: true })
    await until(() => of('rec-lonely').filter((r) => r === 'act publish nobody').length === 2)
    const published = records.filter((r) => r.client === 'rec-lonely' && r.dir === 'in')
    const nobody = records.filter((r) => r.act === 'nobody')
    expect(nobody.map((r) => r.of)).toEqual(
      published.filter((r) => r.packet.cmd === 'publish').map((r) => r.n),
    )
    const late = await RawClient.connected(broker.url, 'rec-late')
    await late.subscribe(['rec/kept'], 1)
    expect(String((await late.next('publish')).payload)).toBe('kept')
    expect(of('rec-late')).toEqual([
      'in connect',
      'out connack',
      'in subscribe',
      'out suback',
      'out publish retained',
    ])
    await pub.publish('rec/kept', '', { qos: 1, retain: true })
    pub.end()
    late.end()
  })

  it("tells a will it publishes, before the will's PUBLISH to a subscriber", async () => {
    const watcher = await RawClient.connected(broker.url, 'rec-watcher')
    await watcher.subscribe(['rec/will'], 0)
    const { client: dying } = await RawClient.connect(broker.url, {
      clientId: 'rec-dying',
      will: { topic: 'rec/will', payload: Buffer.from('gone'), qos: 0, retain: false },
    })
    dying.end()
    await watcher.next('publish')
    await until(() => of('rec-watcher').includes('out publish'))
    const will = records.find((r) => r.act === 'will')!
    expect(will).toMatchObject({ client: 'rec-dying', dir: 'act' })
    expect(will.packet).toMatchObject({ cmd: 'publish', topic: 'rec/will', payload: 'gone' })
    const delivered = records.findLast((r) => r.client === 'rec-watcher' && r.dir === 'out')!
    expect(delivered.packet).toMatchObject({ cmd: 'publish', topic: 'rec/will' })
    expect(delivered.n).toBeGreaterThan(will.n)
    watcher.end()
  })

  it('records nothing once nobody listens', async () => {
    stopHearing()
    const before = records.length
    const client = await RawClient.connected(broker.url, 'rec-unheard')
    await client.publish('rec/t', 'x', { qos: 1 })
    await client.disconnect()
    expect(records.length).toBe(before)
  })
})
