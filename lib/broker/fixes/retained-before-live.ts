// A new subscriber gets a topic's retained message before anything published there after it.
// Keeps [MQTT-3.3.1-6] and [MQTT-4.6.0-6] of MQTT 3.1.1, [MQTT-3.3.1-9] and [MQTT-4.6.0-5] of
// MQTT 5 (§3.3.1.3, §4.6).
import type { Aedes } from 'aedes'

/**
 * A new subscriber gets a topic's retained message before anything published there after it. aedes
 * adds a subscription to its message flow, which says so on the next turn of the event loop
 * (setImmediate); only then does aedes send the SUBACK and the retained messages. A PUBLISH read in
 * that turn, from a client that published at the moment the subscriber subscribed, reached the
 * subscriber first, and the retained message, older, came after it, every time: a Home Assistant
 * that follows a device's availability as it discovers it was left with the stale value. The
 * in-memory flow adds a subscription at once, so here it says so before any more input is read. (On
 * Redis the flow must wait for Redis, and this is not done; with a store on disk, aedes reads the
 * retained messages from the disk, and a PUBLISH may still come first.)
 */
export function sendRetainedBeforeLive(aedes: Aedes): void {
  // aedes keeps its message flow in `mq`, which its types leave out.
  const mq = (
    aedes as Aedes & { mq: { on(topic: string, notify: unknown, done?: () => void): unknown } }
  ).mq
  const on = mq.on.bind(mq)
  mq.on = (topic, notify, done) => {
    on(topic, notify)
    if (done) process.nextTick(done)
    return mq
  }
}
