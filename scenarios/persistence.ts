// Beyond the article: a broker that remembers. By default the bundled broker keeps retained
// messages and sessions in memory and forgets them when it stops; with --persist DIR it keeps them
// on disk, so they outlive a restart and even a kill. The broker here is a real process the stage
// stops and kills. Run directly (npm run demo:persistence) it is the show; test/ plays it as a
// check.
import { join } from 'node:path'
import { isMain } from '../lib/cli.ts'
import { show } from './stage/show.ts'
import type { Scenario, Stage } from './stage/stage.ts'
import type { Proc } from './stage/proc.ts'
import type { Expectation } from './stage/scenario.ts'

const broker = 'lib/broker/main.ts'
const publisher = 'demos/basic-pubsub/publisher.ts'
const subscriber = 'demos/basic-pubsub/subscriber.ts'

export const persistence: Scenario = {
  name: 'persistence',
  steps: 11,
  title:
    'with --persist the broker keeps retained messages and sessions on disk, across a restart ' +
    'and a kill',
  needs: { none: true },
  // Brokers started, stopped and killed with their stores: the longest play, twice the others'
  // budget.
  budget: 240,
  async play(stage) {
    const topic = stage.topic('my_topic')
    const topicArgs = stage.topicFlag('my_topic')
    const store = join(await stage.tempDir(), 'store')
    if (stage.options.url)
      stage.say(
        `this experiment is about the bundled broker's store: it runs brokers of its own, not ` +
          `the one at ${stage.url}`,
      )

    /**
     * Start the broker on `port` (0 at first: a free one), wait until it is ready and point the
     * stage at it.
     */
    const start = async (port: number, args: string[] = []) => {
      const proc = stage.spawn('broker', broker, ['--port', String(port), ...args], {
        background: true,
      })
      await proc.until(/^broker ready on mqtt:\/\/\S+; Ctrl-C to stop$/)
      const url = proc.output
        .find((l) => l.text.startsWith('broker ready on '))!
        .text.match(/^broker ready on (\S+);/)![1]
      await stage.useBroker(url)
      return { proc, url, port: Number(new URL(url).port) }
    }
    /** A new subscriber that must get `message` (retained), or, when undefined, nothing at all. */
    const subscribe = async (met: Expectation, message?: string, args: string[] = []) => {
      const proc = stage.spawn('subscriber', subscriber, [...args, ...topicArgs])
      if (message) {
        const retained = `${topic} ${message} (retained)`
        await proc.expectAll([`subscribed to ${topic} (QoS 0)`, retained], met)
      } else {
        await proc.expect(`subscribed to ${topic} (QoS 0)`, {
          says: 'the subscriber is subscribed',
        })
        await stage.barrier(topic, [proc], met)
      }
      await proc.stop()
    }
    const publishRetained = async (message: string) => {
      // QoS 1: the broker acknowledges once it has stored the message, so a kill right after cannot
      // beat it.
      await stage.run('publisher', publisher, [
        '--retain',
        '--qos',
        '1',
        '--message',
        message,
        ...topicArgs,
      ])
    }

    await stage.step('Start the bundled broker as usual, in memory, and publish a retained message')
    let running = await start(0)
    await publishRetained('on')

    await stage.step('Stop the broker with Ctrl-C, start it again, start a subscriber')
    await running.proc.stop()
    running = await start(running.port)
    await subscribe({
      says:
        'the subscriber got nothing: a broker without --persist forgets ' +
        'its retained messages when it stops',
    })

    await stage.step(
      'Restart it with --persist and a directory, and publish the retained message again',
    )
    await running.proc.stop()
    running = await start(running.port, ['--persist', store])
    await publishRetained('on')

    await stage.step(
      'Stop the broker with Ctrl-C, start it again on the same directory, start a subscriber',
    )
    await running.proc.stop()
    running = await start(running.port, ['--persist', store])
    await subscribe({ claim: 'C11', says: 'the retained message came back from the disk' }, 'on')

    await stage.step(
      'Publish "off", retained, kill the broker with SIGKILL as a crash would, start it again, ' +
        'start a subscriber',
    )
    await publishRetained('off')
    await kill(stage, running.proc)
    running = await start(running.port, ['--persist', store])
    await subscribe(
      {
        claim: 'C11',
        says:
          'a broker killed right after it acknowledged "off" still had it: ' +
          'the store is written as messages arrive',
      },
      'off',
    )

    await stage.step(
      'Publish an empty retained message, kill and restart the broker, start a subscriber',
    )
    await publishRetained('')
    await kill(stage, running.proc)
    running = await start(running.port, ['--persist', store])
    await subscribe({
      claim: 'S2',
      says: 'nothing: the empty retained message deleted the stored one, on disk too',
    })

    const alice = ['--id', stage.clientId('alice'), '--no-clean', '--qos', '1', ...topicArgs]
    await stage.step('alice subscribes with a persistent session at QoS 1, and leaves')
    const first = stage.spawn('alice', subscriber, alice)
    await first.expect(`subscribed to ${topic} (QoS 1)`, {
      says: 'alice is subscribed at QoS 1 with a session the broker keeps',
    })
    await first.stop()

    await stage.step(
      'While she is away, publish a QoS 1 message for her, then kill and restart the broker',
    )
    await stage.run('publisher', publisher, [
      '--qos',
      '1',
      '--message',
      'kept for alice',
      ...topicArgs,
    ])
    await kill(stage, running.proc)
    running = await start(running.port, ['--persist', store])

    await stage.step('alice comes back')
    const back = stage.spawn('alice', subscriber, alice)
    await back.expect(`connected to ${running.url}, result code 0, session present: yes`, {
      claim: 'S1',
      says: 'the broker still had her session after the kill',
    })
    await back.expectAll([`subscribed to ${topic} (QoS 1)`, `${topic} kept for alice`], {
      claim: 'S1',
      says: 'and the QoS 1 message it had queued for her',
    })
    await back.stop()

    await stage.step('Try to start a second broker on the same directory while this one runs')
    const second = await stage.run('second-broker', broker, ['--port', '0', '--persist', store], 1)
    await second.expectError(
      `error: --persist ${store} is in use by another running broker (it holds the LOCK file); ` +
        `stop that broker, or give another directory`,
      { says: 'refused: one directory, one broker; the store is left as it was' },
    )

    await stage.step('Stop the broker')
    await running.proc.stop()
    stage.ok({
      says:
        'what it stored waits in the directory for its next ' +
        'start (the stage removes its temporary directory now)',
    })
  },
}

/**
 * SIGKILL: the broker gets no chance to close anything, as in a crash or a power cut of the
 * process.
 */
async function kill(stage: Stage, proc: Proc): Promise<void> {
  stage.say('kill -KILL: the broker stops at once, closing nothing')
  await proc.stop('SIGKILL')
}

if (isMain(import.meta.url)) await show(persistence)
