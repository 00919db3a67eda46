// The bundled broker on a shared Redis (`npm run broker -- --redis URL`): several broker processes
// pass every message to each other through mqemitter-redis and keep retained messages, sessions,
// subscriptions, queued messages and wills in aedes-persistence-redis, so a client may connect to
// any of them. Here: the URL checked, Redis reached or one line saying why not, and, while Redis is
// away, the broker refuses what it could not keep rather than acknowledge it and lose it.
import { Readable } from 'node:stream'
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import type { Redis } from 'ioredis'
import type { ClusterShares } from './fixes/shared-subscriptions.ts'
import { redisShares } from './redis-shares.ts'

/** How long to wait for Redis at start before giving up, and between attempts once it went away. */
const CONNECT_TIMEOUT_MS = 5000
const RETRY_MS = 1000
/**
 * A command to the store sent while Redis is away waits for this many reconnection attempts (a
 * second each) and then fails: a Redis that comes back within them gets it then.
 */
const RETRIES_PER_COMMAND = 5
/**
 * A command Redis has not answered after this long fails, and its connection is made again: a Redis
 * that stops answering without closing the connection (stopped, or cut off by the network) is then
 * seen to be away, like one that closed it. Longer than the wait of a command sent while Redis is
 * away.
 */
const COMMAND_TIMEOUT_MS = (RETRIES_PER_COMMAND + 2) * RETRY_MS
/**
 * Redis passes a message on only to the brokers subscribed at that moment: one still reconnecting
 * misses it. So a broker that is back waits this long, two of everyone's retry intervals, before it
 * serves clients again, by when the other brokers are back on Redis too.
 */
const SETTLE_MS = 2 * RETRY_MS

const EXAMPLE_REDIS_URL = 'redis://127.0.0.1:6379'

interface SharedRedis {
  /** What aedes takes as its `mq` and `persistence` options. */
  aedesOptions: { mq: unknown; persistence: unknown }
  /**
   * Install the hooks: refuse connections, publishes and subscriptions while Redis is away,
   * acknowledge a QoS 1 message once it is passed on, forget a client's wills left on other
   * brokers.
   */
  installHooks(aedes: Aedes): void
  /**
   * How this broker, `brokerId`, and the others agree on the member of a shared subscription's
   * group that gets each message (./redis-shares.ts).
   */
  shares(brokerId: string): ClusterShares
  /** Close the three connections (two for the messages, one for the store). */
  close(): Promise<void>
}

/**
 * What is wrong with `url` as a Redis URL, in words a user can act on; undefined when it is fine.
 */
function redisUrlProblem(url: string): string | undefined {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return `${JSON.stringify(url)} is not a URL; give one like ${EXAMPLE_REDIS_URL}`
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    return (
      `${url} is not a Redis URL: it must start with redis:// (or rediss:// for TLS), as in ` +
      `${EXAMPLE_REDIS_URL}`
    )
  }
  if (parsed.hostname === '') return `${url} names no host; give one like ${EXAMPLE_REDIS_URL}`
  if (!/^(\/\d*)?$/.test(parsed.pathname))
    return `${url}: after the port only a database number may follow, as in ${EXAMPLE_REDIS_URL}/0`
  if (parsed.search !== '' || parsed.hash !== '')
    return (
      `${url}: options after ? or # are not taken; give only ` +
      `redis://[:PASSWORD@]HOST[:PORT][/DB]`
    )
  return undefined
}

/**
 * Connect to the Redis at `url` and build aedes' shared message flow and store on it. Rejects with
 * one line when Redis cannot be used: a bad URL, nobody listening, a wrong password, not a Redis at
 * all. `say` gets one line each time Redis goes away and comes back.
 */
export async function connectRedis(url: string, say: (line: string) => void): Promise<SharedRedis> {
  const problem = redisUrlProblem(url)
  if (problem) throw new Error(problem)
  const shown = redactedRedisUrl(url)
  // Loaded here, by a broker that uses Redis, rather than by every broker as it starts.
  const [ioredis, { default: mqemitterRedis }, { default: redisPersistence }] = await Promise.all([
    import('ioredis'),
    import('mqemitter-redis'),
    import('aedes-persistence-redis'),
  ])
  const connections = ['pub', 'sub', 'store'].map(
    (role) =>
      new ioredis.Redis(url, {
        lazyConnect: true,
        connectTimeout: CONNECT_TIMEOUT_MS,
        // At start, the first failure is the answer; retryStrategy is set to retry once all are
        // ready.
        retryStrategy: () => null,
        maxRetriesPerRequest: RETRIES_PER_COMMAND,
        commandTimeout: COMMAND_TIMEOUT_MS,
        // A message is passed on by PUBLISH, which reaches only the brokers subscribed at that
        // moment. Held back or sent again once Redis is back, it could reach Redis before the other
        // brokers are subscribed again, and be lost unseen: so it fails at once, and its PUBACK is
        // never sent.
        ...(role === 'pub' && { enableOfflineQueue: false, autoResendUnfulfilledCommands: false }),
      }),
  )
  const [pubConn, subConn, storeConn] = connections
  const lastError: (Error | undefined)[] = connections.map(() => undefined)
  for (const [i, connection] of connections.entries()) {
    connection.on('error', (error: Error) => {
      lastError[i] = error
    })
  }
  // aedes-persistence-redis sends some commands without waiting for them (taking a will off a
  // list): one that fails while Redis is away would end the process as an unhandled rejection. Each
  // command's promise gets a handler here, which also starts a new connection when Redis has not
  // answered in time; whoever waits for the command still gets the error. A command that was on
  // its way when its connection closed keeps its deadline through the reconnection, or, on `pub`,
  // is dropped (it is not sent again) and waits for it: its timing out says nothing of the Redis
  // that is back, which would be dropped again, with every client's connection.
  const closes = connections.map(() => 0)
  const unanswered = new Set<(error: Error) => void>()
  for (const [i, connection] of connections.entries()) {
    connection.on('close', () => closes[i]++)
    const send = connection.sendCommand.bind(connection)
    connection.sendCommand = ((...args: Parameters<Redis['sendCommand']>) => {
      const result = send(...args)
      const sentBetweenCloses = closes[i]
      ;(result as Promise<unknown> | undefined)?.catch?.((error: Error) => {
        if (
          error.message === 'Command timed out' &&
          connection.status === 'ready' &&
          closes[i] === sentBetweenCloses
        ) {
          lastError[i] = Object.assign(
            new Error(`no answer within ${COMMAND_TIMEOUT_MS / 1000} s`),
            { code: 'ETIMEDOUT' },
          )
          connection.disconnect(true)
        }
      })
      if (connection !== pubConn || !(result instanceof Promise)) return result
      // A message dropped so fails at the close rather than at its deadline: its PUBACK is not
      // waited for in vain.
      const answer = new Promise((resolve, reject) => {
        unanswered.add(reject)
        result.then(resolve, reject).finally(() => unanswered.delete(reject))
      })
      answer.catch(() => undefined)
      return answer
    }) as Redis['sendCommand']
  }
  pubConn.on('close', () => {
    for (const fail of unanswered) fail(new Error('the connection closed before Redis answered'))
    unanswered.clear()
  })
  // ioredis's connectTimeout covers the TCP connection only: a server that accepts it and never
  // answers would keep connect() waiting for ever.
  let timer: NodeJS.Timeout | undefined
  const silent = new Promise<never>((_, reject) => {
    const noAnswer = Object.assign(new Error('no answer'), { code: 'ETIMEDOUT' })
    const giveUp = () => reject(new Error(whyRedisIsUnusable(shown, noAnswer)))
    timer = setTimeout(giveUp, CONNECT_TIMEOUT_MS)
  })
  try {
    await Promise.race([
      silent,
      Promise.all(
        connections.map(async (connection, i) => {
          try {
            await connection.connect()
          } catch (error) {
            throw new Error(whyRedisIsUnusable(shown, lastError[i] ?? (error as Error)))
          }
        }),
      ),
    ])
    // ioredis reports some refusals (a database number out of range) as an error and carries on.
    const refused = lastError.find(Boolean)
    if (refused) throw new Error(whyRedisIsUnusable(shown, refused))
  } catch (error) {
    for (const connection of connections) connection.disconnect()
    throw error
  } finally {
    clearTimeout(timer)
  }
  let runId = await serverRunId(storeConn)
  for (const connection of connections) connection.options.retryStrategy = () => RETRY_MS

  // One line when the first connection drops and one when all three are back, whatever drops first.
  let away = false
  let closing = false
  const ready = () => connections.every((connection) => connection.status === 'ready')
  let servingFrom = 0
  const serving = () => ready() && Date.now() >= servingFrom
  for (const [i, connection] of connections.entries()) {
    connection.on('close', () => {
      if (away || closing) return
      away = true
      const why = lastError[i] ? ` (${failureReason(lastError[i]!)})` : ''
      say(
        `lost Redis at ${shown}${why}; until it is back this broker refuses connections, ` +
          `publishes and subscriptions, and messages from the other brokers do not reach it; ` +
          `trying again every ${RETRY_MS / 1000} s`,
      )
    })
    connection.on('ready', async () => {
      lastError[i] = undefined
      if (!away || !ready()) return
      away = false
      servingFrom = Date.now() + SETTLE_MS
      const now = await serverRunId(storeConn).catch(() => runId)
      const restarted = now !== runId
      runId = now
      const settle =
        `this broker serves clients again in ${SETTLE_MS / 1000} s, once the other ` +
        `brokers are back on it too`
      say(
        restarted
          ? `Redis at ${shown} is back, but it restarted: the retained messages, sessions and ` +
              `queued messages it held are gone unless it keeps them on disk; ${settle}`
          : `Redis at ${shown} is back; ${settle}`,
      )
    })
  }

  const mq = mqemitterRedis({ pubConn, subConn }) as unknown as MessageFlow
  // mqemitter-redis re-emits connection errors on `state`, where an unheard 'error' would end the
  // process.
  mq.state.on('error', () => undefined)
  // aedes closes the message flow when it closes. mqemitter-redis sends QUIT and waits for the
  // connections to end, which they never do while they wait to reconnect: then they are dropped,
  // and the flow closed as an MQEmitter (mqemitter-redis keeps that close as _close).
  const closeFlow = mq.close.bind(mq)
  mq.close = (done) => {
    closing = true
    for (const connection of connections) connection.options.retryStrategy = () => null
    if (ready()) return closeFlow(done)
    pubConn.disconnect()
    subConn.disconnect()
    mq._close(done)
  }

  return {
    aedesOptions: { mq, persistence: inOrder(redisPersistence({ conn: storeConn }) as Store) },
    installHooks: (aedes) => holdClientsWhileRedisIsAway(aedes, serving, shown, say),
    shares: (brokerId) => redisShares(storeConn, subConn, brokerId),
    async close() {
      closing = true
      // QUIT lets the store's last writes (a will taken off the list, say) finish first.
      if (storeConn.status === 'ready') await storeConn.quit().catch(() => undefined)
      for (const connection of connections) connection.disconnect()
    },
  }
}

/** The parts of aedes-persistence-redis that inOrder() changes. */
interface Store {
  addSubscriptions(client: Client, subscriptions: object[]): Promise<unknown>
  removeSubscriptions(client: Client, topics: string[]): Promise<unknown>
  createRetainedStream(pattern: string): Readable
  createRetainedStreamCombi(patterns: string[]): Readable
}

/**
 * Two departures of aedes on aedes-persistence-redis, mended on the store it is given:
 *
 * - A SUBSCRIBE of several filters by a persistent session never got its SUBACK. aedes stores the
 *   whole SUBSCRIBE once per filter, at once; the store announces each change to every broker and
 *   waits for its own announcement to come back through Redis, keyed by client and first filter, so
 *   the second wait replaced the first, which never ended. Here a client's changes are made one at
 *   a time, and the same SUBSCRIBE is stored once.
 * - MQTT 3.1.1 §3.8.4 [MQTT-3.8.4-4]: a SUBSCRIBE of several filters is handled as one SUBSCRIBE
 *   per filter, in order, so the retained messages of the first filter come before those of the
 *   next. The store sent those of exact topics first, then those of wildcard filters. Here they are
 *   asked for filter by filter; a topic that two filters match is sent once, as before.
 */
function inOrder(store: Store): Store {
  const queues = new Map<string, Promise<unknown>>()
  const stored = new WeakMap<object[], Promise<unknown>>()
  /** Run `change` once the client's changes before it are done. */
  const inTurn = (client: Client, change: () => Promise<unknown>) => {
    const turn = (queues.get(client.id) ?? Promise.resolve()).catch(() => undefined).then(change)
    queues.set(client.id, turn)
    void turn
      .finally(() => queues.get(client.id) === turn && queues.delete(client.id))
      .catch(() => undefined)
    return turn
  }
  const addSubscriptions = store.addSubscriptions.bind(store)
  const removeSubscriptions = store.removeSubscriptions.bind(store)
  const retained = store.createRetainedStream.bind(store)
  store.addSubscriptions = (client, subscriptions) => {
    const already = stored.get(subscriptions)
    if (already) return already
    const storing = inTurn(client, () => addSubscriptions(client, subscriptions))
    stored.set(subscriptions, storing)
    return storing
  }
  store.removeSubscriptions = (client, topics) =>
    inTurn(client, () => removeSubscriptions(client, topics))
  store.createRetainedStreamCombi = (patterns) =>
    Readable.from(
      (async function* () {
        const sent = new Set<string>()
        for (const pattern of patterns) {
          for await (const packet of retained(pattern) as AsyncIterable<{ topic: string }>) {
            if (sent.has(packet.topic)) continue
            sent.add(packet.topic)
            yield packet
          }
        }
      })(),
    )
  return store
}

/** The parts of mqemitter-redis this file relies on beyond what aedes does with it. */
interface MessageFlow {
  state: NodeJS.EventEmitter
  close(done: () => void): void
  _close(done: () => void): void
}

/**
 * While Redis is away (and for SETTLE_MS after): a CONNECT is closed unanswered, a PUBLISH closes
 * the connection before aedes acknowledges it (so the client sends it again later; an MQTT 5 client
 * gets PUBACK 0x87), a SUBSCRIBE is granted nothing (0x80). A QoS 1 message is acknowledged only
 * once it has been passed on. What cannot be refused is said in one line, not hidden: a Last Will
 * that Redis does not come back in time to take.
 */
function holdClientsWhileRedisIsAway(
  aedes: Aedes,
  serving: () => boolean,
  shown: string,
  say: (line: string) => void,
): void {
  const unavailable = () => new Error(`Redis at ${shown} is away`)
  // A refused CONNECT is closed without a CONNACK: return code 3 (server unavailable) would be more
  // precise, but MQTT.js stops reconnecting after any refusal, and a client should come back once
  // Redis does.
  const preConnect = aedes.preConnect
  aedes.preConnect = (client, packet, callback) => {
    if (!serving()) return callback(unavailable(), false)
    preConnect.call(aedes, client, packet, callback)
  }
  // A client's Last Will is let through, not refused: a retained one is stored once Redis is back
  // (within RETRIES_PER_COMMAND attempts), and a failure to pass it on is reported. aedes hands it
  // to publishWill, which its types leave out, before any hook sees it.
  const wills = new WeakSet<object>()
  const withWills = aedes as unknown as { publishWill(client: Client, will: object): void }
  const publishWill = withWills.publishWill
  withWills.publishWill = (client, will) => {
    wills.add(will)
    publishWill.call(aedes, client, will)
  }
  // aedes' types leave out the client argument of publish.
  const publish = aedes.publish as unknown as (
    packet: AedesPublishPacket,
    client: Client | null,
    done: (error?: Error) => void,
  ) => void
  // aedes writes the PUBACK of a QoS 1 PUBLISH before it passes the message on, which in memory
  // takes no time, and through Redis a round trip or two: a client that subscribed right after the
  // PUBACK got the message live as well as retained, a session that came back got it queued and
  // live, and a message that Redis then failed to take was acknowledged and lost. So a client's
  // QoS 1 message is passed on here, once authorized, and handed back to aedes, which acknowledges
  // it (and does not pass it on again), once it and the client's messages before it have been:
  // PUBACKs leave in the order their messages came [MQTT-4.6.0-2]. If passing one on fails, the
  // connection is closed instead, and neither its PUBACK nor any after it is sent: the client sends
  // them again. (Corking the connection until a message was passed on held every PUBACK for as
  // long as any other message was under way: a client that published faster than Redis answered,
  // as on a busy machine, got none.)
  const passedOn = new WeakSet<object>()
  const lastInLine = new WeakMap<Client, Promise<Error | undefined>>()
  const closedFor = new WeakSet<Client>()
  const authorizePublish = aedes.authorizePublish
  aedes.authorizePublish = (client, packet, callback) => {
    if (client && !serving() && !wills.has(packet)) return callback(unavailable())
    authorizePublish.call(aedes, client, packet, (error) => {
      if (error || !client || packet.qos !== 1 || wills.has(packet)) return callback(error)
      const passing = new Promise<Error | undefined>((resolve) =>
        publish.call(aedes, packet as AedesPublishPacket, client, (failure) => resolve(failure)),
      )
      const turn = Promise.all([lastInLine.get(client), passing]).then(
        ([earlier, failure]) => earlier ?? failure,
      )
      lastInLine.set(client, turn)
      void turn.then((failure) => {
        if (lastInLine.get(client) === turn) lastInLine.delete(client)
        if (!failure) {
          passedOn.add(packet)
          return callback(null)
        }
        if (!closedFor.has(client)) {
          closedFor.add(client)
          const message = `client ${client.id}'s QoS 1 message to ${packet.topic}`
          const why = `Redis at ${shown}: ${failureReason(failure)}`
          say(
            `${message} could not be passed on (${why}); closing its connection before the ` +
              'PUBACK, so that it sends the message again',
          )
          client.conn.destroy(new Error('Redis did not take a QoS 1 message'))
        }
        callback(failure)
      })
    })
  }
  const authorizeSubscribe = aedes.authorizeSubscribe
  aedes.authorizeSubscribe = (client, subscription, callback) => {
    if (!serving()) return callback(null, null)
    authorizeSubscribe.call(aedes, client, subscription, callback)
  }
  ;(aedes as unknown as { publish: typeof publish }).publish = (packet, client, done) => {
    if (passedOn.has(packet)) {
      passedOn.delete(packet)
      return done()
    }
    publish.call(aedes, packet, client, (error) => {
      if (error && client && wills.has(packet)) {
        const will = `the Last Will of client ${client.id} to ${packet.topic}`
        const why = `Redis at ${shown} failed (${failureReason(error)})`
        say(`${will} was not passed on to the clients connected now: ${why}`)
      }
      done(error)
    })
  }
  forgetWillsLeftOnOtherBrokers(aedes, say)
  // aedes reports store failures outside any client (wills of a broker that is gone) as 'error'.
  ;(aedes as NodeJS.EventEmitter).on('error', (error: Error) =>
    say(`Redis at ${shown} failed: ${failureReason(error)}`),
  )
}

/**
 * A client whose broker crashed comes back on another one, its will still stored under the dead
 * broker's id. aedes has the other brokers publish the wills of a broker whose heartbeat stopped,
 * three to seven heartbeat intervals later (minutes, by default), whether or not their client has
 * come back since: a device online on B would be reported "offline" by its old will. So when a
 * client connects here, the wills it left with other brokers are deleted: with the broker it last
 * connected to (every broker announces each connection on $SYS/<broker id>/new/clients), and with
 * every broker this one hears the heartbeat of. A broker that is still running publishes the will
 * of a client it loses to another broker from memory, as it would anyway.
 */
function forgetWillsLeftOnOtherBrokers(aedes: Aedes, say: (line: string) => void): void {
  const { persistence, brokers, mq } = aedes as unknown as {
    persistence: { delWill(client: { id: string; brokerId: string }): Promise<unknown> }
    brokers: Record<string, number>
    mq: {
      on(topic: string, listener: (packet: AedesPublishPacket, done: () => void) => void): void
    }
  }
  const lastBroker = new Map<string, string>()
  mq.on('$SYS/+/new/clients', (packet, done) => {
    lastBroker.set(String(packet.payload), packet.topic.split('/')[1])
    done()
  })
  // A client that leaves a running broker has its will dealt with there.
  mq.on('$SYS/+/disconnect/clients', (packet, done) => {
    const clientId = String(packet.payload)
    if (lastBroker.get(clientId) === packet.topic.split('/')[1]) lastBroker.delete(clientId)
    done()
  })
  aedes.on('client', (client) => {
    const others = new Set([...Object.keys(brokers), lastBroker.get(client.id) ?? aedes.id])
    others.delete(aedes.id)
    for (const brokerId of others) {
      persistence.delWill({ id: client.id, brokerId }).catch((error: Error) => {
        const why = failureReason(error)
        say(`could not delete the will client ${client.id} left on another broker: ${why}`)
      })
    }
  })
}

async function serverRunId(connection: Redis): Promise<string> {
  const info = await connection.info('server')
  return info.match(/^run_id:(\w+)/m)?.[1] ?? ''
}

/** Why Redis at `url` cannot be used, from the error of the first attempt. */
function whyRedisIsUnusable(url: string, error: Error & { code?: string }): string {
  const message = error.message
  switch (error.code) {
    case 'ECONNREFUSED':
      return (
        `cannot reach Redis at ${url} (connection refused); start it (redis-server --port ` +
        `${new URL(url).port || 6379}), or check --redis or REDIS_URL`
      )
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot find the host of ${url}; check --redis or REDIS_URL`
    case 'ETIMEDOUT':
      return (
        `no answer from Redis at ${url} within ${CONNECT_TIMEOUT_MS / 1000} s; is Redis ` +
        `listening there? check --redis or REDIS_URL`
      )
  }
  if (/NOAUTH/.test(message))
    return (
      `Redis at ${url} asks for a password; give it in the URL: ` +
      `redis://:PASSWORD@${new URL(url).host}`
    )
  if (/WRONGPASS|invalid password|invalid username-password/i.test(message))
    return `Redis at ${url} refused the user name or password in the URL; check them`
  if (/DB index is out of range/.test(message))
    return (
      `Redis at ${url} has no such database; give a smaller number after the port (0 is the ` +
      `default)`
    )
  if (/Connection is closed|ECONNRESET|Protocol error/.test(message))
    return (
      `${url} does not answer as Redis does; is Redis listening there? check --redis or ` +
      `REDIS_URL`
    )
  return `cannot use Redis at ${url}: ${message}`
}

/** Why a request to Redis failed, in a few words, for the lines the broker prints. */
function failureReason(error: Error & { code?: string }): string {
  if (error.name === 'MaxRetriesPerRequestError')
    return `still away after ${RETRIES_PER_COMMAND} attempts`
  if (error.code === 'ECONNREFUSED') return 'connection refused'
  if (error.code === 'ECONNRESET') return 'connection reset'
  return error.message
}

/** The URL as it may be printed: a password in it is replaced by ***. */
export function redactedRedisUrl(url: string): string {
  const parsed = new URL(url)
  if (parsed.password === '') return url
  parsed.password = '***'
  return parsed.toString()
}
