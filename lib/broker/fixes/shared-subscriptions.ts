// Shared subscriptions, $share/<group>/<filter>: each message that matches a group's filter goes to
// one member of the group, not to each. Keeps MQTT 5 §4.8.2 [MQTT-4.8.2-1] to [MQTT-4.8.2-6],
// [MQTT-3.8.3-4] (No Local on a shared subscription is a Protocol Error) and §3.2.2.3.13 (CONNACK
// says they are available); MQTT 3.1.1 clients may use them too, as on Mosquitto.
import { deserialize, serialize } from 'node:v8'
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import { internalsOf } from './aedes-internals.ts'
import { rewriteOutgoing } from './outgoing.ts'

const PREFIX = '$share/'
/** MQTT 5 §2.4: the reason code of a DISCONNECT for a packet that breaks the protocol. */
const PROTOCOL_ERROR = 0x82

type Deliver = (packet: AedesPublishPacket, done: () => void) => void

/** One client in one group: aedes' delivery function for its `$share/...` subscription. */
interface Member {
  client: Client
  clientId: string
  deliver: Deliver
  qos: number
  group: Group
  /** The last of this member's messages being stored, when its session outlives its connection. */
  stored: Promise<unknown>
}

/** A message sent to a member and not yet acknowledged, kept to hand it on if the member leaves. */
interface InFlight {
  packet: AedesPublishPacket
  group: Group
}

/** One group on one filter (`$share/lights/home/#`: group lights, filter home/#). */
export interface Group {
  /** `lights/home/#`: what names the group across brokers. */
  key: string
  filter: string
  /** Members connected to this broker, in the order they joined. */
  online: Member[]
  /** Members whose session outlives their connection, offline now: client id -> granted QoS. */
  offline: Map<string, number>
  /** The index of the member whose turn it was last. */
  turn: number
  /** What aedes' message flow calls with each message on `filter`. */
  listener: Deliver
}

/**
 * How several brokers on one Redis agree on the member of a group that gets a message. Without it
 * (one broker), each broker chooses among its own members.
 */
export interface ClusterShares {
  /** A member joined a group on this broker; `online` false: it left, but its session stays. */
  joined(group: Group, clientId: string, online: boolean): void
  /** A member left a group on this broker, with its session. */
  left(group: Group, clientId: string): void
  /**
   * The member chosen for this message (by client id, with its broker): the same answer on every
   * broker, since the first to ask decides, which `decided` tells. Undefined when the group has no
   * member left.
   */
  choose(group: Group, packet: AedesPublishPacket): Promise<Chosen | undefined>
}

interface Chosen {
  clientId: string
  online: boolean
  brokerId: string
  decided: boolean
}

/** `$share/lights/home/#` -> { key: 'lights/home/#', filter: 'home/#' }; undefined if not valid. */
export function parseShare(topic: string): { key: string; filter: string } | undefined {
  if (!topic.startsWith(PREFIX)) return undefined
  const rest = topic.slice(PREFIX.length)
  const slash = rest.indexOf('/')
  // [MQTT-4.8.2-1] [MQTT-4.8.2-2]: a ShareName of one character or more, without + or #, then a
  // filter.
  if (slash < 1 || /[+#]/.test(rest.slice(0, slash)) || slash === rest.length - 1) return undefined
  return { key: rest, filter: rest.slice(slash + 1) }
}

/**
 * aedes 2.0.0-beta.1 refuses `$share/...` from an MQTT 5 client with SUBACK 0x9E and says in
 * CONNACK that it serves no shared subscriptions; from an MQTT 3.1.1 client it takes the filter
 * literally, so that it matches no topic. Here aedes keeps each member's subscription as it keeps
 * any other (in the client's session, in the store with --persist, restored when the session
 * resumes), and its message flow is asked for the group's filter once per group: for each message
 * one member is chosen, in turn, and aedes' own delivery function for that member's subscription
 * sends it. The rule for the choice, the messages a member leaves unacknowledged, and members that
 * are offline are on docs/conformance.md.
 */
export function serveSharedSubscriptions(aedes: Aedes, cluster?: ClusterShares): void {
  const groups = new Map<string, Group>()
  const members = new WeakMap<Deliver, Member>()
  const clients = new Set<Client>()
  const speaks5 = new WeakSet<Client>()
  const inFlight = new WeakMap<Client, Map<number, InFlight>>()
  /** What members whose session outlives their connection left unacknowledged, by client id. */
  const parked = new Map<string, InFlight[]>()
  const internals = aedes as unknown as {
    subscribe(topic: string, deliver: Deliver, done?: (error?: Error) => void): void
    unsubscribe(topic: string, deliver: Deliver, done?: (error?: Error) => void): void
    persistence: {
      subscriptionsByClient(client: { id: string }): PromiseLike<unknown>
      outgoingEnqueue(to: { clientId: string }, packet: AedesPublishPacket): Promise<void>
    }
  }
  /** A new number from this broker for a message, as aedes numbers each one it routes. */
  const numbered = () => {
    const counting = aedes as unknown as { id: string; counter: number }
    return { brokerId: counting.id, brokerCounter: ++counting.counter }
  }
  const subscribe = internals.subscribe.bind(aedes)
  const unsubscribe = internals.unsubscribe.bind(aedes)

  // aedes checks `client.version === 5` as it refuses $share/...: while it handles a SUBSCRIBE
  // that holds one (a step it takes without waiting), an MQTT 5 client reads as MQTT 3.1.1.
  let pretending = false
  const asIf311 = <T>(run: () => T): T => {
    pretending = true
    try {
      return run()
    } finally {
      pretending = false
    }
  }
  const hasShare = (packet: { subscriptions?: { topic: string }[] }) =>
    packet.subscriptions?.some((s) => s.topic.startsWith(PREFIX)) ?? false

  const preConnect = aedes.preConnect
  aedes.preConnect = (client, packet, callback) => {
    clients.add(client)
    client.conn.once('close', () => clients.delete(client))
    if (packet.protocolVersion === 5) {
      speaks5.add(client)
      // §3.2.2.3.13: aedes says Shared Subscription Available 0 in every CONNACK.
      rewriteOutgoing(client, (out) =>
        out.cmd === 'connack' && out.properties?.sharedSubscriptionAvailable === false
          ? { ...out, properties: { ...out.properties, sharedSubscriptionAvailable: true } }
          : out,
      )
      let version: number | undefined
      Object.defineProperty(client, 'version', {
        get: () => (pretending && version === 5 ? 4 : version),
        set: (value: number) => {
          version = value
        },
        configurable: true,
        enumerable: true,
      })
    }
    // aedes' parser hands each packet to aedes' handler; these listeners run just before and after.
    const parser = (client as unknown as { _parser: NodeJS.EventEmitter })._parser
    let wrapped = false
    parser.prependListener('packet', (packet: PacketSeen) => {
      if (packet.cmd === 'subscribe' && hasShare(packet)) {
        wrapped = true
        pretending = true
      } else if (packet.cmd === 'puback' || packet.cmd === 'pubrec') {
        acknowledged(client, packet)
      }
    })
    parser.on('packet', () => {
      if (wrapped) pretending = wrapped = false
    })
    // A SUBSCRIBE read before the CONNACK was sent waits in aedes until the client is 'connected'.
    client.prependOnceListener('connected', () => {
      pretending = true
    })
    client.once('connected', () => {
      pretending = false
    })
    preConnect.call(aedes, client, packet, callback)
  }

  // A resumed session's subscriptions are restored, from the store, in the same step.
  const byClient = internals.persistence.subscriptionsByClient.bind(internals.persistence)
  internals.persistence.subscriptionsByClient = (client) => {
    const found = byClient(client)
    return {
      // biome-ignore lint/suspicious/noThenProperty: aedes waits for this with then()
      then: (ok, failed) =>
        found.then((subs) => (ok ? asIf311(() => ok(subs)) : subs), failed) as never,
    }
  }

  const authorizeSubscribe = aedes.authorizeSubscribe
  aedes.authorizeSubscribe = (client, subscription, callback) => {
    if (subscription.topic.startsWith(PREFIX)) {
      const nl = (subscription as { nl?: boolean }).nl
      // [MQTT-3.8.3-4]: No Local on a shared subscription is a Protocol Error.
      // Read while aedes handles the SUBSCRIBE, when an MQTT 5 client reads as 3.1.1.
      if (speaks5.has(client) && nl) {
        ;(client as unknown as Disconnecting).disconnect({ reasonCode: PROTOCOL_ERROR }, () =>
          callback(null, null),
        )
        return
      }
      if (!parseShare(subscription.topic)) return callback(null, null)
    }
    authorizeSubscribe.call(aedes, client, subscription, callback)
  }

  const memberOf = (topic: string, deliver: Deliver) => {
    for (const client of clients) {
      const subscription = internalsOf(client).subscriptions[topic] as { func?: Deliver }
      if (subscription?.func === deliver) return client
    }
    return undefined
  }

  internals.subscribe = (topic, deliver, done) => {
    const share = parseShare(topic)
    if (!share) return subscribe(topic, deliver, done)
    const client = memberOf(topic, deliver)
    if (!client) return done?.()
    let group = groups.get(share.key)
    const isNew = group === undefined
    if (!group) {
      const made: Group = {
        ...share,
        online: [],
        offline: new Map(),
        turn: -1,
        listener: (packet, sent) => dispatch(made, packet, sent),
      }
      group = made
      groups.set(share.key, group)
    }
    group.online = group.online.filter((m) => m.clientId !== client.id)
    group.offline.delete(client.id)
    const member: Member = {
      client,
      clientId: client.id,
      deliver,
      qos: internalsOf(client).subscriptions[topic].qos,
      group,
      stored: Promise.resolve(),
    }
    group.online.push(member)
    members.set(deliver, member)
    // Back in its session: aedes sends it what it left unacknowledged ([MQTT-4.8.2-4]).
    parked.delete(client.id)
    cluster?.joined(group, client.id, true)
    if (isNew) subscribe(share.filter, group.listener, done)
    else done?.()
  }

  internals.unsubscribe = (topic, deliver, done) => {
    if (!topic.startsWith(PREFIX)) return unsubscribe(topic, deliver, done)
    const member = members.get(deliver)
    if (!member) return done?.()
    members.delete(deliver)
    const { group, client } = member
    group.online = group.online.filter((m) => m !== member)
    const closing = (client as unknown as { closed?: boolean }).closed === true
    if (closing && !client.clean) {
      group.offline.set(client.id, member.qos)
      cluster?.joined(group, client.id, false)
    } else {
      cluster?.left(group, client.id)
    }
    if (closing) leave(client)
    if (group.online.length === 0 && group.offline.size === 0) {
      groups.delete(group.key)
      unsubscribe(group.filter, group.listener, done)
    } else done?.()
  }

  /**
   * A member's connection ended. What it left unacknowledged at QoS 1 goes to another member once
   * its session ends: now, or, for a session that outlives the connection, when it expires.
   * [MQTT-4.8.2-5]: at QoS 2 it may have the message already, so no other member gets it.
   */
  const leave = (client: Client) => {
    const left = [...(inFlight.get(client)?.values() ?? [])].filter((m) => m.packet.qos === 1)
    inFlight.delete(client)
    if (left.length === 0) return
    if (client.clean) {
      for (const message of left) resend(message)
    } else {
      parked.set(client.id, [...(parked.get(client.id) ?? []), ...left])
    }
  }
  const resend = ({ group, packet }: InFlight) => {
    // A new number from this broker, which the next member has not seen: aedes drops a message
    // whose number it has seen before as a duplicate.
    const fresh = { ...packet, ...numbered(), dup: false }
    if (groups.get(group.key) !== group) return
    if (!cluster) return dispatch(group, fresh, () => {})
    cluster.choose(group, fresh).then(
      (chosen) => chosen && handOff(group, chosen, fresh),
      () => undefined,
    )
  }
  aedes.on('sessionExpired', (client) => {
    for (const group of groups.values()) {
      if (group.offline.delete(client.id)) cluster?.left(group, client.id)
    }
    const left = parked.get(client.id)
    parked.delete(client.id)
    for (const message of left ?? []) resend(message)
  })

  const acknowledged = (client: Client, packet: PacketSeen) => {
    const sent = inFlight.get(client)
    const message = packet.messageId === undefined ? undefined : sent?.get(packet.messageId)
    if (!message) return
    // A PUBREC hands a QoS 2 message over; a refusal discards it ([MQTT-4.8.2-6]): either way, no
    // other member gets it.
    sent!.delete(packet.messageId!)
  }

  // The member being sent a message now, so that authorizeForward (which aedes calls in the same
  // step) numbers it and keeps it in flight.
  let sending: { member: Member; packet: AedesPublishPacket } | undefined
  const forward = aedes.authorizeForward
  aedes.authorizeForward = (client, packet) => {
    const toForward = forward.call(aedes, client, packet)
    if (!toForward || sending?.member.client !== client || toForward.qos === 0) return toForward
    // aedes numbers a message it sends by the client's next packet identifier unless it has one.
    const numbering = client as unknown as { _nextId: number }
    const messageId = numbering._nextId
    numbering._nextId = messageId >= 65535 ? 1 : messageId + 1
    let sent = inFlight.get(client)
    if (!sent) inFlight.set(client, (sent = new Map()))
    sent.set(messageId, { packet: sending.packet, group: sending.member.group })
    return { ...toForward, messageId }
  }

  const deliverTo = (member: Member, packet: AedesPublishPacket, done: () => void) => {
    const send = () => {
      sending = { member, packet }
      try {
        member.deliver(packet, done)
      } finally {
        sending = undefined
      }
    }
    if (member.client.clean || Math.min(packet.qos, member.qos) === 0) return send()
    // aedes sends a session that outlives its connection only what its store holds for it: what
    // aedes itself routes is stored first, for each session whose subscription matches, and so
    // is a member's message here, one after the other so that they leave in order.
    const queued = { ...packet, qos: Math.min(packet.qos, member.qos) as 1 | 2 }
    member.stored = member.stored
      .then(() => internals.persistence.outgoingEnqueue({ clientId: member.clientId }, queued))
      .then(send, () => done())
  }
  /** Queue the message in an offline member's session, at its granted QoS; QoS 0 is not queued. */
  const queueFor = (
    clientId: string,
    qos: number,
    packet: AedesPublishPacket,
    done: () => void,
  ) => {
    const at = Math.min(qos, packet.qos)
    if (at === 0) return done()
    const queued = { ...packet, ...numbered(), qos: at as 1 | 2, retain: false, dup: false }
    internals.persistence.outgoingEnqueue({ clientId }, queued).then(
      () => done(),
      () => done(),
    )
  }

  /**
   * On Redis, every broker hears each message and is told the same member: the member's broker
   * sends it, or, for a member offline, the broker it left queues it in its session.
   */
  const sendChosen = (
    group: Group,
    chosen: Chosen,
    packet: AedesPublishPacket,
    done: () => void,
  ) => {
    if (chosen.brokerId !== aedes.id) return done()
    const member = group.online.find((m) => m.clientId === chosen.clientId)
    if (member) return deliverTo(member, packet, done)
    const offlineQoS = group.offline.get(chosen.clientId)
    if (offlineQoS !== undefined) return queueFor(chosen.clientId, offlineQoS, packet, done)
    done()
  }
  // A message a member left unacknowledged, sent again on Redis: to the broker of the member
  // chosen for it, which only this broker hears of.
  const handoff = `$share-handoff/${aedes.id}`
  const mq = (aedes as unknown as { mq: { emit(packet: object, done: () => void): void } }).mq
  const handOff = (group: Group, chosen: Chosen, packet: AedesPublishPacket) => {
    if (chosen.brokerId === aedes.id) return sendChosen(group, chosen, packet, () => {})
    const payload = serialize({ group: group.key, chosen, packet })
    mq.emit(
      { cmd: 'publish', topic: `$share-handoff/${chosen.brokerId}`, payload, qos: 0 },
      () => {},
    )
  }
  if (cluster) {
    subscribe(handoff, (message, done) => {
      const { group: name, chosen, packet } = deserialize(message.payload as Buffer) as HandOff
      const group = groups.get(name)
      if (!group) return done()
      // v8's copy of a Buffer comes back a Uint8Array.
      const restored = { ...packet, payload: Buffer.from(packet.payload) }
      const data = packet.properties?.correlationData
      if (data) restored.properties = { ...packet.properties, correlationData: Buffer.from(data) }
      sendChosen(group, chosen, restored, done)
    })
  }

  const dispatch = (group: Group, packet: AedesPublishPacket, done: () => void) => {
    // [MQTT-4.7.2-1]: a filter that starts with a wildcard matches no $ topic.
    if (packet.topic.startsWith('$') && /^[+#]/.test(group.filter)) return done()
    if (cluster) {
      cluster.choose(group, packet).then(
        (chosen) => (chosen ? sendChosen(group, chosen, packet, done) : done()),
        () => done(),
      )
      return
    }
    if (group.online.length > 0) {
      group.turn = (group.turn + 1) % group.online.length
      return deliverTo(group.online[group.turn], packet, done)
    }
    const offline = [...group.offline]
    if (offline.length === 0) return done()
    group.turn = (group.turn + 1) % offline.length
    const [clientId, qos] = offline[group.turn]
    queueFor(clientId, qos, packet, done)
  }
}

/** The acknowledgements and SUBSCRIBEs this file reads as they arrive. */
interface PacketSeen {
  cmd: string
  messageId?: number
  reasonCode?: number
  subscriptions?: { topic: string }[]
}

/** What a broker sends the broker of the member chosen for a message sent again. */
interface HandOff {
  group: string
  chosen: Chosen
  packet: AedesPublishPacket
}

interface Disconnecting {
  disconnect(options: { reasonCode: number }, done: () => void): void
}
