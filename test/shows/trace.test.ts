// The trace the stage writes (scenarios/stage/trace-writer.ts) and its Mermaid export
// (scenarios/stage/mermaid.ts), without a play: bursts fold into one arrow that counts them, a
// refused connection is an arrow of its own, and a diagram does not depend on how the programs'
// packets happened to interleave.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { mermaid } from '../../scenarios/stage/mermaid.ts'
import { toldByLine } from '../../scenarios/stage/packet-text.ts'
import type { PacketEntry, TraceEntry } from '../../scenarios/stage/trace.ts'
import { TraceWriter } from '../../scenarios/stage/trace-writer.ts'
import { BURST_SHOWN, type PacketRecord } from '../../lib/broker/record.ts'

/** A writer with a publisher, a subscriber and a broker, and every entry it sent. */
function writer() {
  const sent: TraceEntry[] = []
  const trace = new TraceWriter((entry) => sent.push(entry))
  trace.play({ name: 'test', title: 'a test', steps: 1, source: 'broker' })
  const broker = trace.lifeline('broker', 'broker')
  const sub = trace.lifeline('subscriber', 'program', { clientId: 'subscriber' })
  const pub = trace.lifeline('publisher', 'program', { clientId: 'publisher' })
  return { trace, sent, broker, sub, pub }
}

describe('the trace of a play', () => {
  afterEach(() => void vi.useRealTimers())

  it('folds a burst of identical packets on one arrow into one entry that counts them', () => {
    const { trace, sent, broker, sub, pub } = writer()
    trace.step(1, 'flood')
    for (let i = 0; i < 1000; i++) {
      trace.packet(pub, broker, 'publish', 'PUBLISH t "x" q1')
      trace.packet(broker, pub, 'puback', 'PUBACK')
      trace.packet(broker, sub, 'publish', 'PUBLISH t "x"')
    }
    const packets = trace.entries.filter((e): e is PacketEntry => e.kind === 'packet')
    expect(packets.map((p) => [p.seq, p.type, p.count])).toEqual([
      [1, 'publish', 1000],
      [2, 'puback', 1000],
      [3, 'publish', 1000],
    ])
    // Each growth is sent again, as the same entry with the same seq.
    expect(sent.filter((e) => e === packets[0]).length).toBe(1000)
  })

  const differ =
    `folds a burst of PUBLISH whose payloads differ past the first ${BURST_SHOWN}, from its ` +
    'first payload to its last'
  it(differ, () => {
    const { trace, sent, broker, pub } = writer()
    trace.step(1, 'flood')
    const record = (n: number, payload: string, more: Partial<PacketRecord> = {}) =>
      trace.record(broker, pub, 'publisher', {
        n,
        at: 0,
        client: 'publisher',
        dir: 'in',
        packet: { cmd: 'publish', topic: 't', payload, bytes: payload.length, qos: 0 },
        ...more,
      })
    for (let i = 0; i < 10; i++) record(i + 1, `m${i}`)
    // As the record's own lines give a burst (lib/broker/record.ts): one line for many packets.
    record(11, 'm10', {
      count: 90,
      packet: { cmd: 'publish', topic: 't', payload: 'm10', bytes: 3, qos: 0, lastPayload: 'm99' },
    })
    const packets = trace.entries.filter((e): e is PacketEntry => e.kind === 'packet')
    expect(packets.map((p) => [p.text, p.count])).toEqual([
      ['PUBLISH t "m0"', 1],
      ['PUBLISH t "m1"', 1],
      ['PUBLISH t "m2"', 1],
      ['PUBLISH t "m3" … "m99"', 97],
    ])
    expect(sent.filter((e) => e === packets[3]).length).toBe(8)
    // Another topic is another shape: an arrow of its own.
    trace.record(broker, pub, 'publisher', {
      n: 12,
      at: 0,
      client: 'publisher',
      dir: 'in',
      packet: { cmd: 'publish', topic: 'u', payload: 'm0', bytes: 2, qos: 0 },
    })
    expect(trace.entries.at(-1)).toMatchObject({ text: 'PUBLISH u "m0"', count: 1 })
  })

  it('starts a new arrow after a step or a tick, after a pause, and for a different packet', () => {
    vi.useFakeTimers()
    const { trace, broker, pub } = writer()
    const publish = () => trace.packet(pub, broker, 'publish', 'PUBLISH t "x"')
    trace.step(1, 'one')
    publish()
    publish()
    trace.tick('it arrived')
    publish()
    vi.advanceTimersByTime(5000)
    publish()
    trace.packet(pub, broker, 'publish', 'PUBLISH t "y"')
    // Pings fold however far apart: a connection kept alive is one mark.
    trace.packet(pub, broker, 'pingreq', 'PINGREQ')
    vi.advanceTimersByTime(5000)
    trace.packet(pub, broker, 'pingreq', 'PINGREQ')
    const counts = trace.entries.flatMap((e) => (e.kind === 'packet' ? [e.count] : []))
    expect(counts).toEqual([2, 1, 1, 1, 2])
    expect(trace.entries.find((e) => e.kind === 'tick')).toMatchObject({ after: 1 })
  })

  it(
    'numbers a connection refused before MQTT among the packets, its tick beside it, and exports ' +
      'it as an arrow that ends in a cross, whatever packets Mermaid leaves out',
    () => {
      const { trace, broker, sub, pub } = writer()
      trace.step(1, 'refused')
      trace.packet(sub, broker, 'connect', 'CONNECT subscriber')
      trace.refusal(pub, broker, 'mqtts://localhost:8883', 'not TLS')
      trace.tick('no way in', undefined, pub)
      expect(trace.entries.filter((e) => e.kind === 'refusal')).toMatchObject([
        { seq: 2, from: pub, to: broker, listener: 'mqtts://localhost:8883', reason: 'not TLS' },
      ])
      expect(trace.entries.at(-1)).toMatchObject({ kind: 'tick', after: 2 })
      expect(mermaid(trace.entries, { omit: ['connect'] })).toBe(
        [
          'sequenceDiagram',
          '    participant publisher as publisher',
          '    participant broker as broker',
          '    Note over publisher,broker: step 1: refused',
          '    publisher-xbroker: refused: not TLS',
        ].join('\n'),
      )
    },
  )

  it('draws one diagram whatever the order in which packets of two programs arrived', () => {
    const diagram = (order: 'publisher first' | 'subscriber first') => {
      const { trace, broker, sub, pub } = writer()
      trace.step(1, 'publish while the subscriber listens')
      const subscribe = () => {
        trace.packet(sub, broker, 'subscribe', 'SUBSCRIBE t q0')
        trace.packet(broker, sub, 'suback', 'SUBACK 0')
      }
      if (order === 'subscriber first') subscribe()
      trace.packet(pub, broker, 'connect', 'CONNECT publisher')
      trace.packet(broker, pub, 'connack', 'CONNACK 0')
      if (order === 'publisher first') subscribe()
      trace.packet(pub, broker, 'publish', 'PUBLISH t "on"')
      trace.packet(pub, broker, 'disconnect', 'DISCONNECT')
      trace.packet(broker, sub, 'publish', 'PUBLISH t "on"')
      return mermaid(trace.entries)
    }
    expect(diagram('publisher first')).toBe(diagram('subscriber first'))
    expect(diagram('publisher first')).toBe(
      [
        'sequenceDiagram',
        '    participant subscriber as subscriber',
        '    participant broker as broker',
        '    participant publisher as publisher',
        '    Note over subscriber,publisher: step 1: publish while the subscriber listens',
        '    subscriber->>broker: SUBSCRIBE t q0',
        '    broker-->>subscriber: SUBACK 0',
        '    publisher->>broker: CONNECT publisher',
        '    broker-->>publisher: CONNACK 0',
        '    publisher->>broker: PUBLISH t "on"',
        '    broker->>subscriber: PUBLISH t "on"',
        '    publisher->>broker: DISCONNECT',
      ].join('\n'),
    )
  })

  it("reads, against another broker, the packets a program's lines tell of", () => {
    expect(toldByLine('connected to mqtt://127.0.0.1:1883, result code 0', [])).toEqual([
      { dir: 'out', type: 'connect', text: 'CONNECT' },
      { dir: 'in', type: 'connack', text: 'CONNACK 0' },
    ])
    expect(toldByLine('published "on" to my_topic (retained)', [])).toEqual([
      { dir: 'out', type: 'publish', text: 'PUBLISH my_topic "on" retain' },
    ])
    expect(toldByLine('home/bedroom/light on (retained)', ['home/+/light'])).toEqual([
      {
        dir: 'in',
        type: 'publish',
        text: 'PUBLISH home/bedroom/light "on" retain',
        retained: true,
      },
    ])
    expect(toldByLine('home/bedroom/light on', ['home/living_room/+'])).toEqual([])
  })
})
