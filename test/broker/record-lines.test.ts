// The packet record as lines of JSON (lib/broker/record.ts's recordLines), what `npm run broker --
// --record` writes and a show's stage view reads: bursts fold so that a flood costs the broker
// little, and what folds is still told: how many packets, the first payload and the last.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { IPublishPacket, Packet } from 'mqtt-packet'
import { startBroker, type RunningBroker } from '../../lib/broker/broker.ts'
import {
  BURST_SHOWN,
  recordLines,
  type PacketRecord,
  type PacketTap,
} from '../../lib/broker/record.ts'
import { packetText } from '../../scenarios/stage/packet-text.ts'
import { RawClient } from '../helpers/raw-client.ts'
import { HUNG_MS, Waiter } from '../../scenarios/stage/waiter.ts'
import { LIFELINE } from '../../lib/cli.ts'
import { ROOT } from '../../lib/build-cache.ts'
import { programArgs } from '../../scenarios/stage/bundle.ts'

const publish = (payload: string, topic = 't/1'): IPublishPacket => ({
  cmd: 'publish',
  topic,
  payload: Buffer.from(payload),
  qos: 0,
  retain: false,
  dup: false,
})

/** A recordLines tap and the records it wrote, parsed; `written()` awaits its next write. */
function tapped() {
  const records: PacketRecord[] = []
  const wrote = new Waiter()
  const tap: PacketTap = recordLines((lines) => {
    for (const line of lines.split('\n')) if (line) records.push(JSON.parse(line))
    wrote.arrived()
  })
  let seen = 0
  const written = async () => {
    await wrote.until(() => (records.length > seen ? true : undefined), {
      timeoutMs: HUNG_MS,
      timedOut: () => new Error(`recordLines wrote nothing within ${HUNG_MS / 1000} s`),
    })
    seen = records.length
    return records
  }
  return { tap, records, written }
}

/** What each record says, as `payload ×count` or `first…last ×count`. */
const said = (records: PacketRecord[]) =>
  records.map(
    (r) =>
      `${r.dir} ${r.packet.payload ?? r.packet.cmd}` +
      `${r.packet.lastPayload === undefined ? '' : `…${r.packet.lastPayload}`}` +
      `${r.count ? ` ×${r.count}` : ''}${r.act ? ` ${r.act} of ${r.of}` : ''}`,
  )

describe('the record as lines (recordLines)', () => {
  const burst =
    `draws the first ${BURST_SHOWN} of a burst whose payloads differ, then folds the rest ` +
    'into one record with the last payload'
  it(burst, async () => {
    const { tap, written } = tapped()
    for (let i = 0; i < 10; i++) tap(i + 1, 'pub', 'in', publish(`p${i}`))
    expect(said(await written())).toEqual(['in p0', 'in p1', 'in p2', 'in p3…p9 ×7'])
    expect(BURST_SHOWN).toBe(3)
  })

  it('folds identical packets at once, whatever their packet identifiers', async () => {
    const { tap, written } = tapped()
    for (let i = 0; i < 5; i++)
      tap(i + 1, 'sub', 'out', { ...publish('same'), qos: 1, messageId: i + 1 })
    for (let i = 0; i < 5; i++) tap(i + 6, 'sub', 'in', { cmd: 'puback', messageId: i + 1 })
    expect(said(await written())).toEqual(['out same ×5', 'in puback ×5'])
  })

  it('folds nothing across another topic, flag, client or direction', async () => {
    const { tap, written } = tapped()
    const packets: [string, PacketRecord['dir'], Packet][] = [
      ['a', 'in', publish('x', 't/1')],
      ['a', 'in', publish('x', 't/2')],
      ['a', 'in', { ...publish('x', 't/2'), retain: true }],
      ['b', 'in', { ...publish('x', 't/2'), retain: true }],
      ['b', 'out', { ...publish('x', 't/2'), retain: true }],
    ]
    for (const [i, [client, dir, packet]] of packets.entries()) tap(i + 1, client, dir, packet)
    expect((await written()).map((r) => r.count)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ])
  })

  const nobody =
    "keeps a 'nobody' told of a PUBLISH recorded on its own, and leaves out one of a PUBLISH " +
    'folded into a burst'
  it(nobody, async () => {
    const { tap, written } = tapped()
    for (let i = 0; i < 5; i++) tap(i + 1, 'pub', 'in', publish(`p${i}`))
    for (let i = 0; i < 5; i++) tap(i + 6, 'pub', 'act', publish(`p${i}`), 'nobody', i + 1)
    expect(said(await written())).toEqual([
      'in p0',
      'in p1',
      'in p2',
      'in p3…p4 ×2',
      'act p0 nobody of 1',
      'act p1 nobody of 2',
      'act p2 nobody of 3',
      'act p3 nobody of 4',
    ])
  })

  it('writes a connection refused before MQTT at once, after the lines gathered before it', () => {
    const writes: string[] = []
    const tap = recordLines((lines) => writes.push(lines))
    tap(1, 'pub', 'in', publish('p0'))
    const listener = 'mqtts://localhost:8883'
    tap.refused({
      n: 2,
      at: 0,
      client: '',
      dir: 'act',
      act: 'refused',
      listener,
      reason: 'not TLS',
    })
    expect(writes.length, 'written before refused() returned').toBe(1)
    const lines = writes[0].split('\n').filter(Boolean)
    expect(lines.map((line) => JSON.parse(line))).toMatchObject([
      { n: 1, client: 'pub', dir: 'in' },
      { n: 2, client: '', dir: 'act', act: 'refused', listener, reason: 'not TLS' },
    ])
  })

  it('an arrow of a folded burst says its first and last payload', () => {
    const { lastPayload, ...first } = {
      cmd: 'publish' as const,
      topic: 't/1',
      payload: 'p2',
      bytes: 2,
      qos: 0,
      retain: false,
      dup: false,
      lastPayload: 'p9',
    }
    expect(packetText({ ...first, lastPayload })).toBe('PUBLISH t/1 "p2" … "p9"')
    expect(packetText({ ...first, lastPayload: 'x'.repeat(120) })).toBe('PUBLISH t/1 "p2" …')
  })
})

/**
 * `NAME-sub` subscribed to `NAME/t`, and `NAME-pub` sending it `count` messages in one write, then
 * "end"; resolves once the subscriber has them all.
 */
async function flood(url: string, name: string, count: number) {
  const sub = await RawClient.connected(url, `${name}-sub`)
  const pub = await RawClient.connected(url, `${name}-pub`)
  const topic = `${name}/t`
  sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] })
  await sub.next('suback')
  const payloads = Array.from({ length: count }, (_, i) => `m${i}`)
  pub.sendAll(payloads.map((p) => pub.publishPacket(topic, p)))
  pub.send(pub.publishPacket(topic, 'end'))
  await sub.publishesBefore('end')
  return { payloads, sub, pub }
}

describe("a flood through the bundled broker, in its record's lines", () => {
  let broker: RunningBroker
  const records: PacketRecord[] = []
  const wrote = new Waiter()
  beforeAll(async () => {
    broker = await startBroker({ port: 0 })
    broker.onPacketLines((lines) => {
      for (const line of lines.split('\n')) if (line) records.push(JSON.parse(line))
      wrote.arrived()
    })
  })
  afterAll(() => broker?.close())

  it('stands for every packet of it, in order, in fewer lines', async () => {
    const { payloads, sub, pub } = await flood(broker.url, 'flood', 200)
    // Each arrow's records read back in order: an own record is its payload, `count` times; one
    // that folded payloads that differ is its first, `count - 2` unknown ('?'), and its last.
    const replay = (client: string, dir: 'in' | 'out') =>
      records
        .filter((r) => r.client === client && r.dir === dir && r.packet.cmd === 'publish')
        .flatMap((r) => {
          const { payload, lastPayload } = r.packet
          const count = r.count ?? 1
          if (lastPayload === undefined) return Array.from({ length: count }, () => payload!)
          return [payload!, ...Array.from({ length: count - 2 }, () => '?'), lastPayload]
        })
    await wrote.until(() => (replay('flood-sub', 'out').at(-1) === 'end' ? true : undefined), {
      timeoutMs: HUNG_MS,
      timedOut: () => new Error("the PUBLISH of 'end' to the subscriber, in the record"),
    })
    for (const [client, dir] of [
      ['flood-pub', 'in'],
      ['flood-sub', 'out'],
    ] as const) {
      const told = replay(client, dir)
      expect(told.length, `${client} ${dir}`).toBe(payloads.length + 1)
      told.forEach((payload, i) => {
        if (payload !== '?')
          expect(payload, `${client} ${dir}, packet ${i}`).toBe([...payloads, 'end'][i])
      })
      const lines = records.filter((r) => r.client === client && r.dir === dir).length
      expect(lines, `${client} ${dir}: lines`).toBeLessThan(payloads.length / 2)
    }
    await sub.disconnect()
    await pub.disconnect()
  })
})

describe("a broker process's record, synced on request (the stage, before each step)", () => {
  const synced =
    'writes every packet it handled before a `sync N` on its stdin, then {"sync":N}, also ' +
    'while it is busy'
  it(synced, async () => {
    const broker = spawn(
      process.execPath,
      [...programArgs('lib/broker/main.ts'), '--port', '0', '--quiet', '--record', '/dev/fd/3'],
      {
        cwd: ROOT,
        env: { ...process.env, [LIFELINE]: '1' },
        stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      },
    )
    const lines: string[] = []
    const heard = new Waiter()
    const wait = <T>(what: string, found: () => T | undefined) =>
      heard.until(found, { timeoutMs: HUNG_MS, timedOut: () => new Error(`no ${what}`) })
    let stdout = ''
    broker.stdout!.on('data', (chunk) => {
      stdout += chunk
      heard.arrived()
    })
    createInterface({ input: broker.stdio[3] as NodeJS.ReadableStream }).on('line', (line) => {
      lines.push(line)
      heard.arrived()
    })
    try {
      const url = await wait(
        'ready line',
        () => /broker ready on (mqtt:\/\/\S+?);/.exec(stdout)?.[1],
      )
      // Enough at once that the record waits before it writes (recordLines' BUSY).
      const { payloads, sub, pub } = await flood(url, 'sync', 300)
      broker.stdin!.write('sync 7\n')
      const at = await wait('{"sync":7}', () => {
        const i = lines.indexOf('{"sync":7}')
        return i >= 0 ? i : undefined
      })
      const before = lines.slice(0, at).map((l) => JSON.parse(l) as PacketRecord)
      const count = (client: string, dir: string) =>
        before
          .filter((r) => r.client === client && r.dir === dir && r.packet?.cmd === 'publish')
          .reduce((sum, r) => sum + (r.count ?? 1), 0)
      expect(count('sync-pub', 'in')).toBe(payloads.length + 1)
      expect(count('sync-sub', 'out')).toBe(payloads.length + 1)
      await sub.disconnect()
      await pub.disconnect()
    } finally {
      broker.kill()
    }
  })
})
