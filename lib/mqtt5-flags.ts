// The flags of the MQTT 5 demos, demos/mqtt5/publisher.ts and subscriber.ts: those of every demo
// (lib/demo-flags.ts) plus one per MQTT 5 feature they show, each checked before anything reaches
// the broker and turned into what MQTT.js takes: PUBLISH properties, CONNECT properties,
// subscription options, and a will with its delay.
import type { IClientOptions, IClientPublishOptions } from 'mqtt'
import { fail } from './cli.ts'
import {
  parseFlags,
  programDescription,
  publisherFlagSet,
  publisherOptions,
  subscriberFlagSet,
  subscriberOptions,
  writtenInCalls,
  type Flag,
  type PublisherFlags,
  type SubscriberFlags,
  type Written,
} from './demo-flags.ts'
import type { Values } from './parse-flags.ts'
import { topicNameProblem } from './topics.ts'

interface Mqtt5PublisherFlags extends PublisherFlags {
  /**
   * What goes with each message (--message-expiry, --user-property, --content-type,
   * --response-topic, --correlation-data).
   */
  properties: NonNullable<IClientPublishOptions['properties']>
  /**
   * Where the reply to a request is to come (--response-topic); a publisher without one makes no
   * request.
   */
  responseTopic?: string
}

interface Mqtt5SubscriberFlags extends SubscriberFlags {
  /**
   * Subscription options (MQTT 5 §3.8.3.1): which retained messages to send, keep RETAIN on live
   * ones, not my own messages.
   */
  retainHandling: 0 | 1 | 2
  retainAsPublished: boolean
  noLocal: boolean
  /** --publish TOPIC=TEXT: a message it publishes itself once subscribed. */
  publish?: { topic: string; message: string }
  /** --answer TEXT: the reply it sends to a request, on the request's response topic. */
  answer?: string
  /**
   * --topic-aliases N: the Topic Alias Maximum it announces in CONNECT, how many topics the broker
   * may send it as a number; undefined unless given.
   */
  topicAliases?: number
}

/** Most an interval can be: a four-byte integer of seconds (MQTT 5 §2.2.2.2). */
const MAX_SECONDS = 0xffffffff

/** The flags both MQTT 5 demos take beyond every demo's. */
const connectFlags = {
  'auth-method': {
    type: 'string',
    arg: 'NAME',
    help:
      'ask for enhanced authentication by this method (a broker that knows none refuses with ' +
      '0x8C)',
  },
} satisfies Record<string, Flag>

/** The flags of the MQTT 5 publisher, over what its calls write. */
export function mqtt5PublisherFlags(): Mqtt5PublisherFlags {
  const written = { ...writtenInCalls(), version: 5 } as const
  const flags = {
    ...publisherFlagSet(written),
    ...connectFlags,
    'message-expiry': {
      type: 'string',
      arg: 'SECONDS',
      help: 'the broker drops the message once it has waited this long (default: never)',
    },
    'user-property': {
      type: 'string',
      multiple: true,
      arg: 'NAME=VALUE',
      help: 'a user property to send with the message; repeat for more',
    },
    'content-type': {
      type: 'string',
      arg: 'TYPE',
      help: 'what the payload is, as a MIME type such as text/plain or application/json',
    },
    'response-topic': {
      type: 'string',
      arg: 'TOPIC',
      help: 'make a request: the reply is to come on TOPIC, and this program waits for it',
    },
    'correlation-data': {
      type: 'string',
      arg: 'TEXT',
      help:
        'what the responder copies into its reply, to tell replies apart (needs ' +
        '--response-topic)',
    },
  } satisfies Record<string, Flag>
  const values = parseFlags(programDescription(), flags)
  const options = publisherOptions(values, written)
  onlyMqtt5(options.version)
  const responseTopic = values['response-topic']
  if (responseTopic !== undefined) checkTopic('--response-topic', responseTopic)
  if (values['correlation-data'] !== undefined && responseTopic === undefined) {
    fail(
      '--correlation-data goes with --response-topic: it is what the responder copies into its ' +
        'reply',
    )
  }
  const expiry = secondsFlag('--message-expiry', values['message-expiry'], 1)
  const properties: Mqtt5PublisherFlags['properties'] = {
    ...(expiry !== undefined && { messageExpiryInterval: expiry }),
    ...(values['user-property'] && { userProperties: userProperties(values['user-property']) }),
    ...(values['content-type'] !== undefined && { contentType: values['content-type'] }),
    ...(responseTopic !== undefined && { responseTopic }),
    ...(values['correlation-data'] !== undefined && {
      correlationData: Buffer.from(values['correlation-data']),
    }),
  }
  return {
    ...options,
    connection: withConnectFlags(options.connection, values),
    properties,
    responseTopic,
  }
}

/** The flags of the MQTT 5 subscriber, over what its calls write. */
export function mqtt5SubscriberFlags(): Mqtt5SubscriberFlags {
  const written: Written & { topicAliases?: number } = { ...writtenInCalls(), version: 5 }
  const flags = {
    ...subscriberFlagSet(written),
    ...connectFlags,
    'session-expiry': {
      type: 'string',
      arg: 'SECONDS',
      help:
        'keep the session this long after a disconnect; with --no-clean, come back to it ' +
        '(default 0: it ends at once)',
    },
    'retain-handling': {
      type: 'string',
      arg: 'N',
      help:
        'retained messages at SUBSCRIBE: 0 always, 1 for a new subscription only, 2 never ' +
        '(default 0)',
    },
    'retain-as-published': {
      type: 'boolean',
      help: 'keep the RETAIN flag on messages forwarded live',
    },
    'no-local': {
      type: 'boolean',
      help: 'do not get back the messages this client publishes itself',
    },
    publish: {
      type: 'string',
      arg: 'TOPIC=TEXT',
      help: 'once subscribed, publish TEXT to TOPIC itself (to see --no-local at work)',
    },
    answer: {
      type: 'string',
      arg: 'TEXT',
      help:
        'answer each request (a message with a response topic) with TEXT, its correlation ' +
        'data copied',
    },
    'will-topic': {
      type: 'string',
      arg: 'TOPIC',
      help:
        'leave a will: the broker publishes it there if the connection drops without a ' +
        'DISCONNECT',
    },
    'will-message': { type: 'string', arg: 'TEXT', help: "the will's payload (default offline)" },
    'will-delay': {
      type: 'string',
      arg: 'SECONDS',
      help: 'publish the will only if the client is not back within this time (default 0)',
    },
    'topic-aliases': {
      type: 'string',
      arg: 'N',
      help:
        'let the broker send up to N topics as a two-byte alias after their first message ' +
        `(Topic Alias Maximum, 0 to 65535; default ${written.topicAliases ?? 0})`,
    },
  } satisfies Record<string, Flag>
  const values = parseFlags(programDescription(), flags)
  const sessionExpiry = secondsFlag('--session-expiry', values['session-expiry'], 0)
  const options = subscriberOptions(values, written, { sessionExpiry })
  onlyMqtt5(options.version)
  const rh = values['retain-handling'] ?? '0'
  if (!['0', '1', '2'].includes(rh))
    fail(`--retain-handling must be 0, 1 or 2, not ${JSON.stringify(rh)}`)
  const connection: IClientOptions = {
    ...withConnectFlags(options.connection, values),
    properties: {
      ...options.connection.properties,
      ...(sessionExpiry !== undefined && { sessionExpiryInterval: sessionExpiry }),
    },
    ...will(values),
  }
  return {
    ...options,
    connection,
    retainHandling: Number(rh) as 0 | 1 | 2,
    retainAsPublished: values['retain-as-published'] ?? false,
    noLocal: values['no-local'] ?? false,
    publish: values.publish === undefined ? undefined : ownMessage(values.publish),
    answer: values.answer,
    topicAliases: topicAliases(values['topic-aliases']),
  }
}

/** --topic-aliases: a two-byte number, as the Topic Alias Maximum is (MQTT 5 §3.1.2.11.5). */
function topicAliases(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) > 0xffff)
    fail(`--topic-aliases must be a number from 0 to 65535, not ${JSON.stringify(value)}`)
  return Number(value)
}

/** These programs show what MQTT 5 adds, which MQTT 3.1.1 cannot carry. */
function onlyMqtt5(version: 4 | 5): void {
  if (version !== 5)
    fail(
      'the MQTT 5 demos speak MQTT 5 only; for MQTT 3.1.1 run demos/basic-pubsub/ and the others',
    )
}

function withConnectFlags(
  connection: IClientOptions,
  values: Values<typeof connectFlags>,
): IClientOptions {
  const method = values['auth-method']
  if (method === '')
    fail('--auth-method must not be empty; leave it out to connect without enhanced authentication')
  return method === undefined
    ? connection
    : { ...connection, properties: { ...connection.properties, authenticationMethod: method } }
}

/** The will of --will-topic, --will-message and --will-delay, at QoS 1. */
function will(values: {
  'will-topic'?: string
  'will-message'?: string
  'will-delay'?: string
}): Pick<IClientOptions, 'will'> {
  const topic = values['will-topic']
  if (topic === undefined) {
    if (values['will-message'] !== undefined || values['will-delay'] !== undefined)
      fail('--will-message and --will-delay need --will-topic: where the will goes')
    return {}
  }
  checkTopic('--will-topic', topic)
  const delay = secondsFlag('--will-delay', values['will-delay'], 0)
  const properties = delay === undefined ? undefined : { willDelayInterval: delay }
  return {
    will: {
      topic,
      payload: Buffer.from(values['will-message'] ?? 'offline'),
      qos: 1,
      retain: false,
      properties,
    },
  }
}

/** NAME=VALUE, each given once or more: MQTT.js takes a name given twice as a list of values. */
function userProperties(pairs: string[]): Record<string, string | string[]> {
  const properties: Record<string, string[]> = {}
  for (const pair of pairs) {
    const at = pair.indexOf('=')
    if (at < 1)
      fail(`--user-property takes NAME=VALUE, such as room=kitchen, not ${JSON.stringify(pair)}`)
    ;(properties[pair.slice(0, at)] ??= []).push(pair.slice(at + 1))
  }
  return Object.fromEntries(
    Object.entries(properties).map(([name, list]) => [name, list.length === 1 ? list[0] : list]),
  )
}

function ownMessage(flag: string): { topic: string; message: string } {
  const at = flag.indexOf('=')
  if (at < 1)
    fail(`--publish takes TOPIC=TEXT, such as home/kitchen/light=on, not ${JSON.stringify(flag)}`)
  const topic = flag.slice(0, at)
  checkTopic('--publish', topic)
  return { topic, message: flag.slice(at + 1) }
}

function checkTopic(flag: string, topic: string): void {
  const problem = topicNameProblem(topic)
  if (problem) fail(`${flag} ${JSON.stringify(topic)} is not a topic name: ${problem}`)
}

/** A number of seconds from `least` to MAX_SECONDS, or undefined when the flag is not given. */
function secondsFlag(flag: string, value: string | undefined, least: number): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) < least || Number(value) > MAX_SECONDS) {
    fail(
      `${flag} must be a whole number of seconds from ${least} to ${MAX_SECONDS}, not ` +
        `${JSON.stringify(value)}`,
    )
  }
  return Number(value)
}
