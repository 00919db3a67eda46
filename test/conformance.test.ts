// Conformance: every statement of MQTT 3.1.1 that the demos and docs rely on, one test each, spoken
// packet by packet (test/raw-client.ts), against four brokers: the bundled one, a private Mosquitto,
// aedes alone, without the fixes of lib/broker-fixes.ts (where each fix's test must fail, or the fix
// proves nothing), and two bundled brokers sharing a Redis, each test's clients spread over both. A known departure is expected: its test passes when the broker gives the wrong answer,
// and fails, saying so, the day the broker starts keeping the rule. The last test checks
// docs/conformance.md against this run's results; `npm run conformance` (CONFORMANCE_WRITE=1)
// rewrites the page from them instead.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { IPublishPacket } from 'mqtt-packet'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startBroker } from '../lib/broker.ts'
import { ROOT } from '../scenarios/stage.ts'
import { mosquittoPath, mosquittoVersion, NOT_INSTALLED, startMosquitto } from './mosquitto.ts'
import { startPlainAedes } from './aedes-alone.ts'
import { RawClient, type ConnectOptions } from './raw-client.ts'
import { REDIS_NOT_INSTALLED, redisServerPath, redisVersion, startCluster } from './redis-server.ts'

/** What one test can do with the broker under test; every topic it uses is under its own namespace. */
class Probe {
  /** A namespace no other test uses: the first level of every topic of this test. */
  readonly ns = `conformance-${Math.random().toString(16).slice(2, 10)}`
  private readonly clients: RawClient[] = []
  private readonly retainedTopics = new Set<string>()
  private readonly sessions = new Set<string>()
  private markers = 0

  constructor(readonly url: string) {}

  /** `<ns>/<name>`; a `$` in front of the name makes a $ topic: `$<ns>/<name>`. */
  t(name: string): string {
    return name.startsWith('$') ? `$${this.ns}/${name.slice(1)}` : `${this.ns}/${name}`
  }

  /** A connected client with a clean session unless told otherwise; ended after the test. */
  async client(options: ConnectOptions = {}): Promise<RawClient> {
    const { client, connack } = await this.connect(options)
    if (connack.returnCode !== 0) throw new Error(`CONNECT refused with return code ${connack.returnCode}`)
    return client
  }

  /** CONNECT and the CONNACK, whatever it says. */
  async connect(options: ConnectOptions = {}): Promise<Awaited<ReturnType<typeof RawClient.connect>>> {
    const result = await RawClient.connect(this.url, options)
    this.clients.push(result.client)
    return result
  }

  /** Publish a retained message, deleted again after the test. */
  async retain(client: RawClient, topic: string, payload: string, qos: 0 | 1 = 1): Promise<void> {
    this.keep(topic)
    await client.publish(topic, payload, { qos, retain: true })
  }

  /** Note that the test leaves a retained message on `topic`, to delete after it. */
  keep(topic: string): void {
    this.retainedTopics.add(topic)
  }

  /** Connect with a persistent session (CleanSession 0) as `name`; the session is ended after the test. */
  async persistent(name: string): Promise<{ client: RawClient; sessionPresent: boolean }> {
    const clientId = `${this.ns}-${name}`
    this.sessions.add(clientId)
    const { client, connack } = await this.connect({ clientId, clean: false })
    if (connack.returnCode !== 0) throw new Error(`CONNECT of ${clientId} refused with return code ${connack.returnCode}`)
    return { client, sessionPresent: connack.sessionPresent }
  }

  marker(): string {
    return `marker-${++this.markers}`
  }

  /**
   * Every retained message `client` gets for `filters`, proven complete: a retained marker is stored
   * after everything else, and its topic is subscribed to last, in the same SUBSCRIBE, so brokers
   * send it after the retained messages of the filters before it. A filter that starts with a
   * wildcard would match a plain marker topic, so it then gets a $ one, which it must not match.
   */
  async retainedFor(client: RawClient, filters: string[], { publisher }: { publisher?: RawClient } = {}): Promise<IPublishPacket[]> {
    const marker = this.marker()
    const topic = filters.some((f) => /^[+#]/.test(f)) ? `$${this.ns}-marker/${marker}` : `${this.ns}-marker/${marker}`
    // From the client that published what is under test, if any: its messages are handled in order.
    await this.retain(publisher ?? await this.client(), topic, marker)
    await client.subscribe([...filters, topic])
    return client.publishesBefore(marker)
  }

  /**
   * Every live message `client` got since it last looked, proven complete: `publisher` sends a
   * marker to `topic` (which `client` must match) after its other messages, so it arrives after them.
   */
  async liveBefore(client: RawClient, publisher: RawClient, topic: string): Promise<IPublishPacket[]> {
    const marker = this.marker()
    await publisher.publish(topic, marker, { qos: 1 })
    return client.publishesBefore(marker)
  }

  /** End every client and persistent session, then delete the retained messages the test left. */
  async close(): Promise<void> {
    for (const client of this.clients.splice(0)) client.end()
    // Connecting with CleanSession 1 discards the stored session (§3.1.2.4).
    for (const clientId of this.sessions) await (await RawClient.connect(this.url, { clientId, clean: true })).client.disconnect()
    if (this.retainedTopics.size === 0) return
    const cleaner = await RawClient.connected(this.url)
    for (const topic of this.retainedTopics) await cleaner.publish(topic, '', { qos: 1, retain: true })
    await cleaner.disconnect()
  }
}

/** A PUBLISH as the demos print it: topic, payload, and the RETAIN flag as "(retained)". */
function seen(packet: IPublishPacket): string {
  return `${packet.topic} ${packet.payload.length ? String(packet.payload) : '(empty)'}${packet.retain ? ' (retained)' : ''}`
}

/** Each PUBLISH as the demos print it, with the QoS it arrived at. */
const withQoS = (packets: IPublishPacket[]) => packets.map((packet) => `${seen(packet)} at QoS ${packet.qos}`)
const seenAll = (packets: IPublishPacket[]) => packets.map(seen)

interface Rule {
  /** Stable key, for the departures below. */
  id: string
  /** The section of MQTT 3.1.1 that states it. */
  section: string
  /** The claim of ../shared/article/CLAIMS.md it proves, if any. */
  claim?: string
  /** The behaviour, in one line: the test's title and the page's row. */
  says: string
  test(probe: Probe): Promise<void>
}

const rules: Rule[] = [
  // Retained messages
  {
    id: 'retained-stored', section: '§3.3.1.3', claim: 'C11',
    says: 'a retained message (QoS 0, as the demos send it) is stored and sent to a client that subscribes later, with RETAIN set',
    async test(p) {
      const publisher = await p.client()
      await p.retain(publisher, p.t('light'), 'on', 0)
      expect(seenAll(await p.retainedFor(await p.client(), [p.t('light')], { publisher }))).toEqual([`${p.t('light')} on (retained)`])
    },
  },
  {
    id: 'retained-replaced', section: '§3.3.1.3', claim: 'C13',
    says: 'a new retained message replaces the one before: a new subscriber gets the last one only',
    async test(p) {
      const publisher = await p.client()
      for (const payload of ['one', 'two', 'three']) await p.retain(publisher, p.t('light'), payload, 0)
      expect(seenAll(await p.retainedFor(await p.client(), [p.t('light')], { publisher }))).toEqual([`${p.t('light')} three (retained)`])
    },
  },
  {
    id: 'retain-flag-live', section: '§3.3.1.3', claim: 'S2',
    says: 'a retained message forwarded to a subscriber already listening has RETAIN cleared',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('light')])
      const publisher = await p.client()
      await p.retain(publisher, p.t('light'), 'on')
      expect(seenAll(await p.liveBefore(subscriber, publisher, p.t('light')))).toEqual([`${p.t('light')} on`])
    },
  },
  {
    id: 'retained-deleted', section: '§3.3.1.3', claim: 'S2',
    says: 'an empty retained message deletes the topic\'s retained message: a new subscriber gets nothing',
    async test(p) {
      const publisher = await p.client()
      await p.retain(publisher, p.t('light'), 'on')
      await p.retain(publisher, p.t('light'), '')
      expect(seenAll(await p.retainedFor(await p.client(), [p.t('light')]))).toEqual([])
    },
  },
  {
    id: 'empty-retained-forwarded', section: '§3.3.1.3',
    says: 'an empty retained message still reaches the subscribers already listening, like any other',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('light')])
      const publisher = await p.client()
      await p.retain(publisher, p.t('light'), 'on')
      await p.retain(publisher, p.t('light'), '')
      expect(seenAll(await p.liveBefore(subscriber, publisher, p.t('light')))).toEqual([`${p.t('light')} on`, `${p.t('light')} (empty)`])
    },
  },
  {
    id: 'qos-downgrade', section: '§3.8.4',
    says: 'a QoS 1 message reaches a QoS 0 wildcard subscription at QoS 0, retained or live (the discovery listener\'s case)',
    async test(p) {
      const publisher = await p.client()
      await p.retain(publisher, p.t('kitchen/light'), 'retained')
      const subscriber = await p.client()
      expect(withQoS(await p.retainedFor(subscriber, [p.t('+/light')]))).toEqual([`${p.t('kitchen/light')} retained (retained) at QoS 0`])
      await publisher.publish(p.t('kitchen/light'), 'live', { qos: 1 })
      expect(withQoS(await p.liveBefore(subscriber, publisher, p.t('kitchen/light')))).toEqual([`${p.t('kitchen/light')} live at QoS 0`])
    },
  },
  {
    id: 'suback-granted', section: '§3.9.3',
    says: 'SUBACK grants the QoS asked for, 0 or 1 (what the subscriber prints)',
    async test(p) {
      const client = await p.client()
      expect(await client.subscribe([p.t('a')], 0)).toEqual([0])
      expect(await client.subscribe([p.t('b')], 1)).toEqual([1])
    },
  },
  {
    id: 'puback', section: '§4.3.2',
    says: 'a QoS 1 PUBLISH is acknowledged with a PUBACK carrying its packet identifier (what the publisher waits for)',
    async test(p) {
      const client = await p.client()
      const first = client.publishPacket(p.t('a'), 'one', { qos: 1 })
      const second = client.publishPacket(p.t('a'), 'two', { qos: 1 })
      client.sendAll([first, second])
      const acked = [(await client.next('puback')).messageId, (await client.next('puback')).messageId]
      expect(acked.sort()).toEqual([first.messageId, second.messageId].sort())
    },
  },
  // Topic matching
  {
    id: 'hash-parent', section: '§4.7.1.2', claim: 'S3',
    says: '# matches the parent level and every level below it: home/# gets home, home/a and home/a/b, not homes',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('home/#')])
      const publisher = await p.client()
      for (const topic of ['home', 'home/a', 'home/a/b', 'homes']) await publisher.publish(p.t(topic), 'on', { qos: 1 })
      expect(seenAll(await p.liveBefore(subscriber, publisher, p.t('home/marker')))).toEqual(
        ['home', 'home/a', 'home/a/b'].map((topic) => `${p.t(topic)} on`))
    },
  },
  {
    id: 'plus-one-level', section: '§4.7.1.3', claim: 'C16',
    says: '+ matches exactly one level: home/+/light gets home/bedroom/light, not home/light, home/a/b/light or home/bedroom/tv',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('home/+/light')])
      const publisher = await p.client()
      for (const topic of ['home/light', 'home/bedroom/light', 'home/a/b/light', 'home/bedroom/tv']) await publisher.publish(p.t(topic), 'on', { qos: 1 })
      expect(seenAll(await p.liveBefore(subscriber, publisher, p.t('home/marker/light')))).toEqual([`${p.t('home/bedroom/light')} on`])
    },
  },
  {
    id: 'plus-empty-level', section: '§4.7.1.3', claim: 'S3',
    says: '+ matches an empty level (home/+/light gets home//light) but not a missing one (home/+ does not get home)',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('home/+/light'), p.t('home/+')])
      const publisher = await p.client()
      for (const topic of ['home//light', 'home', 'home/']) await publisher.publish(p.t(topic), 'on', { qos: 1 })
      expect(seenAll(await p.liveBefore(subscriber, publisher, p.t('home/marker')))).toEqual([`${p.t('home//light')} on`, `${p.t('home/')} on`])
    },
  },
  {
    id: 'dollar-live', section: '§4.7.2', claim: 'S4',
    says: 'filters that start with # or + get no live message on a topic that starts with $; a filter naming the $ level does',
    async test(p) {
      const wildcard = await p.client()
      await wildcard.subscribe(['#', '+/sys'])
      const named = await p.client()
      await named.subscribe([p.t('$#')])
      const publisher = await p.client()
      await publisher.publish(p.t('$sys'), 'on', { qos: 1 })
      expect(seen(await named.next('publish'))).toBe(`${p.t('$sys')} on`)
      expect(seenAll(await p.liveBefore(wildcard, publisher, p.t('marker')))).toEqual([])
    },
  },
  {
    id: 'dollar-retained', section: '§4.7.2', claim: 'S4',
    says: 'filters that start with # or + get no retained message on a topic that starts with $; a filter naming the $ level does',
    async test(p) {
      await p.retain(await p.client(), p.t('$sys'), 'on')
      expect(seenAll(await p.retainedFor(await p.client(), [p.t('$sys')]))).toEqual([`${p.t('$sys')} on (retained)`])
      const leaked = seenAll(await p.retainedFor(await p.client(), ['#', '+/sys'])).filter((line) => line.startsWith('$'))
      expect(leaked).toEqual([])
    },
  },
  {
    id: 'dollar-queued', section: '§4.7.2', claim: 'S4',
    says: 'filters that start with # or + get no queued message on a topic that starts with $ when a persistent session resumes',
    async test(p) {
      const away = await p.persistent('wildcard')
      await away.client.subscribe(['#', '+/sys'], 1)
      const named = await p.persistent('named')
      await named.client.subscribe([p.t('$#')], 1)
      await away.client.disconnect()
      await named.client.disconnect()
      const publisher = await p.client()
      await publisher.publish(p.t('$sys'), 'on', { qos: 1 })
      const marker = p.marker()
      await publisher.publish(p.t('marker'), marker, { qos: 1 })
      // The $ message was queued: the session whose filter names the $ level gets it.
      expect(seen(await (await p.persistent('named')).client.next('publish'))).toBe(`${p.t('$sys')} on`)
      const back = await p.persistent('wildcard')
      expect(seenAll(await back.client.publishesBefore(marker)).filter((line) => line.startsWith('$'))).toEqual([])
    },
  },
  // Sessions
  {
    id: 'session-present', section: '§3.2.2.2',
    says: 'CONNACK\'s session present flag: 0 for a new persistent session, 1 when one is resumed, 0 after a clean session ended it',
    async test(p) {
      const flags: boolean[] = []
      const first = await p.persistent('alice')
      flags.push(first.sessionPresent)
      await first.client.subscribe([p.t('t')], 1)
      await first.client.disconnect()
      const again = await p.persistent('alice')
      flags.push(again.sessionPresent)
      await again.client.disconnect()
      const { client, connack } = await p.connect({ clientId: `${p.ns}-alice`, clean: true })
      flags.push(connack.sessionPresent)
      await client.disconnect()
      flags.push((await p.persistent('alice')).sessionPresent)
      expect(flags).toEqual([false, true, false, false])
    },
  },
  {
    id: 'session-queue', section: '§3.1.2.4, §4.1', claim: 'S1',
    says: 'a persistent session keeps its subscription and queues QoS 1 messages while the client is away, delivered in order when it returns',
    async test(p) {
      const alice = await p.persistent('alice')
      await alice.client.subscribe([p.t('t')], 1)
      await alice.client.disconnect()
      const publisher = await p.client()
      for (const payload of ['one', 'two', 'three']) await publisher.publish(p.t('t'), payload, { qos: 1 })
      // No SUBSCRIBE this time: the session still has it.
      const back = await p.persistent('alice')
      expect(withQoS(await p.liveBefore(back.client, publisher, p.t('t')))).toEqual(
        ['one', 'two', 'three'].map((payload) => `${p.t('t')} ${payload} at QoS 1`))
    },
  },
  {
    id: 'session-qos0', section: '§3.1.2.4', claim: 'S1',
    says: 'QoS 0 messages are not queued for a persistent session that is away (the spec lets a broker choose; the demos show this choice)',
    async test(p) {
      const alice = await p.persistent('alice')
      await alice.client.subscribe([p.t('t')], 1)
      await alice.client.disconnect()
      const publisher = await p.client()
      await publisher.publish(p.t('t'), 'not kept', { qos: 0 })
      await publisher.publish(p.t('t'), 'kept', { qos: 1 })
      const back = await p.persistent('alice')
      expect(seenAll(await p.liveBefore(back.client, publisher, p.t('t')))).toEqual([`${p.t('t')} kept`])
    },
  },
  {
    id: 'session-clean', section: '§3.1.2.4', claim: 'S1',
    says: 'connecting with CleanSession 1 throws the stored session away, with the messages queued in it',
    async test(p) {
      const alice = await p.persistent('alice')
      await alice.client.subscribe([p.t('t')], 1)
      await alice.client.disconnect()
      const publisher = await p.client()
      await publisher.publish(p.t('t'), 'dropped with the session', { qos: 1 })
      const clean = await p.client({ clientId: `${p.ns}-alice`, clean: true })
      await clean.subscribe([p.t('t')], 1)
      expect(seenAll(await p.liveBefore(clean, publisher, p.t('t')))).toEqual([])
    },
  },
  // Client identifiers
  {
    id: 'empty-id-clean', section: '§3.1.3.1',
    says: 'a zero-length client id with CleanSession 1 is accepted, and the broker assigns one',
    async test(p) {
      const { client, connack } = await p.connect({ clientId: '', clean: true })
      expect(connack.returnCode).toBe(0)
      await client.subscribe([p.t('t')])
      expect(seenAll(await p.liveBefore(client, await p.client(), p.t('t')))).toEqual([])
    },
  },
  {
    id: 'empty-id-persistent', section: '§3.1.3.1',
    says: 'a zero-length client id with CleanSession 0 is refused with CONNACK return code 2, and the connection closed',
    async test(p) {
      const { client, connack } = await p.connect({ clientId: '', clean: false })
      expect(connack.returnCode).toBe(2)
      expect(await client.closed().then(() => 'closed', (error: Error) => error.message)).toBe('closed')
    },
  },
  // Last Will
  {
    id: 'will-on-drop', section: '§3.1.2.5', claim: 'S8',
    says: 'the will is published when a client\'s connection drops without DISCONNECT, and retained when Will Retain is set',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('availability')])
      p.keep(p.t('availability'))
      const device = await p.client({ will: { topic: p.t('availability'), payload: Buffer.from('offline'), qos: 1, retain: true } })
      device.end()
      expect(seen(await subscriber.next('publish'))).toBe(`${p.t('availability')} offline`)
      expect(seenAll(await p.retainedFor(await p.client(), [p.t('availability')]))).toEqual([`${p.t('availability')} offline (retained)`])
    },
  },
  {
    id: 'will-not-on-disconnect', section: '§3.1.2.5', claim: 'S8',
    says: 'a client that sends DISCONNECT leaves no will behind: the broker discards it',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('availability')])
      p.keep(p.t('availability'))
      const device = await p.client({ will: { topic: p.t('availability'), payload: Buffer.from('offline'), qos: 1, retain: true } })
      await device.disconnect()
      expect(seenAll(await p.liveBefore(subscriber, await p.client(), p.t('availability')))).toEqual([])
    },
  },
  // Wildcards in PUBLISH
  {
    id: 'publish-wildcard', section: '§3.3.2.1, §4.7.1', claim: 'S5',
    says: 'a PUBLISH whose topic name holds + or # closes the connection and reaches nobody',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('#')])
      for (const topic of [p.t('+/light'), p.t('#')]) {
        const rogue = await p.client()
        rogue.send(rogue.publishPacket(topic, 'on', { qos: 0 }))
        expect(await rogue.closed().then(() => 'closed', (error: Error) => error.message)).toBe('closed')
      }
      expect(seenAll(await p.liveBefore(subscriber, await p.client(), p.t('marker')))).toEqual([])
    },
  },
  // Order
  {
    id: 'order-qos0', section: '§4.6',
    says: 'QoS 0 messages from one client on one topic reach a subscriber in the order sent, retained or not, even back to back',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('t')])
      const publisher = await p.client()
      p.keep(p.t('t'))
      const burst: [string, boolean][] = [['one', true], ['two', false], ['three', true], ['', true], ['four', false], ['end', false]]
      publisher.sendAll(burst.map(([payload, retain]) => publisher.publishPacket(p.t('t'), payload, { qos: 0, retain })))
      expect(seenAll(await subscriber.publishesBefore('end'))).toEqual(['one', 'two', 'three', '(empty)', 'four'].map((m) => `${p.t('t')} ${m}`))
    },
  },
  {
    id: 'order-qos1', section: '§4.6',
    says: 'QoS 1 messages from one client on one topic reach a subscriber in the order sent, retained or not, even back to back',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('t')], 1)
      const publisher = await p.client()
      p.keep(p.t('t'))
      const burst: [string, boolean][] = [['one', true], ['two', false], ['three', true], ['', true], ['four', false], ['end', false]]
      publisher.sendAll(burst.map(([payload, retain]) => publisher.publishPacket(p.t('t'), payload, { qos: 1, retain })))
      expect(seenAll(await subscriber.publishesBefore('end'))).toEqual(['one', 'two', 'three', '(empty)', 'four'].map((m) => `${p.t('t')} ${m}`))
    },
  },
]

interface Departure {
  /** What the broker does instead, in a few words: the page's cell. */
  note: string
  /** The function of lib/broker-fixes.ts that makes the bundled broker keep the rule. */
  fix?: string
}

interface Target {
  key: 'bundled' | 'mosquitto' | 'aedes' | 'cluster'
  /** The column heading on the page. */
  column: string
  /** The describe block's title. */
  title: string
  installed: boolean
  /** The title of the skipped block where it is not installed (Mosquitto's by default). */
  notInstalled?: string
  start(): Promise<{ url: string; close(): Promise<void> }>
  /** The rules it breaks, by id: the tests expect a wrong answer. */
  departures: Record<string, Departure>
}

const targets: Target[] = [
  {
    key: 'bundled', column: 'bundled broker', title: 'the bundled broker (lib/broker.ts)', installed: true,
    start: () => startBroker({ port: 0 }),
    departures: {},
  },
  {
    key: 'mosquitto', column: 'Mosquitto', title: 'Mosquitto', installed: Boolean(mosquittoPath),
    start: startMosquitto,
    departures: {},
  },
  {
    key: 'aedes', column: 'aedes alone', title: 'aedes alone, without the fixes of lib/broker-fixes.ts', installed: true,
    start: startPlainAedes,
    departures: {
      'qos-downgrade': { note: 'sends the retained message at QoS 1', fix: 'deliverAtGrantedQoS' },
      'dollar-retained': { note: 'sends retained $ messages to # and +/… filters', fix: 'keepDollarTopicsFromWildcards' },
      'dollar-queued': { note: 'queues $ messages for # and +/… filters', fix: 'keepDollarTopicsFromWildcards' },
      'order-qos0': { note: 'drops retained messages overtaken by the next message', fix: 'keepEachClientsPublishesInOrder' },
    },
  },
  {
    key: 'cluster', column: 'two brokers on Redis', title: 'two bundled brokers on one Redis (lib/redis.ts), the clients of each test taking turns',
    installed: Boolean(redisServerPath), notInstalled: REDIS_NOT_INSTALLED,
    start: startCluster,
    departures: {},
  },
]

/** Which rules passed on which broker in this run: `<target>:<rule id>`. */
const results = new Map<string, boolean>()

for (const target of targets) {
  describe.skipIf(!target.installed)(target.installed ? target.title : target.notInstalled ?? NOT_INSTALLED, () => {
    let broker: { url: string; close(): Promise<void> }
    let probe: Probe | undefined
    beforeAll(async () => {
      broker = await target.start()
    })
    afterAll(() => broker?.close())
    afterEach(async () => {
      await probe?.close()
      probe = undefined
    })

    for (const rule of rules) {
      const title = `${rule.claim ? `${rule.claim} ` : ''}${rule.section}: ${rule.says}`
      const departure = target.departures[rule.id]
      it(departure ? `${title} (departs: ${departure.note})` : title, async () => {
        probe = new Probe(broker.url)
        let failure: unknown
        await rule.test(probe).catch((error: unknown) => (failure = error))
        results.set(`${target.key}:${rule.id}`, failure === undefined)
        if (!departure) {
          if (failure !== undefined) throw failure
        } else if (failure === undefined) {
          throw new Error(`${target.column} keeps this rule now: remove its departure from test/conformance.test.ts, then npm run conformance`)
        } else if (!(failure instanceof Error && failure.name === 'AssertionError')) {
          // A departure is a wrong answer from the broker, not a test that could not finish.
          throw failure
        }
      })
    }
  })
}

// The page: one row per rule, one column per broker, each cell from this run's result where the
// rule ran here, else from the committed page (a broker not installed, a run filtered with -t).
const PAGE = join(ROOT, 'docs', 'conformance.md')
const WRITE = process.env.CONFORMANCE_WRITE === '1'

function cell(target: Target, rule: Rule, committed: string | undefined): string | undefined {
  const passed = results.get(`${target.key}:${rule.id}`)
  if (passed === undefined) return committed
  if (!passed) return `✗ ${target.departures[rule.id]?.note ?? 'failed in the last run'}`
  const fix = targets.find((t) => t.key === 'aedes')!.departures[rule.id]?.fix
  return (target.key === 'bundled' || target.key === 'cluster') && fix ? `✓ with \`${fix}\`` : '✓'
}

function renderPage(committedPage: string): { page: string; notRun: string[] } {
  const committedRows = new Map(committedPage.split('\n').filter((line) => line.startsWith('| §')).map((line) => {
    const cells = line.split(' | ').map((c) => c.replace(/^\| |\s*\|$/g, ''))
    return [cells[2], cells.slice(3)] as const
  }))
  const notRun: string[] = []
  const rows = rules.map((rule) => {
    const cells = targets.map((target, i) => {
      const value = cell(target, rule, committedRows.get(rule.says)?.[i])
      if (value === undefined) notRun.push(`${target.column}: ${rule.says}`)
      return value ?? 'not run'
    })
    return `| ${rule.section} | ${rule.claim ?? ''} | ${rule.says} | ${cells.join(' | ')} |`
  })
  const aedes = JSON.parse(readFileSync(join(ROOT, 'node_modules', 'aedes', 'package.json'), 'utf8')).version as string
  const ranMosquitto = [...results.keys()].some((key) => key.startsWith('mosquitto:'))
  const mosquitto = (ranMosquitto ? mosquittoVersion() : undefined) ?? committedPage.match(/^- Mosquitto: (.+)$/m)?.[1] ?? 'not run'
  const ranCluster = [...results.keys()].some((key) => key.startsWith('cluster:'))
  const redis = (ranCluster ? redisVersion() : undefined) ?? committedPage.match(/^- Redis: (.+)$/m)?.[1] ?? 'not run'
  const page = `# Conformance: the rules the demos rely on, broker by broker

<!-- Written by npm run conformance from a run of test/conformance.test.ts; change that file, not this page. -->

The experiments show what MQTT does, not what one broker happens to do. Each row below is a
statement of the MQTT 3.1.1 specification that a demo or a page of these docs relies on, with the
claim it proves where it proves one ([every claim](claims.md)).
[\`test/conformance.test.ts\`](../test/conformance.test.ts) checks each one by sending MQTT packets
to the broker and reading the packets that come back, against four brokers:

- **bundled broker**: what \`npm run broker\` starts, aedes with the fixes of
  [\`lib/broker-fixes.ts\`](../lib/broker-fixes.ts); a cell names the fix where aedes alone breaks the rule.
- **Mosquitto**: the article's broker, Debian's package, started by the tests on a free port with a
  minimal configuration.
- **aedes alone**: aedes as it comes. Where it breaks a rule, its test is expected to fail, which
  shows that the test can catch the fault the fix repairs.
- **two brokers on Redis**: two bundled brokers sharing one Redis, as in [the cluster
  experiment](11-cluster.md), behind one address that hands each new connection to the next broker in
  turn, so that a test's publisher and subscriber are mostly on different brokers. Six rules held
  here only once [\`lib/redis.ts\`](../lib/redis.ts) mended three things aedes does on Redis: a SUBSCRIBE of
  several filters by a persistent session got no SUBACK; the retained messages of exact topics came
  before those of wildcard filters named earlier; and a PUBACK, sent before the message was passed on,
  let a client that subscribed right after it get the message live as well as retained.

A ✗ is a known departure: the test expects it, and fails the day the broker starts keeping the rule.

The bundled broker is built on aedes 2.0.0-beta.1, a beta, pinned to that exact version: it is the
only release of aedes that speaks MQTT 5 (1.x refuses a CONNECT of protocol version 5), and current
clients and Home Assistant expect a broker that does. It keeps every MQTT 3.1.1 rule below that 1.x
kept, and now refuses the zero-length client id of a persistent session by itself, which 1.x did not.

| section | claim | behaviour | bundled broker | Mosquitto | aedes alone | two brokers on Redis |
|---------|-------|-----------|----------------|-----------|-------------|----------------------|
${rows.join('\n')}

Tested with:

- aedes: ${aedes}
- Mosquitto: ${mosquitto}
- Redis: ${redis}

\`npm test\` fails when this page no longer matches what the tests find; \`npm run conformance\`
runs them and rewrites it. Where Mosquitto or Redis is not installed, its column is kept as it was.
`
  return { page, notRun }
}

describe('docs/conformance.md', () => {
  it('shows what this run found (npm run conformance rewrites it)', () => {
    const committed = existsSync(PAGE) ? readFileSync(PAGE, 'utf8') : ''
    const { page, notRun } = renderPage(committed)
    if (WRITE) {
      if (notRun.length > 0) throw new Error(`npm run conformance needs every test to run on every broker; not run: ${notRun.join('; ')}`)
      writeFileSync(PAGE, page)
      return
    }
    expect(committed, 'docs/conformance.md does not show what the tests found: run npm run conformance').toBe(page)
  })
})
