// The article's ephemeral-topics experiment: a message published while nobody listens is gone, and
// a subscriber only gets what is published while it is subscribed. Then the precision the article
// leaves out (S1): a persistent session has the broker queue QoS 1 messages for a subscriber that
// is away. Its programs, demos/ephemeral/, are alice, a subscriber that keeps her session (a fixed
// client id, clean: false, QoS 1), and a publisher at QoS 1. Run directly (npm run demo:ephemeral)
// it is the show; test/ plays it as a check.
import { isMain } from '../lib/cli.ts'
import { show } from './stage/show.ts'
import type { Scenario } from './stage/stage.ts'

const publisher = 'demos/ephemeral/publisher.ts'
const subscriber = 'demos/ephemeral/subscriber.ts'

export const ephemeral: Scenario = {
  name: 'ephemeral',
  steps: 7,
  title:
    'a message nobody listens to is dropped; a subscriber only gets what is published while it ' +
    'listens, or while its session is kept',
  async play(stage) {
    const topic = stage.topic('my_topic')
    const topicArgs = stage.topicFlag('my_topic')
    const alice = [...stage.idFlag('alice'), ...topicArgs]
    const bob = ['--id', stage.clientId('bob'), ...topicArgs]

    await stage.step('Run the publisher while no subscriber is running')
    await stage.run('publisher', publisher, topicArgs)

    await stage.step('Now start the subscriber, alice')
    const first = stage.spawn('alice', subscriber, alice)
    await first.expect(`connected to ${stage.url}, result code 0, session present: no`, {
      says: 'the broker had no session for alice yet: she has never been here',
    })
    await first.expect(`subscribed to ${topic} (QoS 1)`, {
      says: 'alice is subscribed and waiting',
    })
    await stage.barrier(topic, [first], {
      claim: 'C8',
      says: 'alice received nothing: the broker dropped the message, as no one was subscribed',
    })

    await stage.step('Run the publisher again while alice listens')
    await stage.run('publisher', publisher, topicArgs)
    await first.expect(`${topic} on`, { claim: 'C9', says: 'this time alice printed the message' })

    await stage.step('Publish once more, then start a second subscriber, bob')
    await stage.run('publisher', publisher, [...topicArgs, '--message', 'off'])
    await first.expect(`${topic} off`, {
      claim: 'C10',
      says: 'alice, who was listening, printed it',
    })
    const second = stage.spawn('bob', subscriber, bob)
    await second.expect(`subscribed to ${topic} (QoS 1)`, { says: 'bob is subscribed and waiting' })
    await stage.barrier(topic, [second], {
      claim: 'C10',
      says: 'bob, who started after it was sent, received nothing',
    })

    await stage.step(
      'Stop both subscribers, then publish one QoS 1 and one QoS 0 message while they are away',
    )
    await Promise.all([first.stop(), second.stop()])
    stage.say(
      'they keep their sessions: a fixed client id and clean: false, the change this experiment ' +
        'makes to the subscriber',
    )
    await stage.run('publisher', publisher, [...topicArgs, '--message', 'kept for alice'])
    await stage.run('publisher', publisher, [...topicArgs, '--qos', '0', '--message', 'not kept'])

    await stage.step('Start alice again')
    stage.say(
      'her subscription is part of the session: the broker may send what it queued as soon as ' +
        'she connects, before it answers the SUBSCRIBE she sends again',
    )
    const back = stage.spawn('alice', subscriber, alice)
    await back.expect(`connected to ${stage.url}, result code 0, session present: yes`, {
      claim: 'S1',
      says: 'the broker kept her session while she was away',
    })
    await back.expectAll([`subscribed to ${topic} (QoS 1)`, `${topic} kept for alice`], {
      claim: 'S1',
      says: 'she received the QoS 1 message the broker queued for her',
    })
    await stage.barrier(topic, [back], { claim: 'S1', says: 'the QoS 0 message was not queued' })

    await stage.step(
      'Stop alice, publish at QoS 1, and start both with --clean: a clean session instead',
    )
    await back.stop()
    await stage.run('publisher', publisher, [...topicArgs, '--message', 'dropped with the session'])
    const clean = stage.spawn('alice', subscriber, [...alice, '--clean'])
    const cleanBob = stage.spawn('bob', subscriber, [...bob, '--clean'])
    await clean.expect(`subscribed to ${topic} (QoS 1)`, {
      says: 'alice is back, with a clean session',
    })
    await cleanBob.expect(`subscribed to ${topic} (QoS 1)`, { says: 'and bob too' })
    await stage.barrier(topic, [clean, cleanBob], {
      claim: 'S1',
      says:
        'a clean session starts empty: what the broker ' +
        'queued was thrown away with the old sessions',
    })
    await Promise.all([clean.stop(), cleanBob.stop()])
  },
}

if (isMain(import.meta.url)) await show(ephemeral)
