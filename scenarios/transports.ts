// Beyond the article: MQTT is not tied to one transport. The same subscriber and publisher,
// unchanged, talk to one broker over TCP, over WebSocket and over a Unix domain socket, and the
// broker delivers between them whatever each one came by: only the URL differs. A datagram
// transport will not do. Run directly (npm run demo:transports) it is the show; test/ plays it as a
// check.
import { isMain } from '../lib/cli.ts'
import { show } from './stage/show.ts'
import type { Scenario } from './stage/stage.ts'
import type { Proc } from './stage/proc.ts'

const publisher = 'demos/basic-pubsub/publisher.ts'
const subscriber = 'demos/basic-pubsub/subscriber.ts'

interface Transport {
  name: string
  /** Label of its subscriber on stage. */
  label: string
  url?: string
}

export const transports: Scenario = {
  name: 'transports',
  steps: 6,
  title:
    'the same programs over TCP, WebSocket and a Unix socket, through one broker that delivers ' +
    'between them',
  needs: { listeners: ['ws', 'unix'] },
  async play(stage) {
    const topic = stage.topic('my_topic')
    const topicArgs = stage.topicFlag('my_topic')
    const all: Transport[] = [
      { name: 'TCP', label: 'tcp-subscriber', url: stage.url },
      { name: 'WebSocket', label: 'ws-subscriber', url: stage.wsUrl },
      { name: 'a Unix socket', label: 'unix-subscriber', url: stage.unixUrl },
    ]
    const available = all.filter((t): t is Required<Transport> => t.url !== undefined)
    const missing = all.filter((t) => t.url === undefined)
    const notApplicable = (what: string) =>
      stage.say(
        `not applicable here: ${what} needs the bundled broker that the stage starts with these ` +
          `listeners, not the one at ${stage.url}`,
      )

    await stage.step(
      'Start the same subscriber three times, once per transport: only --url differs',
    )
    const subscribers: Proc[] = []
    for (const transport of available) {
      const proc = stage.spawn(transport.label, subscriber, ['--url', transport.url, ...topicArgs])
      await proc.until(`connected to ${transport.url}, result code 0`)
      await proc.expect(`subscribed to ${topic} (QoS 0)`, {
        says: `connected and subscribed over ${transport.name}`,
      })
      subscribers.push(proc)
    }
    if (missing.length) {
      notApplicable(`a subscriber over ${missing.map((t) => t.name).join(' and ')}`)
    } else {
      stage.ok({
        claim: 'C3',
        says:
          'one subscriber program, three transports: ' +
          'MQTT is the same bytes whatever stream carries them',
      })
    }

    for (const transport of available.slice(1)) {
      await stage.step(`Publish over ${transport.name}`)
      const message = `over ${transport.name}`
      await stage.run('publisher', publisher, [
        '--url',
        transport.url,
        '--message',
        message,
        ...topicArgs,
      ])
      for (const proc of subscribers) await proc.until(`${topic} ${message}`)
      stage.ok({
        claim: 'C3',
        says:
          `a publisher over ${transport.name} reached the ` +
          `subscribers over ${available.map((t) => t.name).join(', ')}`,
      })
    }
    for (const transport of missing) {
      await stage.step(`Publish over ${transport.name}`)
      notApplicable(`publishing over ${transport.name}`)
    }

    await stage.step('Publish three messages in a row over TCP, at QoS 1')
    await stage.run('publisher', publisher, [
      '--url',
      stage.url,
      '--qos',
      '1',
      '--message',
      'one',
      '--message',
      'two',
      '--message',
      'three',
      ...topicArgs,
    ])
    for (const proc of subscribers) {
      await proc.until(`${topic} one`)
      const between = [
        ...(await proc.until(`${topic} two`)),
        ...(await proc.until(`${topic} three`)),
      ]
      if (between.length > 0)
        throw stage.failure(
          `${proc.label} printed ${JSON.stringify(between[0])} between the three messages`,
          proc,
        )
    }
    stage.ok({
      claim: 'S7',
      says:
        'each transport delivered the three whole and in order: ' +
        'an ordered, lossless, two-way byte stream is all MQTT asks of it',
    })

    await stage.step('Try a transport that is not a byte stream: UDP')
    const udp = await stage.run(
      'publisher',
      publisher,
      ['--url', 'udp://127.0.0.1:1883', ...topicArgs],
      1,
    )
    await udp.expectError(
      'error: cannot connect to udp://127.0.0.1:1883: ' +
        'MQTT needs a two-way byte stream such as TCP, not UDP datagrams (MQTT 3.1.1 §4.2); ' +
        'over UDP devices speak MQTT-SN, a protocol of its own',
      {
        claim: 'S7',
        says:
          'datagrams can be lost or come out of order: ' +
          'MQTT does not run over UDP; MQTT-SN is the protocol for that',
      },
    )

    await stage.step('Stop the subscribers')
    await Promise.all(subscribers.map((proc) => proc.stop()))
  },
}

if (isMain(import.meta.url)) await show(transports)
