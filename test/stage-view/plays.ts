// Traces written by hand for the stage view's tests and pictures, as the stage records them
// (scenarios/stage/trace.ts): the retained show's play, packet by packet, a short play with what
// the retained one lacks (keepalive pings, a burst that grows, a Last Will, a kill), a play with
// as many lifelines as the mqtt5 show has, or more, and the security show's connections refused in
// their TLS handshake.
import type { PacketEntry, PacketType, TraceEntry } from '../../scenarios/stage/trace.ts'

/** Writes a play's entries in order, numbering its packets and timing them 10 ms apart. */
class Play {
  readonly entries: TraceEntry[] = []
  private seq = 0
  private steps = 0

  constructor(name: string, title: string, steps: number) {
    this.entries.push({ kind: 'play', name, title, steps, source: 'broker' })
    this.lifeline('broker', 'broker', 'broker')
  }

  lifeline(id: string, label: string, role: 'program' | 'broker' = 'program', stage = false) {
    this.entries.push({ kind: 'lifeline', id, label, role, ...(stage ? { stage } : {}) })
  }

  step(title: string): void {
    this.entries.push({ kind: 'step', number: ++this.steps, title })
  }

  packet(from: string, to: string, type: PacketType, text: string, more = {}): number {
    const seq = ++this.seq
    const entry: PacketEntry = { kind: 'packet', seq, from, to, type, text, count: 1, at: seq * 10 }
    this.entries.push({ ...entry, ...more })
    return seq
  }

  /** A connection of `from` that the broker refused before MQTT. */
  refusal(from: string, reason: string): number {
    const seq = ++this.seq
    const listener = 'mqtts://localhost:8883'
    this.entries.push({ kind: 'refusal', seq, from, to: 'broker', listener, reason, at: seq * 10 })
    return seq
  }

  /** A client's CONNECT and the broker's CONNACK. */
  connect(id: string, clientId = id): void {
    this.packet(id, 'broker', 'connect', `CONNECT ${clientId} clean`)
    this.packet('broker', id, 'connack', 'CONNACK 0')
  }

  subscribe(id: string, filter: string): void {
    this.packet(id, 'broker', 'subscribe', `SUBSCRIBE ${filter} q0`)
    this.packet('broker', id, 'suback', 'SUBACK 0')
  }

  tick(text: string, after?: number, claim?: string): void {
    this.entries.push({
      kind: 'tick',
      text: claim ? `${text} (${claim})` : text,
      ...(claim ? { claim } : {}),
      ...(after ? { after } : {}),
    })
  }

  end(id: string, how: 'exit' | 'stop' | 'kill'): void {
    this.entries.push({ kind: 'end-of-life', id, how })
  }

  result(text: string): TraceEntry[] {
    this.entries.push({ kind: 'result', ok: true, text })
    return this.entries
  }
}

/** The retained show as the bundled broker sees it: eight steps, three subscribers. */
export function retainedPlay(): TraceEntry[] {
  const play = new Play(
    'retained',
    'the broker keeps the last retained message of a topic and gives it to every new subscriber',
    8,
  )
  const retain = (id: string, payload: string) => {
    play.packet(id, 'broker', 'publish', `PUBLISH my_topic "${payload}" q0 retain`)
  }
  play.step('With no subscriber running, publish once: this publisher sets the retain flag')
  play.lifeline('publisher', 'publisher')
  play.connect('publisher')
  play.packet('publisher', 'broker', 'publish', 'PUBLISH my_topic "on" q0 retain', {
    act: 'nobody',
  })
  play.packet('publisher', 'broker', 'disconnect', 'DISCONNECT')
  play.end('publisher', 'exit')

  play.step('Start a subscriber')
  play.lifeline('subscriber-1', 'subscriber-1')
  play.connect('subscriber-1')
  play.subscribe('subscriber-1', 'my_topic')
  const kept = play.packet('broker', 'subscriber-1', 'publish', 'PUBLISH my_topic "on" retain', {
    act: 'retained',
  })
  play.tick(
    'subscriber-1 printed the message published before it started, marked as retained',
    kept,
    'C11',
  )

  play.step('Stop it and start it again, without publishing anything')
  play.packet('subscriber-1', 'broker', 'disconnect', 'DISCONNECT')
  play.end('subscriber-1', 'stop')
  play.lifeline('subscriber-1b', 'subscriber-1')
  play.connect('subscriber-1b', 'subscriber-1')
  play.subscribe('subscriber-1b', 'my_topic')
  const again = play.packet('broker', 'subscriber-1b', 'publish', 'PUBLISH my_topic "on" retain', {
    act: 'retained',
  })
  play.tick('it printed the same retained message again', again, 'C12')
  play.lifeline('stage', 'stage', 'program', true)
  play.connect('stage', 'stage-3f9a1c2e')
  play.packet('stage', 'broker', 'publish', 'PUBLISH my_topic "marker-1" q0')
  const marker = play.packet('broker', 'subscriber-1b', 'publish', 'PUBLISH my_topic "marker-1"')
  play.tick('it printed it once', marker)

  play.step('While it runs, publish three retained messages in a row')
  play.lifeline('publisher-2', 'publisher')
  play.connect('publisher-2', 'publisher')
  for (const message of ['one', 'two', 'three']) {
    retain('publisher-2', message)
    const live = play.packet(
      'broker',
      'subscriber-1b',
      'publish',
      `PUBLISH my_topic "${message}" q0`,
    )
    play.tick(`subscriber-1 got "${message}" live`, live)
  }
  play.packet('publisher-2', 'broker', 'disconnect', 'DISCONNECT')
  play.end('publisher-2', 'exit')
  play.tick(
    'live deliveries carry no retained mark: the RETAIN flag is cleared for subscribers already ' +
      'listening',
    undefined,
    'S2',
  )

  play.step('Start a second subscriber')
  play.lifeline('subscriber-2', 'subscriber-2')
  play.connect('subscriber-2')
  play.subscribe('subscriber-2', 'my_topic')
  const last = play.packet('broker', 'subscriber-2', 'publish', 'PUBLISH my_topic "three" retain', {
    act: 'retained',
  })
  play.tick('subscriber-2 received the last message only', last, 'C13')

  play.step('Publish an empty retained message to delete the retained one')
  play.lifeline('publisher-3', 'publisher')
  play.connect('publisher-3', 'publisher')
  retain('publisher-3', '')
  const empty = play.packet('broker', 'subscriber-1b', 'publish', 'PUBLISH my_topic "" q0')
  play.packet('broker', 'subscriber-2', 'publish', 'PUBLISH my_topic "" q0')
  play.tick('subscribers already listening get the empty message like any other', empty)
  play.packet('publisher-3', 'broker', 'disconnect', 'DISCONNECT')
  play.end('publisher-3', 'exit')

  play.step('Start a third subscriber')
  play.lifeline('subscriber-3', 'subscriber-3')
  play.connect('subscriber-3')
  const subscribed = play.packet('subscriber-3', 'broker', 'subscribe', 'SUBSCRIBE my_topic q0')
  play.packet('broker', 'subscriber-3', 'suback', 'SUBACK 0')
  play.tick(
    'it received nothing: the empty retained message removed what the topic kept',
    subscribed,
    'S2',
  )

  play.step('Stop the subscribers')
  for (const id of ['subscriber-1b', 'subscriber-2', 'subscriber-3']) {
    play.packet(id, 'broker', 'disconnect', 'DISCONNECT')
    play.end(id, 'stop')
  }
  return play.result('retained: every expectation met (C11, C12, S2, C13)')
}

/**
 * A short play of pings, a burst and a will, in two parts: the burst's packet comes again with the
 * same seq as it grows, as the stage sends it, so the second part repeats seqs of the first.
 */
export function burstPlay(): { first: TraceEntry[]; growth: TraceEntry[]; rest: TraceEntry[] } {
  const play = new Play('wire', 'keepalive pings, a burst of a thousand, and a Last Will', 3)
  play.step('Keep a session open: the client pings the broker')
  play.lifeline('sensor', 'sensor')
  play.lifeline('listener', 'listener')
  play.connect('listener')
  play.subscribe('listener', 'home/#')
  play.packet('sensor', 'broker', 'connect', 'CONNECT sensor clean will home/sensor "offline"')
  play.packet('broker', 'sensor', 'connack', 'CONNACK 0')
  for (let i = 0; i < 3; i++) {
    play.packet('sensor', 'broker', 'pingreq', 'PINGREQ')
    play.packet('broker', 'sensor', 'pingresp', 'PINGRESP')
  }
  play.step('Publish a thousand messages in a second')
  const burst = {
    kind: 'packet',
    seq: play.packet('sensor', 'broker', 'publish', 'PUBLISH home/sensor "21.5" q0'),
    from: 'sensor',
    to: 'broker',
    type: 'publish',
    text: 'PUBLISH home/sensor "21.5" q0',
    at: 100,
  } as const
  const first = [...play.entries]
  const growth: TraceEntry[] = [10, 100, 1000].map((count) => ({ ...burst, count }))
  play.entries.length = 0
  const relayed = play.packet('broker', 'listener', 'publish', 'PUBLISH home/sensor "21.5" q0', {
    count: 1000,
  })
  play.tick('the listener got all thousand', relayed)
  play.step('Kill the sensor: the broker publishes its Last Will')
  play.end('sensor', 'kill')
  const will = play.packet('broker', 'listener', 'publish', 'PUBLISH home/sensor "offline" q0', {
    act: 'will',
  })
  play.tick('the listener read "offline", which the sensor never sent itself', will)
  return { first, growth, rest: play.result('wire: every expectation met') }
}

/**
 * The lifelines of the mqtt5 show, the most of any show, in the order they start, as its trace of
 * 2026-12-07 names them (test/experiments/mqtt5.test.ts holds the show to this list).
 */
export const MQTT5_LIFELINES = [
  'broker',
  'publisher',
  'responder',
  'requester',
  'alice',
  'stage',
  'subscriber',
  'subscriber-2',
  'rh-0',
  'rh-1',
  'rh-2',
  'observer',
  'kitchen',
  'member-1',
  'member-2',
  'listener',
]

/** A play of one step in which a program per label (after the first, the broker's) connects. */
export function lifelinesPlay(labels: string[]): TraceEntry[] {
  const play = new Play('mqtt5', `${labels.length} lifelines`, 1)
  play.step('Every program connects')
  for (const label of labels.slice(1)) {
    play.lifeline(label, label, 'program', label === 'stage')
    play.connect(label)
  }
  return play.result('mqtt5: every expectation met')
}

/**
 * The security show's steps 10 to 12 as the bundled broker records them: three programs refused
 * in their TLS handshake, one for want of a certificate, and alice let in with hers.
 */
export function refusalPlay(): TraceEntry[] {
  const play = new Play(
    'security',
    'a broker that refuses strangers, and speaks TLS with certificates from a CA of our own',
    12,
  )
  play.step('Without our CA, by another name, or in plain MQTT: no way in')
  const refused = [
    ['alice', 'TLS handshake failed: the client hung up', 'without --cafile, no way in'],
    ['by-address', 'TLS handshake failed: the client hung up', '127.0.0.1 is another name'],
    ['plain', 'not TLS', 'and plain MQTT on the TLS port gets no answer at all'],
  ]
  for (const [id, reason, tick] of refused) {
    play.lifeline(id, id)
    const seq = play.refusal(id, reason)
    play.end(id, 'exit')
    play.tick(tick, seq)
  }
  play.step('Make a certificate for alice, and subscribe with it, no password')
  play.lifeline('alice-2', 'alice')
  play.connect('alice-2', 'alice')
  play.step('Publish there with a password and no certificate, then with her certificate')
  play.lifeline('no-certificate', 'no-certificate')
  const none = play.refusal('no-certificate', 'no client certificate')
  play.end('no-certificate', 'exit')
  play.tick('a password is not enough on this port: no certificate, no connection', none)
  return play.result('security: every expectation met')
}
