// Conformance to MQTT 3.1.1: every statement of it that the demos and docs rely on, one test each,
// spoken packet by packet (test/helpers/raw-client.ts), against four brokers: the bundled one, a
// private Mosquitto, aedes alone, without the fixes of lib/broker/fixes.ts (where each fix's test
// must fail, or the fix proves nothing), and two bundled brokers on one Redis, each test's clients
// spread over both. The probe, the brokers and the way a departure is expected are in
// test/broker/conformance-probe.ts; the last test checks this file's part of docs/conformance.md
// (test/broker/conformance-page.ts). The MQTT 5 rules are in test/broker/conformance5.test.ts.
import { expect } from 'vitest'
import { pagePartTest } from './conformance-page.ts'
import {
  conformanceSuites,
  seen,
  seenAll,
  withQoS,
  type Departures,
  type Rule,
} from './conformance-probe.ts'

const rules: Rule[] = [
  // Retained messages
  {
    id: 'retained-stored',
    section: '§3.3.1.3',
    claim: 'C11',
    requirements: ['MQTT-3.3.1-5', 'MQTT-3.3.1-6', 'MQTT-3.3.1-8'],
    says:
      'a retained message (QoS 0, as the demos send it) is stored and sent to a client that ' +
      'subscribes later, with RETAIN set',
    async test(p) {
      const publisher = await p.client()
      await p.retain(publisher, p.t('light'), 'on', 0)
      expect(seenAll(await p.retainedFor(await p.client(), [p.t('light')], { publisher }))).toEqual(
        [`${p.t('light')} on (retained)`],
      )
    },
  },
  {
    id: 'retained-replaced',
    section: '§3.3.1.3',
    claim: 'C13',
    requirements: ['MQTT-3.3.1-6', 'MQTT-3.3.1-7'],
    says: 'a new retained message replaces the one before: a new subscriber gets the last one only',
    async test(p) {
      const publisher = await p.client()
      for (const payload of ['one', 'two', 'three'])
        await p.retain(publisher, p.t('light'), payload, 0)
      expect(seenAll(await p.retainedFor(await p.client(), [p.t('light')], { publisher }))).toEqual(
        [`${p.t('light')} three (retained)`],
      )
    },
  },
  {
    id: 'retain-flag-live',
    section: '§3.3.1.3',
    claim: 'S2',
    requirements: ['MQTT-3.3.1-9'],
    says: 'a retained message forwarded to a subscriber already listening has RETAIN cleared',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('light')])
      const publisher = await p.client()
      await p.retain(publisher, p.t('light'), 'on')
      expect(seenAll(await p.liveBefore(subscriber, publisher, p.t('light')))).toEqual([
        `${p.t('light')} on`,
      ])
    },
  },
  {
    id: 'retained-deleted',
    section: '§3.3.1.3',
    claim: 'S2',
    requirements: ['MQTT-3.3.1-10', 'MQTT-3.3.1-11'],
    says:
      "an empty retained message deletes the topic's retained message: a new subscriber gets " +
      'nothing',
    async test(p) {
      const publisher = await p.client()
      await p.retain(publisher, p.t('light'), 'on')
      await p.retain(publisher, p.t('light'), '')
      expect(seenAll(await p.retainedFor(await p.client(), [p.t('light')]))).toEqual([])
    },
  },
  {
    id: 'empty-retained-forwarded',
    section: '§3.3.1.3',
    requirements: ['MQTT-3.3.1-10'],
    says:
      'an empty retained message still reaches the subscribers already listening, like any ' +
      'other',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('light')])
      const publisher = await p.client()
      await p.retain(publisher, p.t('light'), 'on')
      await p.retain(publisher, p.t('light'), '')
      expect(seenAll(await p.liveBefore(subscriber, publisher, p.t('light')))).toEqual([
        `${p.t('light')} on`,
        `${p.t('light')} (empty)`,
      ])
    },
  },
  {
    id: 'qos-downgrade',
    section: '§3.8.4',
    requirements: ['MQTT-3.8.4-6'],
    says:
      'a QoS 1 message reaches a QoS 0 wildcard subscription at QoS 0, retained or live (the ' +
      "discovery listener's case)",
    async test(p) {
      const publisher = await p.client()
      await p.retain(publisher, p.t('kitchen/light'), 'retained')
      const subscriber = await p.client()
      expect(withQoS(await p.retainedFor(subscriber, [p.t('+/light')]))).toEqual([
        `${p.t('kitchen/light')} retained (retained) at QoS 0`,
      ])
      await publisher.publish(p.t('kitchen/light'), 'live', { qos: 1 })
      expect(withQoS(await p.liveBefore(subscriber, publisher, p.t('kitchen/light')))).toEqual([
        `${p.t('kitchen/light')} live at QoS 0`,
      ])
    },
  },
  {
    id: 'overlapping-qos',
    section: '§3.3.5',
    requirements: ['MQTT-3.3.5-1'],
    says:
      'a message that matches several subscriptions of a client reaches it at the highest ' +
      'QoS they grant (once, or once per subscription)',
    async test(p) {
      const client = await p.client()
      await client.subscribe([p.t('home/#')], 0)
      await client.subscribe([p.t('home/light')], 1)
      const publisher = await p.client()
      await publisher.publish(p.t('home/light'), 'on', { qos: 1 })
      const copies = await p.liveBefore(client, publisher, p.t('home/light'))
      expect(
        seenAll(copies).every((line) => line === `${p.t('home/light')} on`),
        seenAll(copies).join(', '),
      ).toBe(true)
      expect(Math.max(...copies.map((packet) => packet.qos))).toBe(1)
    },
  },
  {
    id: 'suback-granted',
    section: '§3.9.3',
    requirements: ['MQTT-3.8.4-5'],
    says: 'SUBACK grants the QoS asked for, 0 or 1 (what the subscriber prints)',
    async test(p) {
      const client = await p.client()
      expect(await client.subscribe([p.t('a')], 0)).toEqual([0])
      expect(await client.subscribe([p.t('b')], 1)).toEqual([1])
    },
  },
  {
    id: 'puback',
    section: '§4.3.2',
    requirements: ['MQTT-4.3.2-2'],
    says:
      'a QoS 1 PUBLISH is acknowledged with a PUBACK carrying its packet identifier (what ' +
      'the publisher waits for)',
    async test(p) {
      const client = await p.client()
      const first = client.publishPacket(p.t('a'), 'one', { qos: 1 })
      const second = client.publishPacket(p.t('a'), 'two', { qos: 1 })
      client.sendAll([first, second])
      const acked = [
        (await client.next('puback')).messageId,
        (await client.next('puback')).messageId,
      ]
      expect(acked.sort()).toEqual([first.messageId, second.messageId].sort())
    },
  },
  // Topic matching
  {
    id: 'hash-parent',
    section: '§4.7.1.2',
    claim: 'S3',
    says:
      '# matches the parent level and every level below it: home/# gets home, home/a and ' +
      'home/a/b, not homes',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('home/#')])
      const publisher = await p.client()
      for (const topic of ['home', 'home/a', 'home/a/b', 'homes'])
        await publisher.publish(p.t(topic), 'on', { qos: 1 })
      expect(seenAll(await p.liveBefore(subscriber, publisher, p.t('home/marker')))).toEqual(
        ['home', 'home/a', 'home/a/b'].map((topic) => `${p.t(topic)} on`),
      )
    },
  },
  {
    id: 'plus-one-level',
    section: '§4.7.1.3',
    claim: 'C16',
    says:
      '+ matches exactly one level: home/+/light gets home/bedroom/light, not home/light, ' +
      'home/a/b/light or home/bedroom/tv',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('home/+/light')])
      const publisher = await p.client()
      for (const topic of ['home/light', 'home/bedroom/light', 'home/a/b/light', 'home/bedroom/tv'])
        await publisher.publish(p.t(topic), 'on', { qos: 1 })
      expect(seenAll(await p.liveBefore(subscriber, publisher, p.t('home/marker/light')))).toEqual([
        `${p.t('home/bedroom/light')} on`,
      ])
    },
  },
  {
    id: 'plus-empty-level',
    section: '§4.7.1.3',
    claim: 'S3',
    says:
      '+ matches an empty level (home/+/light gets home//light) but not a missing one ' +
      '(home/+ does not get home)',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('home/+/light'), p.t('home/+')])
      const publisher = await p.client()
      for (const topic of ['home//light', 'home', 'home/'])
        await publisher.publish(p.t(topic), 'on', { qos: 1 })
      expect(seenAll(await p.liveBefore(subscriber, publisher, p.t('home/marker')))).toEqual([
        `${p.t('home//light')} on`,
        `${p.t('home/')} on`,
      ])
    },
  },
  {
    id: 'dollar-live',
    section: '§4.7.2',
    claim: 'S4',
    requirements: ['MQTT-4.7.2-1'],
    says:
      'filters that start with # or + get no live message on a topic that starts with $; a ' +
      'filter naming the $ level does',
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
    id: 'dollar-retained',
    section: '§4.7.2',
    claim: 'S4',
    requirements: ['MQTT-4.7.2-1'],
    says:
      'filters that start with # or + get no retained message on a topic that starts with $; ' +
      'a filter naming the $ level does',
    async test(p) {
      await p.retain(await p.client(), p.t('$sys'), 'on')
      expect(seenAll(await p.retainedFor(await p.client(), [p.t('$sys')]))).toEqual([
        `${p.t('$sys')} on (retained)`,
      ])
      const leaked = seenAll(await p.retainedFor(await p.client(), ['#', '+/sys'])).filter((line) =>
        line.startsWith('$'),
      )
      expect(leaked).toEqual([])
    },
  },
  {
    id: 'dollar-queued',
    section: '§4.7.2',
    claim: 'S4',
    requirements: ['MQTT-4.7.2-1'],
    says:
      'filters that start with # or + get no queued message on a topic that starts with $ ' +
      'when a persistent session resumes',
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
      expect(seen(await (await p.persistent('named')).client.next('publish'))).toBe(
        `${p.t('$sys')} on`,
      )
      const back = await p.persistent('wildcard')
      expect(
        seenAll(await back.client.publishesBefore(marker)).filter((line) => line.startsWith('$')),
      ).toEqual([])
    },
  },
  // Sessions
  {
    id: 'session-present',
    section: '§3.2.2.2',
    requirements: ['MQTT-3.2.2-1', 'MQTT-3.2.2-2', 'MQTT-3.2.2-3'],
    says:
      "CONNACK's session present flag: 0 for a new persistent session, 1 when one is " +
      'resumed, 0 after a clean session ended it',
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
    id: 'session-queue',
    section: '§3.1.2.4, §4.1',
    claim: 'S1',
    requirements: ['MQTT-3.1.2-4', 'MQTT-3.1.2-5'],
    says:
      'a persistent session keeps its subscription and queues QoS 1 messages while the ' +
      'client is away, delivered in order when it returns, ahead of a message published once it ' +
      'is back',
    async test(p) {
      const alice = await p.persistent('alice')
      await alice.client.subscribe([p.t('t')], 1)
      await alice.client.disconnect()
      const publisher = await p.client()
      // Ten: a broker that sends a message published meanwhile ahead of the queue's tail then shows
      // it.
      const queued = Array.from({ length: 10 }, (_, i) => `queued-${i + 1}`)
      for (const payload of queued) await publisher.publish(p.t('t'), payload, { qos: 1 })
      // No SUBSCRIBE this time: the session still has it. The marker is published as soon as it is
      // back.
      const back = await p.persistent('alice')
      expect(withQoS(await p.liveBefore(back.client, publisher, p.t('t')))).toEqual(
        queued.map((payload) => `${p.t('t')} ${payload} at QoS 1`),
      )
    },
  },
  {
    id: 'session-qos0',
    section: '§3.1.2.4',
    claim: 'S1',
    says:
      'QoS 0 messages are not queued for a persistent session that is away (the spec lets a ' +
      'broker choose; the demos show this choice)',
    async test(p) {
      const alice = await p.persistent('alice')
      await alice.client.subscribe([p.t('t')], 1)
      await alice.client.disconnect()
      const publisher = await p.client()
      await publisher.publish(p.t('t'), 'not kept', { qos: 0 })
      await publisher.publish(p.t('t'), 'kept', { qos: 1 })
      const back = await p.persistent('alice')
      expect(seenAll(await p.liveBefore(back.client, publisher, p.t('t')))).toEqual([
        `${p.t('t')} kept`,
      ])
    },
  },
  {
    id: 'session-clean',
    section: '§3.1.2.4',
    claim: 'S1',
    requirements: ['MQTT-3.1.2-6'],
    says:
      'connecting with CleanSession 1 throws the stored session away, with the messages ' +
      'queued in it',
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
    id: 'empty-id-clean',
    section: '§3.1.3.1',
    requirements: ['MQTT-3.1.3-6'],
    says: 'a zero-length client id with CleanSession 1 is accepted, and the broker assigns one',
    async test(p) {
      const { client, connack } = await p.connect({ clientId: '', clean: true })
      expect(connack.returnCode).toBe(0)
      await client.subscribe([p.t('t')])
      expect(seenAll(await p.liveBefore(client, await p.client(), p.t('t')))).toEqual([])
    },
  },
  {
    id: 'empty-id-persistent',
    section: '§3.1.3.1',
    requirements: ['MQTT-3.1.3-8'],
    says:
      'a zero-length client id with CleanSession 0 is refused with CONNACK return code 2, ' +
      'and the connection closed',
    async test(p) {
      const { client, connack } = await p.connect({ clientId: '', clean: false })
      expect(connack.returnCode).toBe(2)
      expect(
        await client.closed().then(
          () => 'closed',
          (error: Error) => error.message,
        ),
      ).toBe('closed')
    },
  },
  // Last Will
  {
    id: 'will-on-drop',
    section: '§3.1.2.5',
    claim: 'S8',
    requirements: ['MQTT-3.1.2-8', 'MQTT-3.1.2-17'],
    says:
      "the will is published when a client's connection drops without DISCONNECT, and " +
      'retained when Will Retain is set',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('availability')])
      p.keep(p.t('availability'))
      const device = await p.client({
        will: { topic: p.t('availability'), payload: Buffer.from('offline'), qos: 1, retain: true },
      })
      device.end()
      expect(seen(await subscriber.next('publish'))).toBe(`${p.t('availability')} offline`)
      expect(seenAll(await p.retainedFor(await p.client(), [p.t('availability')]))).toEqual([
        `${p.t('availability')} offline (retained)`,
      ])
    },
  },
  {
    id: 'will-not-on-disconnect',
    section: '§3.1.2.5',
    claim: 'S8',
    requirements: ['MQTT-3.1.2-10', 'MQTT-3.14.4-3'],
    says: 'a client that sends DISCONNECT leaves no will behind: the broker discards it',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('availability')])
      p.keep(p.t('availability'))
      const device = await p.client({
        will: { topic: p.t('availability'), payload: Buffer.from('offline'), qos: 1, retain: true },
      })
      await device.disconnect()
      expect(
        seenAll(await p.liveBefore(subscriber, await p.client(), p.t('availability'))),
      ).toEqual([])
    },
  },
  // Wildcards in PUBLISH
  {
    id: 'publish-wildcard',
    section: '§3.3.2.1, §4.7.1',
    claim: 'S5',
    requirements: ['MQTT-3.3.2-2', 'MQTT-4.7.1-1'],
    says: 'a PUBLISH whose topic name holds + or # closes the connection and reaches nobody',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('#')])
      for (const topic of [p.t('+/light'), p.t('#')]) {
        const rogue = await p.client()
        rogue.send(rogue.publishPacket(topic, 'on', { qos: 0 }))
        expect(
          await rogue.closed().then(
            () => 'closed',
            (error: Error) => error.message,
          ),
        ).toBe('closed')
      }
      expect(seenAll(await p.liveBefore(subscriber, await p.client(), p.t('marker')))).toEqual([])
    },
  },
  // Order
  {
    id: 'order-qos0',
    section: '§4.6',
    requirements: ['MQTT-4.6.0-5', 'MQTT-4.6.0-6'],
    says:
      'QoS 0 messages from one client on one topic reach a subscriber in the order sent, ' +
      'retained or not, even back to back',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('t')])
      const publisher = await p.client()
      p.keep(p.t('t'))
      const burst: [string, boolean][] = [
        ['one', true],
        ['two', false],
        ['three', true],
        ['', true],
        ['four', false],
        ['end', false],
      ]
      publisher.sendAll(
        burst.map(([payload, retain]) =>
          publisher.publishPacket(p.t('t'), payload, { qos: 0, retain }),
        ),
      )
      expect(seenAll(await subscriber.publishesBefore('end'))).toEqual(
        ['one', 'two', 'three', '(empty)', 'four'].map((m) => `${p.t('t')} ${m}`),
      )
    },
  },
  {
    id: 'order-qos1',
    section: '§4.6',
    requirements: ['MQTT-4.6.0-5', 'MQTT-4.6.0-6'],
    says:
      'QoS 1 messages from one client on one topic reach a subscriber in the order sent, ' +
      'retained or not, even back to back',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('t')], 1)
      const publisher = await p.client()
      p.keep(p.t('t'))
      const burst: [string, boolean][] = [
        ['one', true],
        ['two', false],
        ['three', true],
        ['', true],
        ['four', false],
        ['end', false],
      ]
      publisher.sendAll(
        burst.map(([payload, retain]) =>
          publisher.publishPacket(p.t('t'), payload, { qos: 1, retain }),
        ),
      )
      expect(seenAll(await subscriber.publishesBefore('end'))).toEqual(
        ['one', 'two', 'three', '(empty)', 'four'].map((m) => `${p.t('t')} ${m}`),
      )
    },
  },
]

const departures: Departures = {
  aedes: {
    'qos-downgrade': { note: 'sends the retained message at QoS 1', fix: 'deliverAtGrantedQoS' },
    'dollar-retained': {
      note: 'sends retained $ messages to # and +/… filters',
      fix: 'keepDollarTopicsFromWildcards',
    },
    'dollar-queued': {
      note: 'queues $ messages for # and +/… filters',
      fix: 'keepDollarTopicsFromWildcards',
    },
    'order-qos0': {
      note: 'drops retained messages overtaken by the next message',
      fix: 'keepEachClientsPublishesInOrder',
    },
    'overlapping-qos': {
      note: 'sends it once, through whichever subscription comes first: at QoS 0',
      fix: 'deliverOnceForAllMatchingSubscriptions',
    },
    'session-queue': {
      note: "sends a message published once the session is back ahead of the queue's tail",
      fix: 'deliverQueuedBeforeLive',
    },
  },
}

const FILE = 'test/broker/conformance.test.ts'
const results = conformanceSuites({ file: FILE, rules, departures, protocolVersion: 4 })
pagePartTest({
  name: 'mqtt-3.1.1',
  file: FILE,
  rules,
  departures,
  results,
  claims: true,
  protocolVersion: 4,
})
