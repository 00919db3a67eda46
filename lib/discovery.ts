// Home Assistant's MQTT discovery format, shared by demos/discovery/device.ts (which announces an
// entity) and demos/discovery/listener.ts (which discovers them): where a config is published
// (<prefix>/<component>/[<node_id>/]<object_id>/config), which JSON keys it holds, and how a listener
// checks a config before trusting it. A config comes from any client on the broker, so a listener
// reads it the way it reads any input: it says what is wrong with a bad one and carries on.
import { topicNameProblem } from './topics.ts'

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
