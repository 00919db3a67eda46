// The article's ephemeral-topics experiment: a message published while nobody listens is gone, and a
// subscriber only gets what is published while it is subscribed. Then the precision the article leaves
// out (S1): a persistent session has the broker queue QoS 1 messages for a subscriber that is away.
// Run directly (npm run demo:ephemeral) it is the show; test/ plays it as a check.
import { isMain } from '../lib/cli.ts'
import { show } from './show.ts'
import type { Scenario } from './stage.ts'

const publisher = 'demos/basic-pubsub/publisher.ts'
const subscriber = 'demos/basic-pubsub/subscriber.ts'

export const ephemeral: Scenario = {
  name: 'ephemeral',
  title: 'a message nobody listens to is dropped; a subscriber only gets what is published while it listens',
  async play(stage) {
    const topic = stage.topic('my_topic')
    const topicArgs = stage.topicFlag('my_topic')

    await stage.step('Run the publisher while no subscriber is running')
    await stage.run('publisher', publisher, topicArgs)

    await stage.step('Now start a subscriber')
    const first = stage.spawn('subscriber-1', subscriber, topicArgs)
    await first.expect(`subscribed to ${topic} (QoS 0)`, undefined, 'subscriber-1 is subscribed and waiting')
    await stage.barrier(topic, [first], 'C8', 'subscriber-1 received nothing: the broker dropped the message, as no one was subscribed')

    await stage.step('Run the publisher again while subscriber-1 listens')
    await stage.run('publisher', publisher, topicArgs)
    await first.expect(`${topic} on`, 'C9', 'this time subscriber-1 printed the message')

    await stage.step('Publish once more, then start a second subscriber')
    await stage.run('publisher', publisher, [...topicArgs, '--message', 'off'])
    await first.expect(`${topic} off`, 'C10', 'subscriber-1, which was listening, printed it')
    const second = stage.spawn('subscriber-2', subscriber, topicArgs)
    await second.expect(`subscribed to ${topic} (QoS 0)`, undefined, 'subscriber-2 is subscribed and waiting')
    await stage.barrier(topic, [second], 'C10', 'subscriber-2, which started after it was sent, received nothing')

    await stage.step('Stop both subscribers')
    await Promise.all([first.stop(), second.stop()])

    // S1: "ephemeral" is what a clean session gets. A persistent session is the exception.
    const id = stage.clientId('alice')
    const persistent = ['--id', id, '--no-clean', '--qos', '1', ...topicArgs]

    await stage.step('Start a subscriber with a persistent session: a fixed id, --no-clean, QoS 1')
    const alice = stage.spawn('alice', subscriber, persistent)
    await alice.expect(`connected to ${stage.url}, result code 0, session present: no`, undefined,
      'the broker had no session for this client id yet')
    await alice.expect(`subscribed to ${topic} (QoS 1)`, undefined, 'alice is subscribed at QoS 1')

    await stage.step('Stop alice, then publish one QoS 1 and one QoS 0 message while she is away')
    await alice.stop()
    await stage.run('publisher', publisher, [...topicArgs, '--qos', '1', '--message', 'kept for alice'])
    await stage.run('publisher', publisher, [...topicArgs, '--message', 'not kept'])

    await stage.step('Start alice again with the same id and --no-clean')
    const back = stage.spawn('alice', subscriber, persistent)
    await back.expect(`connected to ${stage.url}, result code 0, session present: yes`, 'S1',
      'the broker kept her session while she was away')
    await back.expectAll([`subscribed to ${topic} (QoS 1)`, `${topic} kept for alice`], 'S1',
      'she received the QoS 1 message the broker queued for her')
    await stage.barrier(topic, [back], 'S1', 'the QoS 0 message was not queued')

    await stage.step('Stop alice, publish at QoS 1, and start her with a clean session instead')
    await back.stop()
    await stage.run('publisher', publisher, [...topicArgs, '--qos', '1', '--message', 'dropped with the session'])
    const clean = stage.spawn('alice', subscriber, ['--id', id, '--qos', '1', ...topicArgs])
    await clean.expect(`subscribed to ${topic} (QoS 1)`, undefined, 'alice is back, with a clean session')
    await stage.barrier(topic, [clean], 'S1', 'a clean session starts empty: the queued message was thrown away with the old session')
    await clean.stop()
  },
}

if (isMain(import.meta.url)) await show(ephemeral)
