// Home Assistant's MQTT discovery format, shared by demos/discovery/publisher.ts (a device, which
// announces an entity) and demos/discovery/subscriber.ts (a listener, which discovers them): where a
// config is published (<prefix>/<component>/[<node_id>/]<object_id>/config), which JSON keys it holds,
// what a listener keeps of what it discovered, and how it checks a config before trusting it. A config comes from any client on the broker, so a listener
// reads it the way it reads any input: it says what is wrong with a bad one and carries on.
import { topicMatches, topicNameProblem } from './topics.ts'

/** The first level of every discovery topic, unless Home Assistant is configured otherwise. */
export const DEFAULT_PREFIX = 'homeassistant'

/** Home Assistant's rule for the component, node id and object id levels of a discovery topic. */
export const ID_PATTERN = /^[a-zA-Z0-9_-]+$/

/** The levels of a discovery topic between the prefix and `config`. */
export interface ConfigTopic {
  component: string
  nodeId?: string
  objectId: string
}

/** The keys of a discovery config that this project's device sends (Home Assistant knows many more). */
export interface DiscoveryConfig {
  name: string
  unique_id: string
  device: { identifiers: string[]; name: string }
  state_topic: string
  command_topic?: string
  payload_on?: string
  payload_off?: string
  device_class?: string
  unit_of_measurement?: string
  availability_topic: string
  payload_available: string
  payload_not_available: string
}

/** A topic on which an entity says whether it is reachable, and the two payloads it uses. */
export interface Availability {
  topic: string
  online: string
  offline: string
}

/** A discovered entity, as a listener keeps it. */
export interface Entity extends ConfigTopic {
  name: string
  uniqueId: string
  stateTopic: string
  commandTopic?: string
  unit?: string
  availability: Availability[]
}

/** A value, or one line that says what is wrong. */
export type Checked<T> = { value: T } | { problem: string }

/** `<prefix>/<component>/[<node_id>/]<object_id>/config` */
export function configTopic(prefix: string, { component, nodeId, objectId }: ConfigTopic): string {
  return [prefix, component, nodeId, objectId, 'config'].filter((level) => level !== undefined).join('/')
}

/** How a listener names an entity in its output: `node_id/object_id`, or the object id alone. */
export function entityPath({ nodeId, objectId }: ConfigTopic): string {
  return nodeId === undefined ? objectId : `${nodeId}/${objectId}`
}

/**
 * Read a topic as a discovery topic under `prefix`. Undefined when it is not meant as one (another
 * prefix, or a last level other than `config`, such as Home Assistant's own `homeassistant/status`);
 * otherwise its levels, or what is wrong with its shape.
 */
export function parseConfigTopic(prefix: string, topic: string): Checked<ConfigTopic> | undefined {
  if (!topic.startsWith(`${prefix}/`) || !topic.endsWith('/config')) return undefined
  const levels = topic.slice(prefix.length + 1).split('/').slice(0, -1)
  const shape = `expected ${prefix}/<component>/[<node_id>/]<object_id>/config`
  if (levels.length < 2 || levels.length > 3) {
    return { problem: `not a discovery topic: ${levels.length + 2} levels, ${shape}` }
  }
  const bad = levels.find((level) => !ID_PATTERN.test(level))
  if (bad !== undefined) {
    return { problem: `level ${JSON.stringify(bad)} may only use letters, digits, _ and - (${shape})` }
  }
  const [component, nodeId, objectId] = levels.length === 3 ? levels : [levels[0], undefined, levels[1]]
  return { value: { component, nodeId, objectId: objectId! } }
}

// Devices short of memory send abbreviated keys; Home Assistant expands them. These are the ones for
// the keys read here.
const ABBREVIATIONS: Record<string, string> = {
  uniq_id: 'unique_id',
  stat_t: 'state_topic',
  cmd_t: 'command_topic',
  avty_t: 'availability_topic',
  avty: 'availability',
  t: 'topic',
  pl_avail: 'payload_available',
  pl_not_avail: 'payload_not_available',
  unit_of_meas: 'unit_of_measurement',
  dev: 'device',
  ids: 'identifiers',
  cns: 'connections',
}

/**
 * Check the JSON config published on a discovery topic and turn it into an entity. Reads the keys
 * Home Assistant documents, full or abbreviated, and `~` (a base that topics may start or end with).
 */
export function parseConfig(at: ConfigTopic, payload: string): Checked<Entity> {
  let json: unknown
  try {
    json = JSON.parse(payload)
  } catch {
    return { problem: `not JSON (${payload.length > 40 ? `${payload.slice(0, 40)}...` : payload})` }
  }
  if (!isObject(json)) return { problem: `the config must be a JSON object, not ${kindOf(json)}` }
  const config = expand(json)

  const required = ['name', 'unique_id', 'state_topic']
  const missing = required.filter((key) => config[key] === undefined)
  if (missing.length > 0) return { problem: `missing ${missing.map((key) => JSON.stringify(key)).join(' and ')}` }
  if (at.component === 'light' && config.command_topic === undefined) {
    return { problem: 'a light needs "command_topic", the topic it takes ON and OFF on' }
  }
  for (const key of ['name', 'unique_id', 'unit_of_measurement', 'payload_available', 'payload_not_available']) {
    if (config[key] !== undefined && typeof config[key] !== 'string') {
      return { problem: `"${key}" must be a string, not ${kindOf(config[key])}` }
    }
  }
  for (const key of ['state_topic', 'command_topic', 'availability_topic']) {
    const problem = config[key] === undefined ? undefined : topicProblem(config[key])
    if (problem) return { problem: `"${key}" ${problem}` }
  }
  if (config.device !== undefined) {
    const device = isObject(config.device) ? expand(config.device) : {}
    if (device.identifiers === undefined && device.connections === undefined) {
      return { problem: '"device" needs "identifiers" (or "connections") to tell one device from another' }
    }
  }

  const online = (config.payload_available as string | undefined) ?? 'online'
  const offline = (config.payload_not_available as string | undefined) ?? 'offline'
  const availability: Availability[] = []
  if (config.availability_topic !== undefined) availability.push({ topic: config.availability_topic as string, online, offline })
  if (config.availability !== undefined) {
    const entries = Array.isArray(config.availability) ? config.availability : [undefined]
    for (const raw of entries) {
      const entry = isObject(raw) ? expand(raw, config['~']) : {}
      if (entry.topic === undefined) return { problem: '"availability" must be a list of objects, each with a "topic"' }
      const problem = topicProblem(entry.topic)
      if (problem) return { problem: `the "topic" of an "availability" entry ${problem}` }
      availability.push({
        topic: entry.topic as string,
        online: typeof entry.payload_available === 'string' ? entry.payload_available : online,
        offline: typeof entry.payload_not_available === 'string' ? entry.payload_not_available : offline,
      })
    }
  }
  return {
    value: {
      ...at,
      name: config.name as string,
      uniqueId: config.unique_id as string,
      stateTopic: config.state_topic as string,
      commandTopic: config.command_topic as string | undefined,
      unit: config.unit_of_measurement as string | undefined,
      availability,
    },
  }
}

/** Full key names, and topics with the `~` base put in. */
function expand(object: Record<string, unknown>, base = object['~']): Record<string, unknown> {
  const expanded: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(object)) {
    const full = ABBREVIATIONS[key] ?? key
    const isTopic = full === 'topic' || full.endsWith('_topic')
    expanded[full] = isTopic && typeof base === 'string' && typeof value === 'string' ? withBase(value, base) : value
  }
  return expanded
}

function withBase(topic: string, base: string): string {
  if (topic.startsWith('~')) return base + topic.slice(1)
  if (topic.endsWith('~')) return topic.slice(0, -1) + base
  return topic
}

function topicProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `must be a topic name, not ${kindOf(value)}`
  const problem = topicNameProblem(value)
  return problem && `is not a topic a client can publish to: ${problem}`
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function kindOf(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

/** Who a device is, as its flags say (lib/discovery-options.ts). */
export interface DeviceIdentity {
  kind: 'light' | 'sensor'
  prefix: string
  base: string
  nodeId: string
  objectId: string
  name: string
  deviceName: string
}

/** The topics a device uses; command only for a light, which obeys ON and OFF there. */
export interface DeviceTopics {
  config: string
  state: string
  availability: string
  command?: string
}

/**
 * What a device announces: its topics, and the config that names them. unique_id lets Home Assistant
 * keep the entity across restarts; device groups the entities of one device.
 */
export function announcement(device: DeviceIdentity): { topics: DeviceTopics; config: DiscoveryConfig } {
  const home = `${device.base}/${device.nodeId}/${device.objectId}`
  const light = device.kind === 'light'
  const topics: DeviceTopics = {
    config: configTopic(device.prefix, { component: device.kind, nodeId: device.nodeId, objectId: device.objectId }),
    state: home,
    availability: `${home}/availability`,
    ...(light && { command: `${home}/set` }),
  }
  const config: DiscoveryConfig = {
    name: device.name,
    unique_id: `${device.nodeId}_${device.objectId}`,
    device: { identifiers: [device.nodeId], name: device.deviceName },
    state_topic: topics.state,
    availability_topic: topics.availability,
    payload_available: 'online',
    payload_not_available: 'offline',
    ...(light
      ? { command_topic: topics.command, payload_on: 'ON', payload_off: 'OFF' }
      : { device_class: 'temperature', unit_of_measurement: '°C' }),
  }
  return { topics, config }
}

/** What a listener should do about one message: lines to print, topics to stop and start following. */
export interface News {
  /** Unsubscribe from these first: an entity was removed or replaced. */
  unfollow: string[]
  lines: string[]
  /** Then subscribe to these, availability before state: each brings its topic's retained message. */
  follow: string[]
}

/**
 * What Home Assistant keeps of discovery, without the MQTT calls: the entities found on the config
 * topics under `prefix` (subscribed with `filter`), and the last payload seen on each of their state
 * and availability topics. read() turns each message into News; the listener does the subscribing.
 */
export class Discoveries {
  /** What has been discovered, by config topic. */
  private readonly entities = new Map<string, Entity>()
  /** The last payload seen on each state and availability topic followed. */
  private readonly lastSeen = new Map<string, string>()

  constructor(private readonly prefix: string, private readonly filter: string) {}

  read(topic: string, payload: string, retain: boolean): News {
    const news: News = { unfollow: [], lines: [], follow: [] }
    const say = (line: string) => news.lines.push(line)
    const retained = retain ? ' (retained)' : ''
    const followed = [...this.entities.values()]
    const stateOf = followed.filter((e) => e.stateTopic === topic)
    const availabilityOf = followed.flatMap((e) => e.availability.filter((a) => a.topic === topic).map((a) => ({ e, a })))
    if (stateOf.length > 0 || availabilityOf.length > 0) {
      // An empty payload clears a retained state; it is not a state. And what has not changed is no
      // news: a device that reconnects says "online" and its state again.
      if (payload === '' || this.lastSeen.get(topic) === payload) return news
      this.lastSeen.set(topic, payload)
      for (const e of stateOf) say(`${e.name} state ${payload}${e.unit ? ` ${e.unit}` : ''}${retained}`)
      for (const { e, a } of availabilityOf) {
        const said = payload === a.online ? 'online' : payload === a.offline ? 'offline' : undefined
        say(said ? `${e.name} is ${said}${retained}`
          : `${e.name} sent ${JSON.stringify(payload)} on ${topic}, neither ${JSON.stringify(a.online)} nor ${JSON.stringify(a.offline)}`)
      }
      return news
    }

    const at = parseConfigTopic(this.prefix, topic)
    if (at === undefined) {
      // Under the filter but not a config (Home Assistant's own homeassistant/status, say): as it is.
      say(`${topic} ${payload === '' ? '(empty)' : payload}${retained}`)
      return news
    }
    if ('problem' in at) return say(`ignored ${topic}: ${at.problem}`), news

    const known = this.entities.get(topic)
    if (payload === '') {
      // An empty retained message on a config topic is how a device is removed.
      if (!known) return say(`ignored ${topic}: an empty config, but nothing was discovered there`), news
      news.unfollow.push(...this.forget(topic))
      return say(`removed ${known.component} ${entityPath(known)} "${known.name}"`), news
    }
    const config = parseConfig(at.value, payload)
    if ('problem' in config) return say(`ignored ${topic}: ${config.problem}`), news
    const entity = config.value
    if (known && JSON.stringify(known) === JSON.stringify(entity)) return news
    const twin = [...this.entities.entries()].find(([t, e]) => t !== topic && e.uniqueId === entity.uniqueId)
    if (twin) return say(`ignored ${topic}: unique_id ${JSON.stringify(entity.uniqueId)} is already used by ${twin[0]}`), news

    if (known) news.unfollow.push(...this.forget(topic))
    this.entities.set(topic, entity)
    say(`${known ? 'updated' : 'discovered'} ${entity.component} ${entityPath(entity)} "${entity.name}"${retained}`)
    // A topic the filter already brings, or that another entity reads, needs no subscription of its own.
    news.follow = [...topicsOf(entity)].filter((t) => this.users(t) === 1 && !topicMatches(this.filter, t))
    return news
  }

  /** Stop following the entity of `configTopic`; returns its topics that no other entity reads. */
  private forget(configTopic: string): string[] {
    const entity = this.entities.get(configTopic)!
    this.entities.delete(configTopic)
    const unused = [...topicsOf(entity)].filter((t) => this.users(t) === 0)
    for (const t of unused) this.lastSeen.delete(t)
    return unused.filter((t) => !topicMatches(this.filter, t))
  }

  /** How many followed entities read `topic`. */
  private users(topic: string): number {
    return [...this.entities.values()].filter((e) => e.stateTopic === topic || e.availability.some((a) => a.topic === topic)).length
  }
}

/** The topics an entity reports on: availability first, then state. */
function topicsOf(entity: Entity): Set<string> {
  return new Set([...entity.availability.map((a) => a.topic), entity.stateTopic])
}
