// Beyond the article: the bytes on the wire. A tap between the subscriber and the broker prints
// every packet of the subscriber's session in hex, so the audience sees how small MQTT is: PINGREQ,
// PINGRESP and DISCONNECT are 2 bytes each, the smallest packets there are, and a PUBLISH of "on"
// is a few more. Then an MQTT 5 subscriber that accepts a topic alias gets the same topic twice:
// the broker may send the topic once and a two-byte alias after it, and the show counts the bytes
// saved. Run directly (npm run demo:wire) it is the show; test/ plays it as a check.
import { isMain } from '../lib/cli.ts'
import { show } from './stage/show.ts'
import type { Scenario, Stage } from './stage/stage.ts'
import type { Proc } from './stage/proc.ts'

const tap = 'demos/wire/tap.ts'
const publisher = 'demos/basic-pubsub/publisher.ts'
const subscriber = 'demos/basic-pubsub/subscriber.ts'
const mqtt5Subscriber = 'demos/mqtt5/subscriber.ts'

/**
 * Seconds of silence before the subscriber pings: short, so the show need not wait long for a
 * PINGREQ.
 */
const KEEPALIVE = 5

export const wire: Scenario = {
  name: 'wire',
  steps: 7,
  title: "every packet of a subscriber's session, in hex: the smallest MQTT packets are 2 bytes",
  async play(stage) {
    const topic = stage.topic('my_topic')
    const topicArgs = stage.topicFlag('my_topic')
    if (!/^(mqtt|tcp):/.test(stage.url)) {
      stage.say(
        `the tap passes plain TCP and the broker is at ${stage.url}: this experiment needs an ` +
          `mqtt:// broker`,
      )
      return
    }

    await stage.step(
      'Start a tap: clients connect to it, and it passes every byte to the broker and back',
    )
    const wiretap = stage.spawn('tap', tap, ['--listen-port', '0'])
    await wiretap.until(/^tap on mqtt:\/\/127\.0\.0\.1:\d+, passing every byte to and from /)
    const tapUrl = wiretap.output
      .find((l) => l.text.startsWith('tap on '))!
      .text.match(/^tap on (\S+),/)![1]
    stage.ok({ says: `a client that connects to ${tapUrl} talks to the broker through the tap` })

    await stage.step(
      `Start the subscriber through the tap, with a keepalive of ${KEEPALIVE} seconds`,
    )
    const sub = stage.spawn('subscriber', subscriber, [
      '--url',
      tapUrl,
      '--id',
      stage.clientId('wire-subscriber'),
      '--keepalive',
      String(KEEPALIVE),
      ...topicArgs,
    ])
    await sub.expect(`subscribed to ${topic} (QoS 0)`, {
      says: 'the subscriber is connected and subscribed, as usual',
    })
    // Each packet starts with a fixed header: a byte for the type and flags, then how many bytes
    // follow.
    const connect = await packet(wiretap, 'client', 'CONNECT')
    stage.ok({
      says:
        `CONNECT, ${connect.size} bytes: "MQTT", level 4 (3.1.1), ` +
        `clean session, keepalive ${KEEPALIVE} s, the client id`,
    })
    const connack = await packet(wiretap, 'broker', 'CONNACK')
    stage.ok({
      says: `CONNACK, ${connack.size} bytes: no session kept from before, return code 0 (accepted)`,
    })
    const subscribe = await packet(wiretap, 'client', 'SUBSCRIBE')
    stage.ok({
      says:
        `SUBSCRIBE, ${subscribe.size} bytes: ` +
        `a packet id (MQTT.js picks the first at random), the filter, QoS 0`,
    })
    const suback = await packet(wiretap, 'broker', 'SUBACK')
    stage.ok({ says: `SUBACK, ${suback.size} bytes: the same packet id, and QoS 0 granted` })

    await stage.step(
      'Run the publisher, straight to the broker: the message reaches the subscriber through the ' +
        'tap',
    )
    await stage.run('publisher', publisher, topicArgs)
    await sub.expect(`${topic} on`, { says: 'the subscriber printed the message' })
    const publish = await packet(wiretap, 'broker', 'PUBLISH')
    stage.ok({
      claim: 'S6',
      says:
        `the PUBLISH of "on" to ${topic} is ${publish.size} bytes: ` +
        `the fixed header, the topic with its length, the payload`,
    })

    await stage.step(
      `Wait: after ${KEEPALIVE} seconds with nothing to send, the subscriber shows it is alive`,
    )
    // On a busy machine the subscriber may have pinged already, during step 3 (it pings whenever it
    // has sent nothing for 5 s): the ping this step shows is one sent after it began.
    wiretap.skip()
    const ping = await packet(wiretap, 'client', 'PINGREQ')
    stage.ok({
      claim: 'C2',
      says:
        `PINGREQ is ${ping.size} bytes on the wire, ` +
        `${ping.hex}: the smallest MQTT message, header included`,
    })
    const pong = await packet(wiretap, 'broker', 'PINGRESP')
    stage.ok({ claim: 'C2', says: `the broker's PINGRESP is ${pong.size} bytes too, ${pong.hex}` })

    await stage.step(
      'Stop the subscriber with Ctrl-C: it says goodbye before it closes the connection',
    )
    await sub.stop()
    const goodbye = await packet(wiretap, 'client', 'DISCONNECT')
    stage.ok({ claim: 'C2', says: `DISCONNECT is ${goodbye.size} bytes, ${goodbye.hex}` })
    await wiretap.until('connection 1 closed')
    stage.ok({
      claim: 'S6',
      says:
        `the ${ping.size}-byte packets are those with no variable ` +
        `header and no payload; a PUBLISH of "on" is ${publish.size}`,
    })

    // The tap runs until the show ends: stopping it would print one more row than the last step's
    // screen holds.
    await topicAliases(stage, wiretap, tapUrl, topicArgs)
  },
}

/**
 * MQTT 5's topic aliases, on the tap's second connection: a subscriber that accepts one alias, and
 * two messages to one topic. A broker may assign aliases and need not: where the second PUBLISH is
 * no smaller than the first, it sent the topic in full both times, and the step says so.
 */
async function topicAliases(
  stage: Stage,
  wiretap: Proc,
  tapUrl: string,
  topicArgs: string[],
): Promise<void> {
  const topic = stage.topic('my_topic')
  await stage.step(
    'Start an MQTT 5 subscriber through the tap that accepts one topic alias from the broker',
  )
  const sub = stage.spawn('subscriber-5', mqtt5Subscriber, [
    '--url',
    tapUrl,
    '--id',
    stage.clientId('wire-subscriber-5'),
    '--topic-aliases',
    '1',
    ...topicArgs,
  ])
  await sub.until(`subscribed to ${topic} (QoS 1)`)
  const connect = await packet(wiretap, 'client', 'CONNECT', 2)
  stage.ok({
    says:
      `CONNECT, ${connect.size} bytes: level 5 (05), and a property, 22 00 01: Topic Alias ` +
      `Maximum 1`,
  })

  await stage.step('Publish "on" twice to the same topic, then stop the MQTT 5 subscriber')
  await stage.run('publisher', publisher, [...topicArgs, '--message', 'on', '--message', 'on'])
  for (let i = 0; i < 2; i++) await sub.until(`${topic} on`)
  const [first, second] = await sizes(wiretap, 'broker → client 2', 'PUBLISH', 2)
  const saved = first - second
  if (saved > 0) {
    stage.ok({ says: `the first PUBLISH, ${first} bytes: ${topic}, and Topic Alias 1 (23 00 01)` })
    stage.ok({
      says: `the second, ${second} bytes, carries the alias, not the topic: ${saved} bytes fewer`,
    })
  } else {
    stage.ok({ says: `this broker sent both in full, ${first} bytes each: no alias` })
    stage.say('not applicable here: a broker need not send aliases; the bundled one does')
  }
  await sub.stop()
  await wiretap.until('connection 2 closed')
}

/**
 * Wait for the tap to print `count` packets of `type` going `direction`, and return their sizes, in
 * the order they went.
 */
async function sizes(
  wiretap: Proc,
  direction: string,
  type: string,
  count: number,
): Promise<number[]> {
  const line = new RegExp(`^${direction}  ${type} +(\\d+) bytes: `)
  for (let i = 0; i < count; i++) await wiretap.until(line)
  return wiretap.output.flatMap((l) => {
    const size = line.exec(l.text)?.[1]
    return size === undefined ? [] : [Number(size)]
  })
}

/**
 * Wait for the tap to print `type` sent by the client or by the broker, and return its size and
 * bytes.
 */
async function packet(
  wiretap: Proc,
  from: 'client' | 'broker',
  type: string,
  connection = 1,
): Promise<{ size: number; hex: string }> {
  const direction =
    from === 'client' ? `client ${connection} → broker` : `broker → client ${connection}`
  await wiretap.until(new RegExp(`^${direction}  ${type} +\\d+ bytes: `))
  const line = wiretap.output.findLast((l) => l.text.startsWith(`${direction}  ${type} `))!.text
  const [, size, hex] = line.match(/ (\d+) bytes: (.*)$/)!
  return { size: Number(size), hex }
}

if (isMain(import.meta.url)) await show(wire)
