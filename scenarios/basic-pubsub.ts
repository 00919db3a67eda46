// The article's first experiment: a subscriber listens on my_topic, a publisher sends "on", the
// subscriber prints it. Run directly (npm run demo:basic-pubsub) it is the show; test/ plays it as
// a check.
import { isMain } from '../lib/cli.ts'
import { show } from './stage/show.ts'
import type { Scenario } from './stage/stage.ts'

export const basicPubsub: Scenario = {
  name: 'basic-pubsub',
  steps: 3,
  title: 'a subscriber listens on my_topic, a publisher sends "on", the subscriber prints it',
  async play(stage) {
    const topic = stage.topic('my_topic')
    const topicArgs = stage.topicFlag('my_topic')

    await stage.step('Start a subscriber on my_topic and let it wait for messages')
    const subscriber = stage.spawn('subscriber', 'demos/basic-pubsub/subscriber.ts', topicArgs)
    await subscriber.expect(`connected to ${stage.url}, result code 0`, {
      claim: 'C6',
      says:
        'the connect callback ran when the broker ' +
        'accepted the connection (CONNACK, result code 0)',
    })
    await subscriber.expect(`subscribed to ${topic} (QoS 0)`, {
      says: 'the subscriber is subscribed and waiting',
    })

    await stage.step('Run the publisher: it connects, publishes "on" to my_topic and disconnects')
    const publisher = await stage.run('publisher', 'demos/basic-pubsub/publisher.ts', topicArgs)
    await publisher.expect(`published "on" to ${topic}`, {
      claim: 'C5',
      says: 'the publisher sent its message and exited',
    })
    await subscriber.expect(`${topic} on`, {
      claim: 'C7',
      says: 'the subscriber printed the topic and the payload',
    })
    stage.say('the broker passed the message from one client to the other')
    stage.ok({ claim: 'C1', says: 'two clients, one broker: neither client knows the other' })

    await stage.step('Stop the subscriber with Ctrl-C')
    await subscriber.stop()
  },
}

if (isMain(import.meta.url)) await show(basicPubsub)
