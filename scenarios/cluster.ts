// Beyond the article: more than one broker. Two bundled brokers, A and B, share one Redis: every
// message, retained message and session goes through it, so a client may use either broker, and a
// device that knows both carries on when one of them dies. The stage starts Redis and the brokers
// as real processes, and kills A as a crash would. Run directly (npm run demo:cluster) it is the
// show; test/experiments/cluster.test.ts plays it as a check.
import { isMain } from '../lib/cli.ts'
import { show } from './stage/show.ts'
import type { Scenario, Stage } from './stage/stage.ts'
import { freePort, missingProgram } from './stage/scenario.ts'

const broker = 'lib/broker/main.ts'
const publisher = 'demos/basic-pubsub/publisher.ts'
const subscriber = 'demos/basic-pubsub/subscriber.ts'
const device = 'demos/discovery/publisher.ts'

/** What to do where Redis is missing. */
const REDIS_MISSING =
  'redis-server is not installed: apt-get install redis-server (or brew install redis), then run ' +
  'this again'

export const cluster: Scenario = {
  name: 'cluster',
  steps: 13,
  title:
    'two bundled brokers on one Redis: clients of either broker see the same messages, retained ' +
    'messages and sessions, and a device moves to B when A dies',
  needs: { none: true, program: { command: 'redis-server', missing: REDIS_MISSING } },
  async play(stage) {
    const missing = missingProgram(cluster)
    if (missing) throw stage.failure(missing)
    if (stage.options.url)
      stage.say(
        `this experiment is about bundled brokers sharing a Redis: it runs brokers of its own, ` +
          `not the one at ${stage.options.url}`,
      )
    const topic = stage.topic('my_topic')
    const topicArgs = stage.topicFlag('my_topic')

    await stage.step('Start a Redis that keeps everything in memory')
    const port = await freePort()
    const redis = stage.spawnCommand(
      'redis',
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { background: true },
    )
    await redis.until(/Ready to accept connections/)
    stage.ok({ says: "Redis is ready; --save '' and --appendonly no: it writes nothing to disk" })
    const redisUrl = `redis://127.0.0.1:${port}`

    await stage.step('Start two bundled brokers on it, A and B')
    // Both at once: each takes about half a second to start.
    const [a, b] = await Promise.all([
      startBroker(stage, 'broker-a', redisUrl),
      startBroker(stage, 'broker-b', redisUrl),
    ])
    stage.ok({ says: 'two brokers, each on a port of its own, both on the same Redis' })

    await stage.step('Start a subscriber on A, then publish on B')
    const listening = stage.spawn('subscriber', subscriber, ['--url', a.url, ...topicArgs])
    await listening.expect(`subscribed to ${topic} (QoS 0)`, {
      says: 'the subscriber is subscribed on A',
    })
    await stage.run('publisher', publisher, [
      '--url',
      b.url,
      '--message',
      'hello from B',
      ...topicArgs,
    ])
    await listening.expect(`${topic} hello from B`, {
      claim: 'C7',
      says: 'the subscriber on A printed what was published on B: B passed it to A through Redis',
    })
    await listening.stop()

    const alice = (url: string) => [
      '--url',
      url,
      '--id',
      stage.clientId('alice'),
      '--no-clean',
      '--qos',
      '1',
      ...topicArgs,
    ]
    await stage.step('alice subscribes on A at QoS 1 with a persistent session, and leaves')
    const first = stage.spawn('alice', subscriber, alice(a.url))
    await first.expect(`subscribed to ${topic} (QoS 1)`, {
      says: 'alice is subscribed on A, with a session kept in Redis',
    })
    await first.stop()

    await stage.step('While she is away, publish a QoS 1 message on B')
    await stage.run('publisher', publisher, [
      '--url',
      b.url,
      '--qos',
      '1',
      '--message',
      'queued for alice',
      ...topicArgs,
    ])

    await stage.step('alice comes back, on B')
    const back = stage.spawn('alice', subscriber, alice(b.url))
    await back.expect(`connected to ${b.url}, result code 0, session present: yes`, {
      claim: 'S1',
      says: 'B knew the session she started on A',
    })
    await back.expectAll([`subscribed to ${topic} (QoS 1)`, `${topic} queued for alice`], {
      claim: 'S1',
      says: 'and gave her the message queued while she was away',
    })
    await back.stop()

    await stage.step('Publish a retained message on A, then start a subscriber on B')
    // QoS 1: the publisher ends once A has the message. A writes it to Redis a moment later (aedes
    // acknowledges first), well before a subscriber started after it can ask B.
    await stage.run('publisher', publisher, [
      '--url',
      a.url,
      '--retain',
      '--qos',
      '1',
      '--message',
      'kept in Redis',
      ...topicArgs,
    ])
    const late = stage.spawn('subscriber', subscriber, ['--url', b.url, ...topicArgs])
    await late.expectAll([`subscribed to ${topic} (QoS 0)`, `${topic} kept in Redis (retained)`], {
      claim: 'C11',
      says:
        'the late subscriber on B got the retained message ' +
        'published on A: it is kept in Redis, not in a broker',
    })
    await late.stop()

    await stage.step('Start a device that knows both brokers: it connects to the first, A')
    const light = stage.spawn('device', device, ['--url', `${a.url},${b.url}`])
    await light.expect(`connected to ${a.url}, result code 0`, {
      says: 'the device is connected to A',
    })
    await light.expect('listening for ON and OFF on home/kitchen/light/set', {
      says: 'and waits for commands',
    })
    await light.expect('listening for Home Assistant on homeassistant/status', {
      says: "and for Home Assistant's birth message",
    })

    await stage.step('Kill broker A with SIGKILL, as a crash would')
    stage.say('kill -KILL: A stops at once, closing nothing')
    await a.proc.stop('SIGKILL')
    await light.expect(
      `lost the connection to the broker at ${a.url}; trying the next one every 1 s`,
      { says: 'the device lost A' },
    )
    await light.expect(`connected to ${b.url}, result code 0`, {
      says: 'and connected to B by itself, a second later',
    })
    await light.expect('listening for ON and OFF on home/kitchen/light/set', {
      says: 'it announced itself again, on B',
    })
    await light.expect('listening for Home Assistant on homeassistant/status', {
      says: 'and listens for Home Assistant there',
    })

    await stage.step('Switch the light off, through B')
    await stage.run('publisher', publisher, [
      '--url',
      b.url,
      '--topic',
      'home/kitchen/light/set',
      '--message',
      'OFF',
    ])
    await light.expect('published "OFF" to home/kitchen/light (retained)', {
      says: 'the device goes on: its commands reach it through B',
    })

    await stage.step('Start broker C; three workers share one group, one on C and two on B')
    // A shared subscription: each job goes to one worker, whichever broker it is on (Redis says
    // which); the stage's markers, published on B, prove each worker's share.
    const c = await startBroker(stage, 'broker-c', redisUrl)
    await stage.useBroker(b.url)
    const jobs = stage.topic('jobs')
    const group = `$share/workers/${jobs}`
    const workers = [c, b, b].map((at, i) =>
      stage.spawn(`worker-${i + 1}`, subscriber, ['--url', at.url, '--topic', group]),
    )
    for (const worker of workers) await worker.until(`subscribed to ${group} (QoS 0)`)

    await stage.step('Publish three jobs on B: each goes to one worker, on C or on B')
    const names = ['one', 'two', 'three']
    await stage.run('publisher', publisher, [
      '--url',
      b.url,
      '--topic',
      jobs,
      ...names.flatMap((name) => ['--message', name]),
    ])
    const shares = await stage.groupBarrier(jobs, workers, names, {
      says: 'each job reached one worker of the group, on C or on B, none reached two',
    })
    stage.say(
      `Redis spread them: ${workers
        .map((w) => `${w.label} got ${shares.get(w)!.join(', ') || 'none'}`)
        .join('; ')}`,
    )
    await Promise.all([...workers.map((w) => w.stop()), c.proc.stop()])

    await stage.step('Stop the device, broker B and Redis')
    await light.stop()
    await b.proc.stop()
    await redis.stop()
    stage.ok({ says: 'Redis kept nothing on disk: what it held is gone with it' })
  },
}

/** Start a bundled broker on a free port, sharing `redisUrl`; resolves once it is ready. */
async function startBroker(stage: Stage, label: string, redisUrl: string) {
  const proc = stage.spawn(label, broker, ['--port', '0', '--redis', redisUrl], {
    background: true,
  })
  const ready = await proc
    .until(/^broker ready on mqtt:\/\/\S+; Ctrl-C to stop$/)
    .then(() => proc.output.find((l) => l.text.startsWith('broker ready on '))!)
  return { proc, url: ready.text.match(/^broker ready on (\S+);/)![1] }
}

if (isMain(import.meta.url)) await show(cluster)
