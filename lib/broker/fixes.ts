// The departures of aedes from MQTT that the bundled broker corrects, one file each in ./fixes/,
// each headed by the requirement IDs it keeps ([MQTT-4.6.0-6]), or by the sections of the
// specification where it numbers none. Each fix is made of aedes' own hooks (no fork, no patch),
// and a test runs aedes without them to show each is needed: test/broker/conformance.test.ts and
// conformance5.test.ts (which name them on docs/conformance.md),
// test/broker/no-loss-at-close.test.ts, test/broker/retained-before-live.test.ts, and the --persist
// part of test/experiments/persistence.test.ts. ./broker.ts applies them all to every aedes it
// starts; add a new fix to applyFixes. Hooks run on every message, so each fix keeps the common
// case to a few comparisons: the bundled broker must relay as fast as aedes alone (npm run bench).
import type { Aedes, AedesOptions } from 'aedes'
import { keepWithinReceiveMaximum } from './fixes/receive-maximum.ts'
import { sendNoPacketOverClientsMaximum } from './fixes/client-maximum-packet-size.ts'
import { keepDollarTopicsFromWildcards } from './fixes/dollar-topics.ts'
import { handleWhatArrivedBeforeTheEnd } from './fixes/end-after-work.ts'
import { deliverAtGrantedQoS } from './fixes/granted-qos.ts'
import { deliverOnceForAllMatchingSubscriptions } from './fixes/once-per-message.ts'
import { dropOnlyTrueDuplicates } from './fixes/only-true-duplicates.ts'
import { keepEachClientsPublishesInOrder } from './fixes/publishes-in-order.ts'
import { deliverQueuedBeforeLive } from './fixes/queued-before-live.ts'
import { deliverQueueOfResumedSession } from './fixes/resumed-session.ts'
import { sendRetainedBeforeLive } from './fixes/retained-before-live.ts'
import { storeInOrder } from './fixes/store-in-order.ts'
import { keepWillDelayOutOfPublish } from './fixes/will-delay.ts'
import { type ClusterShares, serveSharedSubscriptions } from './fixes/shared-subscriptions.ts'
import { imposeServerKeepAlive } from './fixes/server-keep-alive.ts'
import { assignTopicAliases } from './fixes/topic-aliases.ts'

/**
 * MQTT 5 §3.2.2.3.8 [MQTT-3.2.2-17] [MQTT-3.2.2-18]: a client may use topic aliases only up to the
 * Topic Alias Maximum the broker announces in CONNACK, and aedes announces none unless told, so a
 * client that aliases its topics (MQTT.js can do it by itself) is cut off with DISCONNECT 0x94. Ten
 * per connection, as Mosquitto.
 */
export const mqtt5Options: AedesOptions = { topicAliasMaximum: 10 }

/**
 * Every fix, in the order its hooks must wrap each other; `onDisk` when aedes keeps its store on
 * disk (--persist) or on Redis, `onRedis` when its messages also flow through Redis (--redis),
 * `shares` how brokers on one Redis agree on the member of a shared subscription's group.
 */
export function applyFixes(
  aedes: Aedes,
  {
    onDisk = false,
    onRedis = false,
    shares,
  }: { onDisk?: boolean; onRedis?: boolean; shares?: ClusterShares } = {},
): void {
  // Only a store on disk makes aedes route messages out of the order it numbered them in.
  if (onDisk) {
    storeInOrder(aedes)
    dropOnlyTrueDuplicates(aedes)
  }
  if (!onRedis) sendRetainedBeforeLive(aedes)
  keepDollarTopicsFromWildcards(aedes)
  deliverAtGrantedQoS(aedes)
  keepEachClientsPublishesInOrder(aedes)
  deliverQueuedBeforeLive(aedes)
  // The MQTT 5 fixes after the 3.1.1 ones: the size check must see each message as it leaves them.
  keepWillDelayOutOfPublish(aedes)
  deliverQueueOfResumedSession(aedes)
  deliverOnceForAllMatchingSubscriptions(aedes)
  sendNoPacketOverClientsMaximum(aedes)
  keepWithinReceiveMaximum(aedes)
  // Last, so that its hooks see each PUBLISH as it arrives, before the ordering fix holds it back.
  handleWhatArrivedBeforeTheEnd(aedes)
  imposeServerKeepAlive(aedes)
  assignTopicAliases(aedes)
  // After the fixes that change what a member is sent: its hook numbers the message as it leaves.
  serveSharedSubscriptions(aedes, shares)
}
