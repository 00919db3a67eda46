// Conformance to MQTT 5: the statements of it that the demos and the clients people bring (MQTT.js,
// MQTTX, Home Assistant, paho) rely on, one test each, spoken packet by packet with protocol
// version 5, against the bundled broker, a private Mosquitto and aedes alone
// (test/broker/conformance-probe.ts), with this file's part of docs/conformance.md checked last
// (test/broker/conformance-page.ts). Rules about time (session, message and will expiry) let the
// interval pass: brokers count it in whole seconds.
import { setTimeout as delay } from 'node:timers/promises'
import type { IPublishPacket } from 'mqtt-packet'
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
import type { RawClient } from '../helpers/raw-client.ts'

/**
 * How long to let a 1-second interval run out. Mosquitto keeps time in whole seconds and expires
 * what is strictly past its second, so a 1 s interval may take up to 2 s, checked once a second.
 */
const ONE_SECOND_EXPIRED_MS = 3000
/** The Will Delay Interval of the rules about it, in seconds. */
const WILL_DELAY_S = 5

/** The MQTT 5 properties of a PUBLISH that these rules look at, to compare them whole. */
function props(packet: IPublishPacket): Record<string, unknown> {
  const { properties = {} } = packet
  return Object.fromEntries(Object.entries(properties).filter(([, value]) => value !== undefined))
}

/** The Message Expiry Interval a forwarded message carries; fails the test if it carries none. */
function expiryOf(packet: IPublishPacket): number {
  const interval = packet.properties?.messageExpiryInterval
  expect(interval, `the Message Expiry Interval of ${seen(packet)}`).toBeTypeOf('number')
  return interval!
}

/**
 * Expect `interval`, forwarded after a message waited between `least` and `most` ms at the broker,
 * to be what was left of `published` seconds: counted in whole seconds, so within a second.
 */
function expectTimeLeft(interval: number, published: number, least: number, most: number): void {
  expect(
    interval,
    `Message Expiry Interval of ${published} s after ${least}–${most} ms`,
  ).toBeGreaterThanOrEqual(published - Math.ceil(most / 1000))
  expect(
    interval,
    `Message Expiry Interval of ${published} s after ${least}–${most} ms`,
  ).toBeLessThanOrEqual(published - Math.floor(least / 1000))
}

/** What a rule's test is given: clients, markers, topics of its own. */
type Probe = Parameters<Rule['test']>[0]

/** `job-1` ... `job-<count>`. */
const jobs = (count: number) => Array.from({ length: count }, (_, i) => `job-${i + 1}`)

/**
 * Publish `count` jobs to the group's topic, then a marker to a topic every member (and `others`)
 * subscribes to as well: what each got before the marker is its share.
 */
async function spreadOver(
  p: Probe,
  members: RawClient[],
  count: number,
  others: RawClient[] = [],
): Promise<string[][]> {
  for (const client of [...members, ...others]) await client.subscribe([p.t('done')], 1)
  const publisher = await p.client()
  for (const [i, job] of jobs(count).entries())
    await publisher.publish(p.t(`jobs/${i % 3}`), job, { qos: 1 })
  const marker = p.marker()
  await publisher.publish(p.t('done'), marker, { qos: 1 })
  const got = await Promise.all(
    [...members, ...others].map((client) => client.publishesBefore(marker)),
  )
  return got.map((packets) => packets.map((packet) => String(packet.payload)))
}

const rules: Rule[] = [
  // Reason codes
  {
    id: 'connack-reason',
    section: '§3.2.2.2, §3.2.2.3.7',
    requirements: ['MQTT-3.1.4-5', 'MQTT-3.2.2-16'],
    says:
      'CONNACK says 0x00 (Success); a CONNECT with a zero-length client id gets one, in the ' +
      'Assigned Client Identifier property',
    async test(p) {
      const named = await p.connect()
      expect(named.connack.reasonCode).toBe(0)
      expect(named.connack.properties?.assignedClientIdentifier).toBeUndefined()
      const anonymous = await p.connect({ clientId: '' })
      expect(anonymous.connack.reasonCode).toBe(0)
      expect(anonymous.connack.properties?.assignedClientIdentifier).toMatch(/./)
    },
  },
  {
    id: 'empty-id-persistent',
    section: '§3.1.3.1',
    requirements: ['MQTT-3.1.3-6', 'MQTT-3.1.3-7'],
    says:
      'a zero-length client id is accepted with Clean Start 0 too (unlike in 3.1.1), under ' +
      'an id the broker assigns and names in CONNACK',
    async test(p) {
      const { connack } = await p.connect({
        clientId: '',
        clean: false,
        properties: { sessionExpiryInterval: 10 },
      })
      expect([connack.reasonCode, typeof connack.properties?.assignedClientIdentifier]).toEqual([
        0,
        'string',
      ])
    },
  },
  {
    id: 'suback-reason',
    section: '§3.9.3',
    requirements: ['MQTT-3.8.4-6', 'MQTT-3.8.4-7', 'MQTT-3.9.3-1'],
    says: 'SUBACK gives one reason code per filter: the QoS granted, 0x00, 0x01 or 0x02',
    async test(p) {
      const client = await p.client()
      expect(
        await client.subscribe(
          [0, 1, 2].map((qos) => ({ topic: p.t(`qos${qos}`), qos: qos as 0 | 1 | 2 })),
        ),
      ).toEqual([0, 1, 2])
    },
  },
  {
    id: 'puback-reason',
    section: '§3.4.2.1',
    requirements: ['MQTT-3.4.2-1'],
    says:
      'a QoS 1 PUBLISH gets PUBACK 0x00 (Success) when someone subscribes, 0x00 or 0x10 (No ' +
      'matching subscribers) when nobody does',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('heard')], 1)
      const publisher = await p.client()
      expect(await publisher.publish(p.t('heard'), 'on', { qos: 1 })).toBe(0)
      expect([0x00, 0x10]).toContain(await publisher.publish(p.t('unheard'), 'on', { qos: 1 }))
    },
  },
  // Sessions
  {
    id: 'session-kept',
    section: '§3.1.2.4, §3.1.2.11.2',
    requirements: ['MQTT-3.1.2-5', 'MQTT-3.1.2-23', 'MQTT-3.2.2-3'],
    says:
      'Clean Start 0 and a Session Expiry Interval: within the interval, the session ' +
      '(session present 1) keeps its subscription and the QoS 1 messages queued while the client ' +
      'was away, sent ahead of a message published once it is back',
    async test(p) {
      const alice = await p.persistent('alice', { expiry: 60 })
      await alice.client.subscribe([p.t('t')], 1)
      await alice.client.disconnect()
      const publisher = await p.client()
      // Ten, and the marker published as soon as the session is back: a broker that sends it ahead
      // of the queue's tail then shows it.
      const queued = Array.from({ length: 10 }, (_, i) => `queued-${i + 1}`)
      for (const payload of queued) await publisher.publish(p.t('t'), payload, { qos: 1 })
      const back = await p.persistent('alice', { expiry: 60 })
      expect(back.sessionPresent).toBe(true)
      expect(withQoS(await p.liveBefore(back.client, publisher, p.t('t')))).toEqual(
        queued.map((m) => `${p.t('t')} ${m} at QoS 1`),
      )
    },
  },
  {
    id: 'session-expired',
    section: '§3.1.2.11.2',
    requirements: ['MQTT-4.1.0-2'],
    says:
      'once the Session Expiry Interval has passed, the session is gone: session present 0, ' +
      'no subscription, no queued message',
    waits: true,
    async test(p) {
      const alice = await p.persistent('alice', { expiry: 1 })
      await alice.client.subscribe([p.t('t')], 1)
      await alice.client.disconnect()
      const publisher = await p.client()
      await publisher.publish(p.t('t'), 'queued', { qos: 1 })
      await delay(ONE_SECOND_EXPIRED_MS)
      const back = await p.persistent('alice', { expiry: 60 })
      expect(back.sessionPresent).toBe(false)
      // Nothing queued comes, and no subscription brings the marker: subscribe again to hear it.
      await back.client.subscribe([p.t('t')], 1)
      expect(seenAll(await p.liveBefore(back.client, publisher, p.t('t')))).toEqual([])
    },
  },
  {
    id: 'session-zero-expiry',
    section: '§3.1.2.11.2',
    says:
      'without a Session Expiry Interval the session ends with the connection, even with ' +
      'Clean Start 0 (what a 3.1.1 habit of clean: false gets in MQTT 5)',
    async test(p) {
      const alice = await p.persistent('alice', { expiry: 0 })
      await alice.client.subscribe([p.t('t')], 1)
      await alice.client.disconnect()
      const publisher = await p.client()
      await publisher.publish(p.t('t'), 'queued', { qos: 1 })
      const back = await p.persistent('alice', { expiry: 60 })
      expect(back.sessionPresent).toBe(false)
      await back.client.subscribe([p.t('t')], 1)
      expect(seenAll(await p.liveBefore(back.client, publisher, p.t('t')))).toEqual([])
    },
  },
  {
    id: 'session-resumed-zero-expiry',
    section: '§3.1.2.4, §3.1.2.11.2',
    requirements: ['MQTT-3.1.2-5'],
    says:
      'Clean Start 0 with a Session Expiry Interval of 0 resumes a kept session whole, with ' +
      'the QoS 1 messages queued in it; the session then ends with that connection',
    async test(p) {
      const alice = await p.persistent('alice', { expiry: 60 })
      await alice.client.subscribe([p.t('t')], 1)
      await alice.client.disconnect()
      const publisher = await p.client()
      for (const payload of ['one', 'two']) await publisher.publish(p.t('t'), payload, { qos: 1 })
      const back = await p.persistent('alice', { expiry: 0 })
      expect(back.sessionPresent).toBe(true)
      expect(withQoS(await p.liveBefore(back.client, publisher, p.t('t')))).toEqual(
        ['one', 'two'].map((m) => `${p.t('t')} ${m} at QoS 1`),
      )
      await back.client.disconnect()
      expect((await p.persistent('alice', { expiry: 0 })).sessionPresent).toBe(false)
    },
  },
  // Message expiry
  {
    id: 'message-expiry-queued',
    section: '§3.3.2.3.3',
    requirements: ['MQTT-3.3.2-5', 'MQTT-3.3.2-6'],
    says:
      'a QoS 1 message queued for an absent session is dropped once its Message Expiry ' +
      'Interval has passed; one still alive is delivered with the time it has left',
    waits: true,
    async test(p) {
      const alice = await p.persistent('alice')
      await alice.client.subscribe([p.t('t')], 1)
      await alice.client.disconnect()
      const publisher = await p.client()
      const sent = Date.now()
      await publisher.publish(p.t('t'), 'short-lived', {
        qos: 1,
        properties: { messageExpiryInterval: 1 },
      })
      await publisher.publish(p.t('t'), 'long-lived', {
        qos: 1,
        properties: { messageExpiryInterval: 60 },
      })
      const acked = Date.now()
      await delay(ONE_SECOND_EXPIRED_MS)
      const resumed = Date.now()
      const back = await p.persistent('alice')
      const got = await p.liveBefore(back.client, publisher, p.t('t'))
      expect(seenAll(got)).toEqual([`${p.t('t')} long-lived`])
      expectTimeLeft(expiryOf(got[0]), 60, resumed - acked, Date.now() - sent)
    },
  },
  {
    id: 'message-expiry-retained',
    section: '§3.3.2.3.3',
    requirements: ['MQTT-3.3.2-5', 'MQTT-3.3.2-6'],
    says:
      'a retained message is no longer sent once its Message Expiry Interval has passed; one ' +
      'still alive is sent with the time it has left',
    waits: true,
    async test(p) {
      const publisher = await p.client()
      const sent = Date.now()
      await p.retain(publisher, p.t('short'), 'short-lived', 1, { messageExpiryInterval: 1 })
      await p.retain(publisher, p.t('long'), 'long-lived', 1, { messageExpiryInterval: 60 })
      const acked = Date.now()
      await delay(ONE_SECOND_EXPIRED_MS)
      const subscribed = Date.now()
      const got = await p.retainedFor(await p.client(), [p.t('short'), p.t('long')], { publisher })
      expect(seenAll(got)).toEqual([`${p.t('long')} long-lived (retained)`])
      expectTimeLeft(expiryOf(got[0]), 60, subscribed - acked, Date.now() - sent)
    },
  },
  // Retained messages and subscription options
  {
    id: 'retain-handling-0',
    section: '§3.8.3.1',
    requirements: ['MQTT-3.3.1-9', 'MQTT-3.8.4-4'],
    says:
      'Retain Handling 0: the retained messages are sent at every SUBSCRIBE, a repeated one ' +
      'too',
    async test(p) {
      await p.retain(await p.client(), p.t('light'), 'on')
      const client = await p.client()
      for (let i = 0; i < 2; i++) {
        expect(
          seenAll(await p.retainedFor(client, [{ topic: p.t('light'), qos: 0, rh: 0 }])),
        ).toEqual([`${p.t('light')} on (retained)`])
      }
    },
  },
  {
    id: 'retain-handling-1',
    section: '§3.8.3.1',
    requirements: ['MQTT-3.3.1-10'],
    says:
      'Retain Handling 1: the retained messages are sent for a new subscription, not when it ' +
      'is repeated',
    async test(p) {
      await p.retain(await p.client(), p.t('light'), 'on')
      const client = await p.client()
      expect(
        seenAll(await p.retainedFor(client, [{ topic: p.t('light'), qos: 0, rh: 1 }])),
      ).toEqual([`${p.t('light')} on (retained)`])
      expect(
        seenAll(await p.retainedFor(client, [{ topic: p.t('light'), qos: 0, rh: 1 }])),
      ).toEqual([])
    },
  },
  {
    id: 'retain-handling-2',
    section: '§3.8.3.1',
    requirements: ['MQTT-3.3.1-11'],
    says:
      'Retain Handling 2: no retained message is sent at SUBSCRIBE, and live messages still ' +
      'are',
    async test(p) {
      const publisher = await p.client()
      await p.retain(publisher, p.t('light'), 'on')
      const client = await p.client()
      expect(
        seenAll(await p.retainedFor(client, [{ topic: p.t('light'), qos: 0, rh: 2 }])),
      ).toEqual([])
      await publisher.publish(p.t('light'), 'off', { qos: 1 })
      expect(seenAll(await p.liveBefore(client, publisher, p.t('light')))).toEqual([
        `${p.t('light')} off`,
      ])
    },
  },
  {
    id: 'retain-as-published',
    section: '§3.8.3.1, §3.3.1.3',
    requirements: ['MQTT-3.3.1-12', 'MQTT-3.3.1-13'],
    says:
      'Retain As Published: a retained message forwarded live keeps RETAIN 1 on a ' +
      'subscription that asks for it, and has it cleared on one that does not',
    async test(p) {
      const asPublished = await p.client()
      await asPublished.subscribe([{ topic: p.t('light'), qos: 0, rap: true }])
      const plain = await p.client()
      await plain.subscribe([{ topic: p.t('light'), qos: 0, rap: false }])
      const publisher = await p.client()
      await p.retain(publisher, p.t('light'), 'on')
      const marker = p.marker()
      await publisher.publish(p.t('light'), marker, { qos: 1 })
      expect(seenAll(await asPublished.publishesBefore(marker))).toEqual([
        `${p.t('light')} on (retained)`,
      ])
      expect(seenAll(await plain.publishesBefore(marker))).toEqual([`${p.t('light')} on`])
    },
  },
  {
    id: 'no-local',
    section: '§3.8.3.1',
    requirements: ['MQTT-3.8.3-3'],
    says:
      'No Local: a client does not get its own messages on a subscription that sets it; ' +
      'another client on the same filter does',
    async test(p) {
      const self = await p.client()
      await self.subscribe([{ topic: p.t('chat'), qos: 1, nl: true }])
      const other = await p.client()
      await other.subscribe([p.t('chat')], 1)
      await self.publish(p.t('chat'), 'mine', { qos: 1 })
      // Once the other client has it, the broker has routed it: to self too, if it were going to.
      expect(seenAll(await p.liveBefore(other, self, p.t('chat')))).toEqual([`${p.t('chat')} mine`])
      await other.publish(p.t('chat'), 'theirs', { qos: 1 })
      expect(seenAll(await p.liveBefore(self, other, p.t('chat')))).toEqual([
        `${p.t('chat')} theirs`,
      ])
    },
  },
  {
    id: 'subscription-identifier',
    section: '§3.8.2.1.2, §3.3.2.3.8',
    says:
      'a message sent for a subscription made with a Subscription Identifier carries it, ' +
      'retained or live',
    async test(p) {
      const publisher = await p.client()
      await p.retain(publisher, p.t('light'), 'on')
      const marker = p.marker()
      await p.retain(publisher, p.t('marker'), marker)
      const client = await p.client()
      await client.subscribe([p.t('light'), p.t('marker')], 1, { subscriptionIdentifier: 7 })
      const retained = await client.publishesBefore(marker)
      await publisher.publish(p.t('light'), 'off', { qos: 1 })
      const live = await p.liveBefore(client, publisher, p.t('light'))
      expect([...retained, ...live].map((packet) => [seen(packet), props(packet)])).toEqual([
        [`${p.t('light')} on (retained)`, { subscriptionIdentifier: 7 }],
        [`${p.t('light')} off`, { subscriptionIdentifier: 7 }],
      ])
    },
  },
  {
    id: 'overlapping-subscriptions',
    section: '§3.3.4',
    requirements: ['MQTT-3.3.4-2', 'MQTT-3.3.4-3', 'MQTT-3.3.4-4', 'MQTT-3.3.4-5'],
    says:
      'a message that matches several subscriptions of a client reaches it at the highest ' +
      'QoS they grant, with the Subscription Identifier of each (in one copy, or in a copy per ' +
      'subscription)',
    async test(p) {
      const client = await p.client()
      await client.subscribe([p.t('home/#')], 0, { subscriptionIdentifier: 1 })
      await client.subscribe([p.t('home/light')], 1, { subscriptionIdentifier: 2 })
      const publisher = await p.client()
      await publisher.publish(p.t('home/light'), 'on', { qos: 1 })
      const copies = await p.liveBefore(client, publisher, p.t('home/light'))
      expect(
        seenAll(copies).every((line) => line === `${p.t('home/light')} on`),
        seenAll(copies).join(', '),
      ).toBe(true)
      const identifiers = copies
        .flatMap((packet) => packet.properties?.subscriptionIdentifier ?? [])
        .sort()
      expect([Math.max(...copies.map((packet) => packet.qos)), identifiers]).toEqual([1, [1, 2]])
    },
  },
  {
    id: 'receive-maximum',
    section: '§3.1.2.11.3, §4.9',
    requirements: ['MQTT-3.3.4-9', 'MQTT-4.9.0-2'],
    says:
      'a client that sets a Receive Maximum has at most that many QoS 1 messages ' +
      'unacknowledged: the broker sends the next one as it acknowledges',
    async test(p) {
      const slow = await p.client({ properties: { receiveMaximum: 2 } })
      slow.autoAck = false
      await slow.subscribe([p.t('jobs')], 1)
      const other = await p.client()
      await other.subscribe([p.t('jobs')], 1)
      const publisher = await p.client()
      const jobs = ['one', 'two', 'three', 'four']
      for (const job of jobs) await publisher.publish(p.t('jobs'), job, { qos: 1 })
      const marker = p.marker()
      await publisher.publish(p.t('jobs'), marker, { qos: 1 })
      // Once another subscriber has them all, the broker has sent the slow one all it was going to
      // send now; a PINGRESP comes after what it sent before.
      await other.publishesBefore(marker)
      slow.send({ cmd: 'pingreq' })
      await slow.next('pingresp')
      const unacknowledged = slow.take('publish')
      expect(unacknowledged.map((packet) => String(packet.payload))).toEqual(['one', 'two'])
      slow.autoAck = true
      for (const packet of unacknowledged) slow.send({ cmd: 'puback', messageId: packet.messageId })
      expect(seenAll(await slow.publishesBefore(marker))).toEqual(
        ['three', 'four'].map((job) => `${p.t('jobs')} ${job}`),
      )
    },
  },
  // Properties passed through
  {
    id: 'user-properties',
    section: '§3.3.2.3.2, §3.3.2.3.7, §3.3.2.3.9',
    requirements: ['MQTT-3.3.2-4', 'MQTT-3.3.2-17', 'MQTT-3.3.2-18', 'MQTT-3.3.2-20'],
    says:
      'user properties (a name given twice too), Content Type and Payload Format Indicator ' +
      'reach subscribers unchanged, live and retained',
    async test(p) {
      const properties = {
        payloadFormatIndicator: true,
        contentType: 'application/json',
        userProperties: { room: 'kitchen', unit: ['°C', 'celsius'] },
      }
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('live')], 1)
      const publisher = await p.client()
      await publisher.publish(p.t('live'), '{"on":true}', { qos: 1, properties })
      const [live] = await p.liveBefore(subscriber, publisher, p.t('live'))
      expect(props(live)).toEqual(properties)
      await p.retain(publisher, p.t('retained'), '{"on":true}', 1, properties)
      const [retained] = await p.retainedFor(await p.client(), [p.t('retained')], { publisher })
      expect(props(retained)).toEqual(properties)
    },
  },
  {
    id: 'request-response',
    section: '§3.3.2.3.5, §3.3.2.3.6, §4.10',
    requirements: ['MQTT-3.3.2-15', 'MQTT-3.3.2-16'],
    says:
      'Response Topic and Correlation Data reach the subscriber unchanged, so it can answer ' +
      'the request',
    async test(p) {
      const responder = await p.client()
      await responder.subscribe([p.t('request')], 1)
      const requester = await p.client()
      await requester.subscribe([p.t('response')], 1)
      const properties = {
        responseTopic: p.t('response'),
        correlationData: Buffer.from([0, 1, 0xfe, 0xff]),
      }
      await requester.publish(p.t('request'), 'what time is it?', { qos: 1, properties })
      const [request] = await p.liveBefore(responder, requester, p.t('request'))
      expect(props(request)).toEqual(properties)
      await responder.publish(request.properties!.responseTopic!, 'noon', {
        qos: 1,
        properties: { correlationData: request.properties!.correlationData },
      })
      const [response] = await p.liveBefore(requester, responder, p.t('response'))
      expect([seen(response), props(response)]).toEqual([
        `${p.t('response')} noon`,
        { correlationData: properties.correlationData },
      ])
    },
  },
  // Will
  {
    id: 'will-delay-reconnect',
    section: '§3.1.2.5, §3.1.3.2.2',
    requirements: ['MQTT-3.1.3-9'],
    says:
      'Will Delay Interval: the will is not published when the client reconnects within the ' +
      'delay',
    waits: true,
    async test(p) {
      const watcher = await p.client()
      await watcher.subscribe([p.t('availability')], 1)
      // Five seconds: time to reconnect on a machine much slower than this one, short enough to
      // wait out.
      const will = {
        topic: p.t('availability'),
        payload: Buffer.from('offline'),
        qos: 1 as const,
        retain: false,
        properties: { willDelayInterval: WILL_DELAY_S },
      }
      const device = await p.persistent('device', { expiry: 60, will })
      device.client.end()
      await p.persistent('device', { expiry: 60 })
      // Past the delay, counted from the reconnect (brokers count in whole seconds): a will not
      // cancelled would be out.
      await delay(WILL_DELAY_S * 1000 + ONE_SECOND_EXPIRED_MS)
      expect(seenAll(await p.liveBefore(watcher, await p.client(), p.t('availability')))).toEqual(
        [],
      )
    },
  },
  {
    id: 'will-delay-sent',
    section: '§3.1.2.5, §3.1.3.2.2',
    requirements: ['MQTT-3.1.2-8'],
    says:
      'Will Delay Interval: the will is published once the delay has passed without a ' +
      'reconnect, not before',
    waits: true,
    async test(p) {
      const watcher = await p.client()
      await watcher.subscribe([p.t('availability')], 1)
      const will = {
        topic: p.t('availability'),
        payload: Buffer.from('offline'),
        qos: 1 as const,
        retain: false,
        properties: { willDelayInterval: WILL_DELAY_S },
      }
      const device = await p.persistent('device', { expiry: 60, will })
      device.client.end()
      // A second: long enough for a broker that ignores the delay to have sent the will, and the
      // marker's round trip has the rest of the delay to come back before a will that waits for it.
      await delay(1000)
      expect(seenAll(await p.liveBefore(watcher, await p.client(), p.t('availability')))).toEqual(
        [],
      )
      expect(seen(await watcher.next('publish'))).toBe(`${p.t('availability')} offline`)
    },
  },
  {
    id: 'will-at-session-end',
    section: '§3.1.3.2.2',
    requirements: ['MQTT-3.1.2-8'],
    says:
      'a will whose delay outlasts the session goes when the session ends: at once, for a ' +
      'session that ends with the connection',
    waits: true,
    async test(p) {
      const watcher = await p.client()
      await watcher.subscribe([p.t('availability')], 1)
      // No Session Expiry Interval: the session ends with the connection.
      const device = await p.client({
        will: {
          topic: p.t('availability'),
          payload: Buffer.from('offline'),
          qos: 1,
          retain: false,
          properties: { willDelayInterval: 30 },
        },
      })
      device.end()
      // At once is in moments; a broker that waits the 30 s of the delay sends nothing in the first
      // ten.
      expect(await watcher.next('publish', 10_000).then(seen, () => 'no will within 10 s')).toBe(
        `${p.t('availability')} offline`,
      )
    },
  },
  {
    id: 'will-properties',
    section: '§3.1.3.2, §3.3.2.3',
    says:
      "the will's PUBLISH carries the will's properties except the Will Delay Interval, " +
      'which a PUBLISH must not carry (strict clients drop the connection)',
    waits: true,
    async test(p) {
      const watcher = await p.client()
      await watcher.subscribe([p.t('availability')], 1)
      const properties = { contentType: 'text/plain', userProperties: { reason: 'dropped' } }
      const will = {
        topic: p.t('availability'),
        payload: Buffer.from('offline'),
        qos: 1 as const,
        retain: false,
        properties: { ...properties, willDelayInterval: 1 },
      }
      const device = await p.persistent('device', { expiry: 60, will })
      device.client.end()
      const published = await watcher.next('publish')
      expect([seen(published), props(published)]).toEqual([
        `${p.t('availability')} offline`,
        properties,
      ])
    },
  },
  // Topic alias, packet size, shared subscriptions
  {
    id: 'topic-alias',
    section: '§3.2.2.3.8, §3.3.2.3.4',
    requirements: ['MQTT-3.3.2-12'],
    says:
      'the broker takes topic aliases (Topic Alias Maximum in CONNACK): a PUBLISH that sets ' +
      'one and a PUBLISH that uses it with an empty topic both reach subscribers, on the full ' +
      'topic and without the alias',
    async test(p) {
      const subscriber = await p.client()
      await subscriber.subscribe([p.t('sensor/temperature')], 1)
      const { client: publisher, connack } = await p.connect()
      expect(
        connack.properties?.topicAliasMaximum ?? 0,
        'Topic Alias Maximum in CONNACK',
      ).toBeGreaterThan(0)
      await publisher.publish(p.t('sensor/temperature'), '21.5', {
        qos: 1,
        properties: { topicAlias: 1 },
      })
      await publisher.publish('', '21.6', { qos: 1, properties: { topicAlias: 1 } })
      const got = await p.liveBefore(subscriber, publisher, p.t('sensor/temperature'))
      expect(got.map((packet) => [seen(packet), props(packet)])).toEqual(
        ['21.5', '21.6'].map((m) => [`${p.t('sensor/temperature')} ${m}`, {}]),
      )
    },
  },
  {
    id: 'server-topic-alias',
    section: '§3.1.2.11.5, §3.3.2.3.4',
    requirements: ['MQTT-3.3.2-9', 'MQTT-3.3.2-10'],
    says:
      'a client that accepts topic aliases (Topic Alias Maximum 1) may be sent a topic once ' +
      'with an alias and then the alias alone, never an alias above its maximum; a client that ' +
      'accepts none is sent every topic in full (a broker may send aliases; the bundled one does)',
    async test(p) {
      const accepting = await p.client({ properties: { topicAliasMaximum: 1 } })
      const plain = await p.client()
      for (const client of [accepting, plain]) await client.subscribe([p.t('sensor/+')], 1)
      const publisher = await p.client()
      for (const value of ['21.5', '21.6']) await publisher.publish(p.t('sensor/a'), value)
      await publisher.publish(p.t('sensor/b'), '7')
      const got = await p.liveBefore(accepting, publisher, p.t('sensor/a'))
      const aliases = got.map((packet) => [packet.topic, packet.properties?.topicAlias])
      expect(aliases.slice(0, 3)).toEqual([
        [p.t('sensor/a'), 1],
        ['', 1],
        [p.t('sensor/b'), undefined],
      ])
      // The three messages, and the first marker, which it got too.
      const full = await p.liveBefore(plain, publisher, p.t('sensor/a'))
      expect(full.map((packet) => [packet.topic !== '', packet.properties?.topicAlias])).toEqual(
        full.map(() => [true, undefined]),
      )
      expect(full.length).toBe(4)
    },
  },
  {
    id: 'server-keep-alive',
    section: '§3.2.2.3.14',
    requirements: ['MQTT-3.2.2-21', 'MQTT-3.2.2-22'],
    says:
      'a client that asks for no keepalive (0) or for 120 s is told a Server Keep Alive in ' +
      'CONNACK, which it must then use; one that asks for 30 s keeps it (a broker may set one; ' +
      'the bundled broker allows 60 s)',
    async test(p) {
      const told = async (keepalive: number) =>
        (await p.connect({ keepalive })).connack.properties?.serverKeepAlive
      expect([await told(0), await told(120), await told(30)]).toEqual([60, 60, undefined])
    },
  },
  {
    id: 'maximum-packet-size',
    section: '§3.1.2.11.4',
    requirements: ['MQTT-3.1.2-24', 'MQTT-3.1.2-25'],
    says:
      'the broker sends no client a packet larger than the Maximum Packet Size it asked for: ' +
      'a message too large for it is left out (QoS 0 or 1, live or retained), the client stays ' +
      'connected and gets the next one',
    async test(p) {
      const small = await p.client({ properties: { maximumPacketSize: 256 } })
      await small.subscribe([p.t('big')], 1)
      const publisher = await p.client()
      const big = 'x'.repeat(300)
      await publisher.publish(p.t('big'), big, { qos: 0 })
      await publisher.publish(p.t('big'), big, { qos: 1 })
      await publisher.publish(p.t('big'), 'fits', { qos: 1 })
      expect(seenAll(await p.liveBefore(small, publisher, p.t('big')))).toEqual([
        `${p.t('big')} fits`,
      ])
      await p.retain(publisher, p.t('retained'), big)
      expect(seenAll(await p.retainedFor(small, [p.t('retained')], { publisher }))).toEqual([])
    },
  },
  {
    id: 'shared-subscription',
    section: '§4.8.2, §3.2.2.3.13',
    requirements: ['MQTT-4.8.2-1', 'MQTT-4.8.2-2', 'MQTT-4.8.2-3'],
    says:
      'CONNACK says shared subscriptions are available; a group of three members of ' +
      '$share/group/filter and a plain subscriber beside it: each QoS 1 message reaches one ' +
      'member, every member takes a share, and the plain subscriber gets them all',
    async test(p) {
      const { client: first, connack } = await p.connect()
      expect(connack.properties?.sharedSubscriptionAvailable, 'in CONNACK').not.toBe(false)
      const members = [first, await p.client(), await p.client()]
      for (const member of members)
        expect(await member.subscribe([`$share/group/${p.t('jobs/+')}`], 1)).toEqual([1])
      const plain = await p.client()
      await plain.subscribe([p.t('jobs/+')], 1)
      const [all, ...shares] = (await spreadOver(p, members, 30, [plain])).reverse()
      expect(shares.flat().sort(), 'each job once over the group').toEqual(jobs(30).sort())
      expect(
        shares.map((share) => share.length > 0),
        'each member took a share',
      ).toEqual([true, true, true])
      expect(all.sort(), 'the plain subscriber got every job').toEqual(jobs(30).sort())
    },
  },
  {
    id: 'shared-member-leaves',
    section: '§4.8.2',
    says:
      'a member that leaves its group (UNSUBSCRIBE, or its connection closes) gets no more of ' +
      'its messages, and the others share them all: none is lost',
    async test(p) {
      const members = [await p.client(), await p.client(), await p.client()]
      for (const member of members) await member.subscribe([`$share/group/${p.t('jobs/+')}`], 1)
      members[2].send({
        cmd: 'unsubscribe',
        messageId: 7,
        unsubscriptions: [`$share/group/${p.t('jobs/+')}`],
      })
      expect((await members[2].next('unsuback')).granted, 'UNSUBACK').toEqual([0])
      let shares = await spreadOver(p, members, 12)
      expect(shares[2], 'the member that unsubscribed').toEqual([])
      expect(shares.flat().sort()).toEqual(jobs(12).sort())
      await members[1].disconnect()
      shares = await spreadOver(p, members.slice(0, 1), 6)
      expect(shares.flat().sort(), 'the last member got them all').toEqual(jobs(6).sort())
    },
  },
  {
    id: 'shared-no-local',
    section: '§3.8.3.1',
    requirements: ['MQTT-3.8.3-4'],
    says: 'No Local on a shared subscription is a Protocol Error: the broker closes the connection',
    async test(p) {
      const member = await p.client()
      member.send({
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: [{ topic: `$share/group/${p.t('jobs')}`, qos: 1, nl: true }],
      })
      const answer = await Promise.race([
        member.closed().then(() => 'the connection closed'),
        member
          .next('suback')
          .then((suback) => `SUBACK ${suback.granted}`)
          .catch(() => 'the connection closed'),
      ])
      expect(answer).toBe('the connection closed')
    },
  },
  {
    id: 'shared-no-retained',
    section: '§4.8.2, §3.3.1.3',
    says:
      'a shared subscription is sent no retained message when it is made (a plain one made ' +
      'after it is)',
    async test(p) {
      const publisher = await p.client()
      await p.retain(publisher, p.t('state'), 'kept')
      const member = await p.client()
      const got = await p.retainedFor(member, [`$share/group/${p.t('state')}`], { publisher })
      expect(seenAll(got)).toEqual([])
    },
  },
]

const departures: Departures = {
  mosquitto: {
    'server-topic-alias': { note: 'sends every topic in full' },
    'server-keep-alive': { note: 'sets none (its max_keepalive is 65535 unless configured)' },
    'will-at-session-end': { note: 'waits for the will delay after the session has ended' },
    'shared-no-local': { note: 'grants it (SUBACK 0x01)' },
    'shared-no-retained': { note: 'sends the retained message, as to a plain subscription' },
  },
  aedes: {
    'server-topic-alias': { note: 'sends every topic in full', fix: 'assignTopicAliases' },
    'server-keep-alive': {
      note: 'sets none (its keepaliveLimit option is off)',
      fix: 'imposeServerKeepAlive',
    },
    'shared-subscription': {
      note: 'refuses $share/ with SUBACK 0x9E, as its CONNACK says',
      fix: 'serveSharedSubscriptions',
    },
    'shared-member-leaves': {
      note: 'refuses $share/ with SUBACK 0x9E',
      fix: 'serveSharedSubscriptions',
    },
    'shared-no-local': {
      note: 'answers with SUBACK 0x9E and stays connected',
      fix: 'serveSharedSubscriptions',
    },
    'receive-maximum': {
      note: "sends every message at once, whatever the client's Receive Maximum",
      fix: 'keepWithinReceiveMaximum',
    },
    'overlapping-subscriptions': {
      note:
        'sends one copy, through whichever subscription comes first: at QoS 0, with one ' +
        'identifier',
      fix: 'deliverOnceForAllMatchingSubscriptions',
    },
    'will-properties': {
      note: "copies the Will Delay Interval into the will's PUBLISH",
      fix: 'keepWillDelayOutOfPublish',
    },
    'topic-alias': {
      note: 'announces no Topic Alias Maximum, so a client may not use aliases',
      fix: 'mqtt5Options',
    },
    'maximum-packet-size': {
      note: 'sends the client every message, however large',
      fix: 'sendNoPacketOverClientsMaximum',
    },
    'session-resumed-zero-expiry': {
      note: 'resumes the session (session present 1) but drops the messages queued in it',
      fix: 'deliverQueueOfResumedSession',
    },
    'session-kept': {
      note: "sends a message published once the session is back ahead of the queue's tail",
      fix: 'deliverQueuedBeforeLive',
    },
  },
}

const FILE = 'test/broker/conformance5.test.ts'
const results = conformanceSuites({ file: FILE, rules, departures, protocolVersion: 5 })
pagePartTest({
  name: 'mqtt-5',
  file: FILE,
  rules,
  departures,
  results,
  claims: false,
  protocolVersion: 5,
})
