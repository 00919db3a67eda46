// The article's topic-hierarchy experiment: topic levels separated by /, and subscribers whose
// filters use + (one level) and # (every level below) side by side, so the audience sees which
// filter gets which message. Then the specification's edges the article leaves out (S3, S4, S5).
// Its programs, demos/wildcards/, default to home/living_room/light and home/living_room/+; the
// other topics and filters are given with --topic. Run directly (npm run demo:wildcards) it is the
// show; test/ plays it as a check.
import { isMain } from '../lib/cli.ts'
import { show } from './stage/show.ts'
import type { Scenario, Stage } from './stage/stage.ts'
import type { Proc } from './stage/proc.ts'

const publisher = 'demos/wildcards/publisher.ts'
const subscriber = 'demos/wildcards/subscriber.ts'
/**
 * The topic and the filter that the two programs default to: the change this experiment makes to
 * them.
 */
const PUBLISHED = 'home/living_room/light'
const SUBSCRIBED = 'home/living_room/+'

export const wildcards: Scenario = {
  name: 'wildcards',
  steps: 10,
  title: 'subscribers with exact, + and # filters side by side: which one gets which message',
  async play(stage) {
    const t = (name: string) => stage.topic(name)
    // The command a learner types: --topic only where it is not the program's default.
    const topicArgs = (topic: string, byDefault: string) =>
      topic === byDefault ? stage.topicFlag(topic) : ['--topic', t(topic)]
    const publish = (topic: string) =>
      stage.run('publisher', publisher, topicArgs(topic, PUBLISHED))

    await stage.step('Start one subscriber per filter; each is labelled with its filter')
    const subscribers = new Map<string, Proc>()
    for (const filter of [
      'home/living_room/light',
      'home/living_room/+',
      'home/+/light',
      'home/#',
      '#',
    ]) {
      subscribers.set(filter, stage.spawn(filter, subscriber, topicArgs(filter, SUBSCRIBED)))
    }
    const sub = (filter: string) => subscribers.get(filter)!
    for (const [filter, proc] of subscribers) await proc.until(`subscribed to ${t(filter)} (QoS 0)`)
    stage.ok({ says: 'all five are subscribed' })

    await stage.step('Subscribe to a topic under $SYS, where the broker speaks of itself')
    // Under a topic prefix (a shared broker), # becomes <prefix>/# and cannot show this.
    if (stage.prefixed)
      stage.say('not applicable here: under a topic prefix, # is <prefix>/# and matches no $ topic')
    else {
      stage.say(
        'brokers publish facts about themselves under $SYS; the bundled one and Mosquitto keep ' +
          'their version there, retained',
      )
      const sys = stage.spawn('$SYS/broker/version', subscriber, ['--topic', '$SYS/broker/version'])
      await sys.expect(/^\$SYS\/broker\/version .+ \(retained\)$/, {
        says: 'a subscriber that names the $SYS topic gets it',
      })
      await stage.barrier(t('home/living_room/light'), [sub('#')], {
        claim: 'S4',
        says:
          '# got nothing: a filter that starts with a ' +
          'wildcard does not match topics that start with $',
      })
      await sys.stop()
    }

    await stage.step('Publish to home/living_room/light')
    await publish('home/living_room/light')
    await expectMessage(stage, t('home/living_room/light'), [
      sub('home/living_room/light'),
      sub('home/living_room/+'),
      sub('home/+/light'),
      sub('home/#'),
      sub('#'),
    ])
    stage.ok({ claim: 'C14', says: 'the exact filter home/living_room/light got its own topic' })

    await stage.step('Publish to home/living_room/tv')
    await publish('home/living_room/tv')
    await expectMessage(stage, t('home/living_room/tv'), [
      sub('home/living_room/+'),
      sub('home/#'),
      sub('#'),
    ])
    stage.ok({
      claim: 'C15',
      says: 'home/living_room/+ got both home/living_room/light and home/living_room/tv',
    })
    await stage.barrier(t('home/living_room/light'), [sub('home/living_room/light')], {
      claim: 'C14',
      says: 'home/living_room/light did not get home/living_room/tv',
    })
    await stage.barrier(t('home/living_room/light'), [sub('home/+/light')], {
      claim: 'C16',
      says: 'home/+/light did not get home/living_room/tv',
    })

    await stage.step('Publish to home/bedroom/light')
    await publish('home/bedroom/light')
    await expectMessage(stage, t('home/bedroom/light'), [
      sub('home/+/light'),
      sub('home/#'),
      sub('#'),
    ])
    stage.ok({ claim: 'C16', says: 'home/+/light got the light of both rooms' })
    await stage.barrier(
      t('home/living_room/light'),
      [sub('home/living_room/light'), sub('home/living_room/+')],
      { says: 'the living-room filters did not get the bedroom' },
    )

    await stage.step('Publish to home itself, one level up')
    await publish('home')
    await expectMessage(stage, t('home'), [sub('home/#'), sub('#')])
    stage.ok({ claim: 'S3', says: 'home/# also matches home, the level it hangs from' })
    await stage.barrier(
      t('home/living_room/light'),
      [sub('home/living_room/light'), sub('home/living_room/+'), sub('home/+/light')],
      {
        claim: 'S3',
        says: '+ needs a level to fill: home/+/light and home/living_room/+ did not get home',
      },
    )

    await stage.step('Publish to home//light, whose middle level is empty')
    await publish('home//light')
    await expectMessage(stage, t('home//light'), [sub('home/+/light'), sub('home/#'), sub('#')])
    stage.ok({
      claim: 'S3',
      says: 'an empty level is still a level: home/+/light matched home//light',
    })
    await stage.barrier(
      t('home/living_room/light'),
      [sub('home/living_room/light'), sub('home/living_room/+')],
      { says: 'the living-room filters did not get home//light' },
    )
    stage.ok({ claim: 'C17', says: '# got every message, at every level' })

    await stage.step('Try to publish to a topic with a wildcard in it')
    const refused = await stage.run('publisher', publisher, ['--topic', t('home/+/light')], 1)
    await refused.expectError(
      `error: cannot publish to "${t('home/+/light')}": ` +
        `a topic name must not contain the wildcards + or # (MQTT 3.1.1 §4.7.1); ` +
        `publish to a concrete topic such as home/bedroom/light`,
      {
        claim: 'S5',
        says: 'a topic name in PUBLISH cannot hold a wildcard: refused before it left',
      },
    )

    await stage.step('Try to subscribe with a wildcard that does not fill its level')
    const invalid = await stage.run('subscriber', subscriber, ['--topic', t('home/liv+')], 1)
    await invalid.expectError(
      `error: cannot subscribe to "${t('home/liv+')}": ` +
        `+ must fill a whole level, as in home/+/light (MQTT 3.1.1 §4.7.1.3)`,
      { claim: 'S3', says: 'home/liv+ is not a valid filter' },
    )

    await stage.step('Stop the subscribers')
    await Promise.all([...subscribers.values()].map((proc) => proc.stop()))
  },
}

/** Each of `procs` prints the message "on" that was just published to `topic`: one tick for all. */
async function expectMessage(stage: Stage, topic: string, procs: Proc[]): Promise<void> {
  for (const proc of procs) await proc.until(`${topic} on`)
  stage.ok({ says: `${procs.map((proc) => proc.label).join(', ')} got it` })
}

if (isMain(import.meta.url)) await show(wildcards)
