// Shared subscriptions across brokers on one Redis (--redis): every broker hears every message, so
// the brokers that hold members of a group ask Redis which member gets it, and the first to ask
// decides for all, in turn over the group's members on every broker. See
// ./fixes/shared-subscriptions.ts for the groups on one broker.
import type { AedesPublishPacket } from 'aedes'
import type { Redis } from 'ioredis'
import type { ClusterShares, Group } from './fixes/shared-subscriptions.ts'

/**
 * A broker is alive while its connection for messages listens on this channel: Redis drops the
 * subscription as soon as the connection closes, when the broker stops or is killed (the system
 * closes its sockets), so its members are passed over from the next message on.
 */
const ALIVE = 'mqtt-by-example:share:alive:'
/** How long the choice for one message is kept, for the brokers that ask after the first. */
const CHOICE_MS = 60_000

const key = {
  members: (group: Group) => `mqtt-by-example:share:members:${group.key}`,
  turn: (group: Group) => `mqtt-by-example:share:turn:${group.key}`,
  choice: (group: Group, packet: AedesPublishPacket) =>
    `mqtt-by-example:share:choice:${group.key}:${packet.brokerId}:${packet.brokerCounter}`,
}

/**
 * In turn among the members online on a live broker, sorted by client id; when none is online,
 * among those whose session waits offline. KEYS: members, turn, choice. ARGV: ALIVE, CHOICE_MS.
 * Returns [client id, 1 online or 0 offline, its broker, 1 if this call decided].
 */
const CHOOSE = `
local chosen = redis.call('GET', KEYS[3])
if chosen then
  local state, broker, id = string.match(chosen, '^(%d)|([^|]*)|(.*)$')
  return { id, state, broker, '0' }
end
local all = redis.call('HGETALL', KEYS[1])
local online, offline, brokers = {}, {}, {}
for i = 1, #all, 2 do
  local broker, state = string.match(all[i + 1], '^(.*)|(%d)$')
  brokers[all[i]] = broker
  if state == '0' then
    table.insert(offline, all[i])
  elseif redis.call('PUBSUB', 'NUMSUB', ARGV[1] .. broker)[2] > 0 then
    table.insert(online, all[i])
  end
end
local from, state = online, '1'
if #online == 0 then from, state = offline, '0' end
if #from == 0 then return false end
table.sort(from)
local turn = redis.call('INCR', KEYS[2])
local id = from[(turn - 1) % #from + 1]
redis.call('SET', KEYS[3], state .. '|' .. brokers[id] .. '|' .. id, 'PX', ARGV[2])
return { id, state, brokers[id], '1' }
`
/** HDEL KEYS[1] ARGV[1] only if this broker (ARGV[2]) set it: the client may be on another now. */
const LEAVE = `
local value = redis.call('HGET', KEYS[1], ARGV[1])
if value and string.match(value, '^(.*)|%d$') == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
`
/**
 * HSET KEYS[1] ARGV[1] ARGV[3]; when the member goes offline (ARGV[4] = 0), only if this broker
 * (ARGV[2]) had it.
 */
const JOIN = `
local value = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[4] == '0' and value and string.match(value, '^(.*)|%d$') ~= ARGV[2] then return end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
`

/**
 * The chooser of ./fixes/shared-subscriptions.ts for the broker `brokerId`: `redis` for commands,
 * `listening` its connection for messages (in subscriber mode).
 */
export function redisShares(redis: Redis, listening: Redis, brokerId: string): ClusterShares {
  // ioredis subscribes again each time the connection is made again.
  void listening.subscribe(ALIVE + brokerId).catch(() => undefined)
  // A change of membership that Redis does not take (while it is away) is left undone: the member
  // is passed over, or its broker no longer answers for it, until it subscribes again.
  const quietly = (sent: Promise<unknown>) => void sent.catch(() => undefined)
  return {
    joined(group, clientId, online) {
      const value = `${brokerId}|${online ? 1 : 0}`
      quietly(
        redis.eval(JOIN, 1, key.members(group), clientId, brokerId, value, online ? '1' : '0'),
      )
    },
    left(group, clientId) {
      quietly(redis.eval(LEAVE, 1, key.members(group), clientId, brokerId))
    },
    async choose(group, packet) {
      const answer = (await redis.eval(
        CHOOSE,
        3,
        key.members(group),
        key.turn(group),
        key.choice(group, packet),
        ALIVE,
        CHOICE_MS,
      )) as [string, string, string, string] | null
      if (!answer) return undefined
      const [clientId, online, broker, decided] = answer
      return { clientId, online: online === '1', brokerId: broker, decided: decided === '1' }
    },
  }
}
