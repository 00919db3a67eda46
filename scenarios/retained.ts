// The article's retained-messages experiment: the broker keeps the last message published with the
// retain flag on a topic and hands it to every new subscriber; an empty retained message removes
// it. Its publisher, demos/retained/publisher.ts, sets retain: true; the subscriber is the basic
// one. Run directly (npm run demo:retained) it is the show; test/ plays it as a check.
import { isMain } from '../lib/cli.ts'
import { show } from './stage/show.ts'
import type { Scenario } from './stage/stage.ts'

const publisher = 'demos/retained/publisher.ts'
const subscriber = 'demos/retained/subscriber.ts'

export const retained: Scenario = {
  name: 'retained',
  steps: 8,
  title:
    'the broker keeps the last retained message of a topic and gives it to every new subscriber',
  async play(stage) {
    const topic = stage.topic('my_topic')
    const topicArgs = stage.topicFlag('my_topic')
    stage.retains(topic)

    await stage.step(
      'With no subscriber running, publish once: this publisher sets the retain flag',
    )
    await stage.run('publisher', publisher, topicArgs)

    await stage.step('Start a subscriber')
    const first = stage.spawn('subscriber-1', subscriber, topicArgs)
    await first.expectAll([`subscribed to ${topic} (QoS 0)`, `${topic} on (retained)`], {
      claim: 'C11',
      says: 'subscriber-1 printed the message published before it started, marked as retained',
    })

    await stage.step('Stop it and start it again, without publishing anything')
    await first.stop()
    const again = stage.spawn('subscriber-1', subscriber, topicArgs)
    await again.expectAll([`subscribed to ${topic} (QoS 0)`, `${topic} on (retained)`], {
      claim: 'C12',
      says: 'it printed the same retained message again',
    })
    await stage.barrier(topic, [again], { says: 'it printed the retained message once, not twice' })

    await stage.step('While it runs, publish three retained messages in a row')
    await stage.run('publisher', publisher, [
      ...topicArgs,
      '--message',
      'one',
      '--message',
      'two',
      '--message',
      'three',
    ])
    for (const message of ['one', 'two', 'three']) {
      await again.expect(`${topic} ${message}`, { says: `subscriber-1 got "${message}" live` })
    }
    stage.ok({
      claim: 'S2',
      says:
        'live deliveries carry no retained mark: ' +
        'the RETAIN flag is cleared for subscribers already listening',
    })

    await stage.step('Start a second subscriber')
    const second = stage.spawn('subscriber-2', subscriber, topicArgs)
    await second.expectAll([`subscribed to ${topic} (QoS 0)`, `${topic} three (retained)`], {
      claim: 'C13',
      says: 'subscriber-2 received the last message only',
    })
    await stage.barrier(topic, [second], {
      claim: 'C13',
      says: 'and none of the earlier ones: a topic retains one message',
    })

    await stage.step('Publish an empty retained message to delete the retained one')
    await stage.run('publisher', publisher, [...topicArgs, '--message', ''])
    await again.expect(`${topic} (empty)`, {
      says: 'subscribers already listening get the empty message like any other',
    })

    await stage.step('Start a third subscriber')
    const third = stage.spawn('subscriber-3', subscriber, topicArgs)
    await third.expect(`subscribed to ${topic} (QoS 0)`, { says: 'subscriber-3 is subscribed' })
    await stage.barrier(topic, [third], {
      claim: 'S2',
      says: 'it received nothing: the empty retained message removed what the topic kept',
    })

    await stage.step('Stop the subscribers')
    await Promise.all([again.stop(), second.stop(), third.stop()])
  },
}

if (isMain(import.meta.url)) await show(retained)
