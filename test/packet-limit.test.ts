// lib/packet-limit.ts follows packet boundaries in any chunking and trips on the first oversized packet.
import mqttPacket, { type Packet } from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { MQTT_MAX_REMAINING_LENGTH, PacketSizeWatcher } from '../lib/packet-limit.ts'

const publish = (size: number): Packet => ({ cmd: 'publish', topic: 't', payload: Buffer.alloc(size, 1), qos: 0, retain: false, dup: false })

/** Feed `bytes` to a watcher in chunks of `chunk` bytes; returns the sizes it reported. */
function watch(bytes: Buffer, max: number, chunk: number): number[] {
  const reported: number[] = []
  const watcher = new PacketSizeWatcher(max, (size) => reported.push(size))
  for (let i = 0; i < bytes.length; i += chunk) watcher.feed(bytes.subarray(i, i + chunk))
  return reported
}

describe('PacketSizeWatcher', () => {
  const small = [publish(10), { cmd: 'pingreq' } as Packet, publish(200), { cmd: 'disconnect' } as Packet].map((p) => mqttPacket.generate(p))
  const big = mqttPacket.generate(publish(20_000))

  it.each([1, 2, 3, 7, 1000])('lets packets up to the limit through, in chunks of %i bytes', (chunk) => {
    expect(watch(Buffer.concat(small), 1024, chunk)).toEqual([])
  })

  it.each([1, 5, 100_000])('reports the first packet over the limit once, with its whole size, in chunks of %i bytes', (chunk) => {
    expect(watch(Buffer.concat([...small, big, big]), 1024, chunk)).toEqual([big.length])
  })

  it('trips on the announced length alone, before the body arrives', () => {
    expect(watch(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]), 1024, 5)).toEqual([5 + MQTT_MAX_REMAINING_LENGTH])
  })

  it('says how many bytes of a chunk come before the oversized packet, so only those are passed on', () => {
    const before = Buffer.concat(small)
    const watcher = new PacketSizeWatcher(1024, () => undefined)
    expect(watcher.feed(before)).toBe(before.length)
    expect(watcher.feed(Buffer.concat([small[1], big, small[0]]))).toBe(small[1].length)
  })

  it('counts the header: a packet of exactly the limit passes, one byte more does not', () => {
    const packet = mqttPacket.generate(publish(100))
    expect(watch(packet, packet.length, 10)).toEqual([])
    expect(watch(packet, packet.length - 1, 10)).toEqual([packet.length])
  })
})
