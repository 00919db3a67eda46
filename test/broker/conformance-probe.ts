// What the conformance files share: the Probe a rule speaks to a broker through, the brokers every
// rule runs against (the bundled one, a private Mosquitto, aedes alone, and for MQTT 3.1.1 two
// bundled brokers sharing one Redis), and the suites that run a file's rules on each of them and
// note which passed. test/broker/conformance.test.ts holds the MQTT 3.1.1 rules,
// test/broker/conformance5.test.ts the MQTT 5 ones; test/broker/conformance-page.ts turns the
// results into docs/conformance.md.
import type { IPublishPacket, ISubscription } from 'mqtt-packet'
import { afterAll, beforeAll, describe, it } from 'vitest'
import { startBroker } from '../../lib/broker/broker.ts'
import { startPlainAedes } from './aedes-alone.ts'
import { mosquittoPath, NOT_INSTALLED, startMosquitto } from '../helpers/mosquitto.ts'
import { REDIS_NOT_INSTALLED, redisServerPath, startCluster } from '../helpers/redis-server.ts'
import {
  connackCode,
  RawClient,
  type ConnectOptions,
  type ProtocolVersion,
  type PublishOptions,
} from '../helpers/raw-client.ts'

/**
 * What one test can do with the broker under test; every topic it uses is under its own namespace.
 */
class Probe {
  /** A namespace no other test uses: the first level of every topic of this test. */
  readonly ns = `conformance-${Math.random().toString(16).slice(2, 10)}`
  private readonly clients: RawClient[] = []
  private readonly retainedTopics = new Set<string>()
  private readonly sessions = new Set<string>()
  private markers = 0

  readonly url: string
  /** What every client of this probe speaks unless a connect says otherwise. */
  readonly protocolVersion: ProtocolVersion

  constructor(url: string, protocolVersion: ProtocolVersion = 4) {
    this.url = url
    this.protocolVersion = protocolVersion
  }

  /** `<ns>/<name>`; a `$` in front of the name makes a $ topic: `$<ns>/<name>`. */
  t(name: string): string {
    return name.startsWith('$') ? `$${this.ns}/${name.slice(1)}` : `${this.ns}/${name}`
  }

  /** A connected client with a clean session unless told otherwise; ended after the test. */
  async client(options: ConnectOptions = {}): Promise<RawClient> {
    const { client, connack } = await this.connect(options)
    if (connackCode(connack) !== 0)
      throw new Error(
        `CONNECT refused with ${this.protocolVersion === 5 ? 'reason' : 'return'} code ` +
          connackCode(connack),
      )
    return client
  }

  /** CONNECT and the CONNACK, whatever it says. */
  async connect(
    options: ConnectOptions = {},
  ): Promise<Awaited<ReturnType<typeof RawClient.connect>>> {
    const result = await RawClient.connect(this.url, {
      protocolVersion: this.protocolVersion,
      ...options,
    })
    this.clients.push(result.client)
    return result
  }

  /** Publish a retained message, deleted again after the test. */
  async retain(
    client: RawClient,
    topic: string,
    payload: string,
    qos: 0 | 1 = 1,
    properties?: PublishOptions['properties'],
  ): Promise<void> {
    this.keep(topic)
    await client.publish(topic, payload, { qos, retain: true, properties })
  }

  /** Note that the test leaves a retained message on `topic`, to delete after it. */
  keep(topic: string): void {
    this.retainedTopics.add(topic)
  }

  /** The client id `persistent(name)` connects with. */
  sessionId(name: string): string {
    return `${this.ns}-${name}`
  }

  /**
   * Connect with a session that outlives the connection as `name`: CleanSession 0 in MQTT 3.1.1;
   * in MQTT 5, Clean Start 0 and a Session Expiry Interval of `expiry` seconds (five minutes unless
   * told). The session is ended after the test.
   */
  async persistent(
    name: string,
    { expiry = 300, will }: { expiry?: number; will?: ConnectOptions['will'] } = {},
  ): Promise<{ client: RawClient; sessionPresent: boolean }> {
    const clientId = this.sessionId(name)
    this.sessions.add(clientId)
    const properties = this.protocolVersion === 5 ? { sessionExpiryInterval: expiry } : undefined
    const { client, connack } = await this.connect({ clientId, clean: false, properties, will })
    if (connackCode(connack) !== 0)
      throw new Error(`CONNECT of ${clientId} refused with code ${connackCode(connack)}`)
    return { client, sessionPresent: connack.sessionPresent }
  }

  marker(): string {
    return `marker-${++this.markers}`
  }

  /**
   * Every retained message `client` gets for `filters`, proven complete: a retained marker is
   * stored after everything else, and its topic is subscribed to last, in the same SUBSCRIBE, so
   * brokers send it after the retained messages of the filters before it. A filter that starts with
   * a wildcard would match a plain marker topic, so it then gets a $ one, which it must not match.
   * A filter may come with MQTT 5 subscription options (Retain Handling); the marker's has none.
   */
  async retainedFor(
    client: RawClient,
    filters: (string | ISubscription)[],
    { publisher }: { publisher?: RawClient } = {},
  ): Promise<IPublishPacket[]> {
    const marker = this.marker()
    const wildcardFirst = filters.some((f) => /^[+#]/.test(typeof f === 'string' ? f : f.topic))
    const topic = wildcardFirst ? `$${this.ns}-marker/${marker}` : `${this.ns}-marker/${marker}`
    // From the client that published what is under test, if any: its messages are handled in order.
    await this.retain(publisher ?? (await this.client()), topic, marker)
    await client.subscribe([...filters, topic])
    return client.publishesBefore(marker)
  }

  /**
   * Every live message `client` got since it last looked, proven complete: `publisher` sends a
   * marker to `topic` (which `client` must match) after its other messages, so it arrives after
   * them.
   */
  async liveBefore(
    client: RawClient,
    publisher: RawClient,
    topic: string,
  ): Promise<IPublishPacket[]> {
    const marker = this.marker()
    await publisher.publish(topic, marker, { qos: 1 })
    return client.publishesBefore(marker)
  }

  /** End every client and session, then delete the retained messages the test left. */
  async close(): Promise<void> {
    for (const client of this.clients.splice(0)) client.end()
    // Connecting with CleanSession 1 (Clean Start 1 and no Session Expiry Interval in MQTT 5)
    // discards the stored session, and the new one ends with this connection.
    for (const clientId of this.sessions) {
      await (
        await RawClient.connect(this.url, {
          clientId,
          clean: true,
          protocolVersion: this.protocolVersion,
        })
      ).client.disconnect()
    }
    if (this.retainedTopics.size === 0) return
    const cleaner = await RawClient.connected(this.url)
    for (const topic of this.retainedTopics)
      await cleaner.publish(topic, '', { qos: 1, retain: true })
    await cleaner.disconnect()
  }
}

/** A PUBLISH as the demos print it: topic, payload, and the RETAIN flag as "(retained)". */
export function seen(packet: IPublishPacket): string {
  const payload = packet.payload.length ? String(packet.payload) : '(empty)'
  return `${packet.topic} ${payload}${packet.retain ? ' (retained)' : ''}`
}

/** Each PUBLISH as the demos print it, with the QoS it arrived at. */
export const withQoS = (packets: IPublishPacket[]) =>
  packets.map((packet) => `${seen(packet)} at QoS ${packet.qos}`)
export const seenAll = (packets: IPublishPacket[]) => packets.map(seen)

export interface Rule {
  /** Stable key, for the departures. */
  id: string
  /** The section of the specification (MQTT 3.1.1 or MQTT 5, as the file says) that states it. */
  section: string
  /**
   * The numbered statements that state it ('MQTT-3.3.1-5'), in that version's numbering, where the
   * specification numbers them: left out where only the section's prose says it.
   */
  requirements?: string[]
  /** The claim of ../shared/article/CLAIMS.md it proves, if any. */
  claim?: string
  /** The behaviour, in one line: the test's title and the page's row. */
  says: string
  /**
   * The rule lets time pass (an expiry, a will's delay): it runs beside the other rules that do, on
   * the same broker, rather than one after the other. Each test has a namespace of its own.
   */
  waits?: boolean
  test(probe: Probe): Promise<void>
}

interface Departure {
  /** What the broker does instead, in a few words: the page's cell. */
  note: string
  /** On aedes alone: the function of lib/ that makes the bundled broker keep the rule. */
  fix?: string
  /** On the bundled broker: why the departure is left as it is. */
  why?: string
}

type TargetKey = 'bundled' | 'mosquitto' | 'aedes' | 'cluster'

/** The rules each broker breaks, by rule id: their tests expect a wrong answer. */
export type Departures = Partial<Record<TargetKey, Record<string, Departure>>>

export interface Target {
  key: TargetKey
  /** The column heading on the page. */
  column: string
  /** The describe block's title. */
  title: string
  installed: boolean
  /** The title of the skipped block where it is not installed (Mosquitto's by default). */
  notInstalled?: string
  /** The protocol versions it is tested with; every one when undefined. */
  versions?: ProtocolVersion[]
  start(): Promise<{ url: string; close(): Promise<void> }>
}

const targets: Target[] = [
  {
    key: 'bundled',
    column: 'bundled broker',
    title: 'the bundled broker (lib/broker/main.ts)',
    installed: true,
    start: () => startBroker({ port: 0 }),
  },
  {
    key: 'mosquitto',
    column: 'Mosquitto',
    title: 'Mosquitto',
    installed: Boolean(mosquittoPath),
    start: startMosquitto,
  },
  {
    key: 'aedes',
    column: 'aedes alone',
    title: 'aedes alone, without the fixes of lib/broker/fixes.ts',
    installed: true,
    start: startPlainAedes,
  },
  {
    // MQTT 3.1.1 only: the cluster experiment and its demos speak 3.1.1; MQTT 5 on Redis is
    // untested.
    key: 'cluster',
    column: 'two brokers on Redis',
    title:
      'two bundled brokers on one Redis (lib/broker/redis.ts), the clients of each test taking ' +
      'turns',
    installed: Boolean(redisServerPath),
    notInstalled: REDIS_NOT_INSTALLED,
    versions: [4],
    start: startCluster,
  },
]

/** The brokers the rules of `protocolVersion` run against: the page's columns too. */
export function targetsFor(protocolVersion: ProtocolVersion): Target[] {
  return targets.filter((target) => !target.versions || target.versions.includes(protocolVersion))
}

/** Which rules passed on which broker in this run: `<target>:<rule id>`. */
export type Results = Map<string, boolean>

/**
 * One describe block per broker, one test per rule, speaking `protocolVersion`. A departure is
 * expected: its test passes when the broker gives the wrong answer, and fails, saying so, the day
 * the broker starts keeping the rule. Returns this run's results, filled in as the tests run.
 * The brokers are tested side by side (each has its own, so no rule sees another's messages), and
 * on each the rules run one after the other, but for those that let time pass (Rule.waits), which
 * run beside each other.
 */
export function conformanceSuites({
  file,
  rules,
  departures,
  protocolVersion,
}: {
  /** The test file, named in the message of a departure that is no longer one. */
  file: string
  rules: Rule[]
  departures: Departures
  protocolVersion: ProtocolVersion
}): Results {
  const results: Results = new Map()
  for (const target of targetsFor(protocolVersion)) {
    const suite = target.installed ? describe.concurrent : describe.skip
    suite(target.installed ? target.title : (target.notInstalled ?? NOT_INSTALLED), () => {
      let broker: { url: string; close(): Promise<void> }
      beforeAll(async () => {
        broker = await target.start()
      })
      afterAll(() => broker?.close())

      // Those that let time pass first, all side by side; then the others, one by one.
      for (const rule of [...rules.filter((r) => r.waits), ...rules.filter((r) => !r.waits)]) {
        const ids = (rule.requirements ?? []).map((id) => ` [${id}]`).join('')
        const title = `${rule.claim ? `${rule.claim} ` : ''}${rule.section}${ids}: ${rule.says}`
        const departure = departures[target.key]?.[rule.id]
        it(departure ? `${title} (departs: ${departure.note})` : title, {
          concurrent: rule.waits === true,
        }, async () => {
          const probe = new Probe(broker.url, protocolVersion)
          let failure: unknown
          await rule.test(probe).catch((error: unknown) => (failure = error))
          await probe.close()
          results.set(`${target.key}:${rule.id}`, failure === undefined)
          if (!departure) {
            if (failure !== undefined) throw failure
          } else if (failure === undefined) {
            throw new Error(
              `${target.column} keeps this rule now: remove its departure from ${file}, then npm ` +
                `run conformance`,
            )
          } else if (!(failure instanceof Error && failure.name === 'AssertionError')) {
            // A departure is a wrong answer from the broker, not a test that could not finish.
            throw failure
          }
        })
      }
    })
  }
  return results
}
