// Beyond the article: what MQTT 5 changes about its experiments, one step or two for each (V1 to
// V8 of docs/claims.md): reason codes and message properties (basic), session expiry (ephemeral),
// message expiry, retain handling and retain as published (retained), no local and shared
// subscriptions (wildcards), and the will delay (discovery). Its programs are demos/mqtt5/, an
// MQTT 5 publisher and subscriber with a flag per feature, and the article's own programs with
// -V 5. Run directly (npm run demo:mqtt5) it is the show; test/ plays it as a check.
import { isMain } from '../lib/cli.ts'
import { show } from './stage/show.ts'
import type { Scenario } from './stage/stage.ts'
import type { Proc } from './stage/proc.ts'

const publisher = 'demos/mqtt5/publisher.ts'
const subscriber = 'demos/mqtt5/subscriber.ts'
const basicPublisher = 'demos/basic-pubsub/publisher.ts'
const ephemeralPublisher = 'demos/ephemeral/publisher.ts'
const ephemeralSubscriber = 'demos/ephemeral/subscriber.ts'

export const mqtt5: Scenario = {
  name: 'mqtt5',
  steps: 18,
  title:
    'what MQTT 5 changes in each experiment: reason codes, properties, session and message ' +
    'expiry, retain handling, no local, shared subscriptions, will delay',
  async play(stage) {
    const topic = stage.topic('my_topic')
    const topicArgs = stage.topicFlag('my_topic')
    // Topics that are no program's default: always given, under the stage's prefix when it has one.
    const at = (name: string) => ['--topic', stage.topic(name)]
    const id = (name: string) => ['--id', stage.clientId(name)]
    stage.retains(topic)

    // basic: reason codes (V1)
    await stage.step(
      'The basic publisher with -V 5 at QoS 1, nobody subscribed: CONNACK and PUBACK carry ' +
        'reason codes',
    )
    const basic = await stage.run('publisher', basicPublisher, [
      '-V',
      '5',
      '--qos',
      '1',
      ...topicArgs,
    ])
    await basic.expect(/^connected to \S+, reason code 0x00 success$/, {
      claim: 'V1',
      says: 'the CONNACK said 0x00 success',
    })
    await basic.expect(/^acknowledged, reason code 0x(00 success|10 no matching subscribers)$/, {
      claim: 'V1',
      says: 'the PUBACK too; a broker may say 0x10, no matching subscribers (Mosquitto does)',
    })

    await stage.step(
      'Publish to $SYS/hello, a topic the broker keeps for itself; then connect with an unknown ' +
        'authentication method',
    )
    const sys = await stage.run('publisher', publisher, ['--topic', '$SYS/hello'], 1)
    await sys.expectError(
      /^error: the broker refused the message to \$SYS\/hello: 0x87 not authorized( \(.+\))?$/,
      { claim: 'V1', says: 'the PUBACK refused the message, and said why: 0x87 not authorized' },
    )
    const auth = await stage.run(
      'publisher',
      publisher,
      ['--auth-method', 'SCRAM-SHA-256', ...topicArgs],
      1,
    )
    await auth.expectError(
      new RegExp(
        '^error: the broker at \\S+ refused the connection: ' +
          '0x8C bad authentication method; leave out --auth-method$',
      ),
      {
        claim: 'V1',
        says:
          'the CONNACK refused the connection with 0x8C: ' +
          'in 3.1.1 only six return codes existed, none of them this',
      },
    )

    // basic: properties, request and reply (V7)
    await stage.step(
      'Start an MQTT 5 subscriber that answers requests, and publish with user properties and a ' +
        'content type',
    )
    const responder = stage.spawn('responder', subscriber, [...topicArgs, '--answer', 'yes'])
    await responder.until(`subscribed to ${topic} (QoS 1)`)
    await stage.run('publisher', publisher, [
      ...topicArgs,
      '--user-property',
      'room=kitchen',
      '--content-type',
      'text/plain',
    ])
    await responder.expect(`${topic} on (user property room=kitchen) (content type text/plain)`, {
      claim: 'V7',
      says: 'the user properties and the content type came with the message, beside its payload',
    })

    await stage.step('Make a request: a message that names a response topic and correlation data')
    const replies = stage.topic('replies/alice')
    const request = await stage.run('requester', publisher, [
      ...topicArgs,
      '--message',
      'are you on?',
      '--response-topic',
      replies,
      '--correlation-data',
      'req-1',
    ])
    await responder.expect(
      `${topic} are you on? (response topic ${replies}) (correlation data req-1)`,
      { says: 'the responder got the request' },
    )
    await responder.expect(`answered "yes" on ${replies}`, {
      says: 'and answered on the response topic',
    })
    await request.expect(`reply on ${replies}: yes (correlation data req-1)`, {
      claim: 'V7',
      says:
        'the reply came back with the correlation data copied: ' +
        'the requester can tell which request it answers',
    })
    await responder.stop()

    // ephemeral: session expiry (V2)
    await stage.step(
      "The ephemeral experiment's alice with -V 5 subscribes and stops; a QoS 1 message is sent",
    )
    const alice = [...stage.idFlag('alice'), ...topicArgs]
    const first = stage.spawn('alice', ephemeralSubscriber, ['-V', '5', ...alice])
    await first.until(`subscribed to ${topic} (QoS 1)`)
    await first.stop()
    await stage.run('publisher', ephemeralPublisher, ['-V', '5', ...topicArgs, '--message', 'lost'])

    await stage.step('alice comes back, as in MQTT 3.1.1 she would to her session')
    const back = stage.spawn('alice', ephemeralSubscriber, ['-V', '5', ...alice])
    await back.expect(/, session present: no$/, {
      claim: 'V2',
      says:
        'no session: in MQTT 5, Clean Start 0 (--no-clean) ' +
        'alone keeps none, it ends with the connection',
    })
    await back.until(`subscribed to ${topic} (QoS 1)`)
    await stage.barrier(topic, [back], {
      claim: 'V2',
      says: 'and the message sent while she was away went with it',
    })
    await back.stop()

    await stage.step(
      'The MQTT 5 subscriber as alice, with a Session Expiry Interval of 60 s: away, a message, ' +
        'back within them',
    )
    const kept = stage.spawn('alice', subscriber, [
      ...id('alice'),
      ...topicArgs,
      '--no-clean',
      '--session-expiry',
      '60',
    ])
    await kept.until(`subscribed to ${topic} (QoS 1)`)
    await kept.stop()
    await stage.run('publisher', publisher, [...topicArgs, '--message', 'kept for alice'])
    const within = stage.spawn('alice', subscriber, [
      ...id('alice'),
      ...topicArgs,
      '--no-clean',
      '--session-expiry',
      '2',
    ])
    await within.expect(/, session present: yes$/, {
      claim: 'V2',
      says: 'back within the 60 s: her session was there (this time she asks for 2 s)',
    })
    await within.expectAll([`subscribed to ${topic} (QoS 1)`, `${topic} kept for alice`], {
      claim: 'V2',
      says: 'with the QoS 1 message it queued',
    })
    await stage.barrier(topic, [within], { says: 'and no message but the one queued for her' })

    await stage.step('Stop her again, publish, and let her 2 s pass before she comes back')
    await within.stop()
    await stage.run('publisher', publisher, [...topicArgs, '--message', 'too late for alice'])
    if (stage.hearsBroker)
      await stage.brokerSays(
        `client ${stage.clientId('alice')} session expired: ` +
          'the broker dropped it, and what it had queued',
      )
    else
      await stage.waitOut(
        3,
        'the 2 s of her session and one more, as the broker counts whole seconds',
      )
    const after = stage.spawn('alice', subscriber, [
      ...id('alice'),
      ...topicArgs,
      '--no-clean',
      '--session-expiry',
      '0',
    ])
    await after.expect(/, session present: no$/, {
      claim: 'V2',
      says: 'after the interval the session was gone',
    })
    await after.until(`subscribed to ${topic} (QoS 1)`)
    await stage.barrier(topic, [after], {
      claim: 'V2',
      says:
        'and the message queued in it with it (she asked ' +
        'for 0 s now: her session ends as she leaves)',
    })
    await after.stop()

    // retained: message expiry (V3)
    await stage.step('Publish a retained message that expires in 60 s, and start a subscriber')
    await stage.run('publisher', publisher, [
      ...topicArgs,
      '--retain',
      '--message',
      'door open',
      '--message-expiry',
      '60',
    ])
    const late = stage.spawn('subscriber', subscriber, topicArgs)
    // However long the subscriber took to start (seconds, on a busy machine), some of the 60 s are
    // left.
    await late.expect(
      new RegExp(
        `^${escapeRegExp(topic)} door open \\(retained\\) ` +
          `\\(expires in (60|[1-5]\\d|[1-9]) s\\)$`,
      ),
      { claim: 'V3', says: 'it got the retained message with the time it has left' },
    )

    await stage.step(
      'Replace it with one that expires in 2 s; stop the subscriber; once it has expired, start ' +
        'another',
    )
    await stage.run('publisher', publisher, [
      ...topicArgs,
      '--retain',
      '--message',
      'door closed',
      '--message-expiry',
      '2',
    ])
    await late.expect(new RegExp(`^${escapeRegExp(topic)} door closed \\(expires in (2|1) s\\)$`), {
      says: 'the subscriber got it live, with its 2 s',
    })
    await late.stop()
    await stage.untilNotRetained(topic)
    stage.say(
      'the stage asked the broker every quarter of a second whether it still held it: now it ' +
        'does not',
    )
    const expired = stage.spawn('subscriber-2', subscriber, topicArgs)
    await expired.until(`subscribed to ${topic} (QoS 1)`)
    await stage.barrier(topic, [expired], {
      claim: 'V3',
      says: 'the new subscriber got nothing: an expired message is not delivered, retained or not',
    })
    await expired.stop()

    // retained: retain handling, retain as published (V4)
    await stage.step(
      'Publish a retained message, then start two subscribers with sessions: retain handling 0 ' +
        'and 1',
    )
    await stage.run('publisher', publisher, [...topicArgs, '--retain', '--message', 'on'])
    const session = ['--no-clean', '--session-expiry', '60']
    const rh0 = stage.spawn('rh-0', subscriber, [
      ...id('rh-0'),
      ...topicArgs,
      ...session,
      '--retain-handling',
      '0',
    ])
    const rh1 = stage.spawn('rh-1', subscriber, [
      ...id('rh-1'),
      ...topicArgs,
      ...session,
      '--retain-handling',
      '1',
    ])
    await rh0.expectAll([`subscribed to ${topic} (QoS 1)`, `${topic} on (retained)`], {
      claim: 'V4',
      says: 'retain handling 0 got the retained message',
    })
    await rh1.expectAll([`subscribed to ${topic} (QoS 1)`, `${topic} on (retained)`], {
      claim: 'V4',
      says: 'so did 1: its subscription is new',
    })

    await stage.step('Stop both and start them again: their sessions kept their subscriptions')
    await Promise.all([rh0.stop(), rh1.stop()])
    // Session expiry 0 this time: what they come back to ends when they leave, and the stage leaves
    // nothing behind.
    const end = ['--no-clean', '--session-expiry', '0']
    const rh0again = stage.spawn('rh-0', subscriber, [
      ...id('rh-0'),
      ...topicArgs,
      ...end,
      '--retain-handling',
      '0',
    ])
    const rh1again = stage.spawn('rh-1', subscriber, [
      ...id('rh-1'),
      ...topicArgs,
      ...end,
      '--retain-handling',
      '1',
    ])
    await rh0again.expectAll([`subscribed to ${topic} (QoS 1)`, `${topic} on (retained)`], {
      claim: 'V4',
      says: 'rh-0 got it again: 0 sends it at every SUBSCRIBE',
    })
    await rh1again.expect(/, session present: yes$/, { says: 'rh-1 is back in its session' })
    await rh1again.until(`subscribed to ${topic} (QoS 1)`)
    await stage.barrier(topic, [rh1again], {
      claim: 'V4',
      says:
        'and got nothing: 1 sends retained messages ' +
        'only for a subscription the session did not have',
    })

    await stage.step(
      "In rh-1's place, start one with retain handling 2 and retain as published; publish a " +
        'retained message',
    )
    await rh1again.stop()
    const rh2 = stage.spawn('rh-2', subscriber, [
      ...topicArgs,
      '--retain-handling',
      '2',
      '--retain-as-published',
    ])
    await rh2.until(`subscribed to ${topic} (QoS 1)`)
    await stage.barrier(topic, [rh2], {
      claim: 'V4',
      says: 'rh-2 got nothing as it subscribed: 2 never sends retained messages then',
    })
    await stage.run('publisher', publisher, [...topicArgs, '--retain', '--message', 'off'])
    await rh0again.expect(`${topic} off`, {
      says: 'rh-0 got it live, with RETAIN cleared as in MQTT 3.1.1',
    })
    await rh2.expect(`${topic} off (retained)`, {
      claim: 'V4',
      says: 'rh-2 got it with RETAIN kept, as it was published',
    })
    await Promise.all([rh0again.stop(), rh2.stop()])

    // wildcards: no local (V5)
    const light = stage.topic('home/kitchen/light')
    await stage.step(
      'Two subscribers to home/#; the kitchen one publishes its own state, with --no-local',
    )
    const observer = stage.spawn('observer', subscriber, at('home/#'))
    await observer.until(`subscribed to ${stage.topic('home/#')} (QoS 1)`)
    const kitchen = stage.spawn('kitchen', subscriber, [
      ...at('home/#'),
      '--no-local',
      '--publish',
      `${light}=on`,
    ])
    await kitchen.expectAll(
      [`subscribed to ${stage.topic('home/#')} (QoS 1)`, `published "on" to ${light}`],
      { says: 'the kitchen published on' },
    )
    await observer.expect(`${light} on`, { says: 'the observer got it' })
    await stage.barrier(light, [observer, kitchen], {
      claim: 'V5',
      says: "the kitchen did not: No Local keeps a client's own messages from coming back to it",
    })
    await Promise.all([observer.stop(), kitchen.stop()])

    // wildcards: shared subscriptions (V6)
    const group = `$share/lights/${stage.topic('home/#')}`
    await stage.step(`Two members of one group subscribe to ${group}`)
    const members: Proc[] = [stage.spawn('member-1', subscriber, ['--topic', group])]
    const refusal =
      /^error: the broker refused the subscription to \S+: 0x9E shared subscriptions not supported$/
    if ((await members[0].either(`subscribed to ${group} (QoS 1)`, refusal)) === 'refusal') {
      stage.ok({
        claim: 'V6',
        says: 'this broker does not serve shared subscriptions, and its SUBACK says so: 0x9E',
      })
      stage.ok({
        claim: 'V1',
        says: 'a SUBACK gives a reason code per filter, a refusal with its reason',
      })
      stage.say(
        'not applicable here: spreading messages over a group needs a broker that serves shared ' +
          'subscriptions, such as Mosquitto',
      )
    } else {
      members.push(stage.spawn('member-2', subscriber, ['--topic', group]))
      await members[1].until(`subscribed to ${group} (QoS 1)`)
      // Only where the broker serves the group: a refusal leaves nothing to publish to.
      await stage.step('Publish four messages to home/kitchen/light: the group shares them')
      const messages = ['one', 'two', 'three', 'four']
      await stage.run('publisher', publisher, [
        ...at('home/kitchen/light'),
        ...messages.flatMap((m) => ['--message', m]),
      ])
      const shares = await stage.groupBarrier(light, members, messages, {
        claim: 'V6',
        says: 'each message reached one member of the group, none reached both',
      })
      stage.say(
        `the broker spread them: ${members
          .map((m) => `${m.label} got ${shares.get(m)!.join(', ') || 'none'}`)
          .join('; ')}`,
      )
      await Promise.all(members.map((m) => m.stop()))
    }

    // discovery: will delay (V8)
    const status = stage.topic('home/kitchen/status')
    const device = (delay: string) => [
      ...id('kitchen'),
      ...at('home/kitchen/set'),
      '--no-clean',
      '--session-expiry',
      delay,
      '--will-topic',
      status,
      '--will-message',
      'offline',
      '--will-delay',
      delay,
    ]
    await stage.step(
      'A device with a will delayed 60 s, in a session of 60 s, drops (kill -9) and comes back ' +
        'within them',
    )
    const listener = stage.spawn('listener', subscriber, at('home/kitchen/status'))
    await listener.until(`subscribed to ${status} (QoS 1)`)
    const plugged = stage.spawn('kitchen', subscriber, device('60'))
    await plugged.until(`subscribed to ${stage.topic('home/kitchen/set')} (QoS 1)`)
    await plugged.stop('SIGKILL')
    const replugged = stage.spawn('kitchen', subscriber, device('2'))
    await replugged.expect(/, session present: yes$/, {
      says: 'it is back in its session, this time with 2 s of delay',
    })
    await replugged.until(`subscribed to ${stage.topic('home/kitchen/set')} (QoS 1)`)
    await stage.barrier(status, [listener], {
      claim: 'V8',
      says: 'no "offline": a device back within the delay sends no will',
    })

    await stage.step('It drops again, and stays away')
    await replugged.stop('SIGKILL')
    await stage.barrier(status, [listener], {
      claim: 'V8',
      says: 'no will at once: the broker waits out the delay',
    })
    await listener.expect(`${status} offline`, {
      claim: 'V8',
      says: 'it did not come back: after 2 s the broker published its will',
    })
    // Its session ends with the will (both last 2 s): on the bundled broker, the stage sees it go.
    if (stage.hearsBroker)
      await stage.brokerSays(
        `client ${stage.clientId('kitchen')} session expired: ` +
          'the broker dropped it, and what it had queued',
      )
    await listener.stop()
  },
}

/** `text` for a regular expression that matches it literally. */
function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

if (isMain(import.meta.url)) await show(mqtt5)
