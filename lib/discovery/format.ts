// Home Assistant's MQTT discovery format, as its documentation describes it (home-assistant.io,
// integrations/mqtt, "MQTT Discovery"): where a config is published, how its keys may be
// abbreviated and how `~` stands for a base topic, what a device config holds (a whole device, its
// entities under `cmps`) and what the config of one component holds (the older form, the
// article's), and how a listener checks either before trusting it. A config comes from any client
// on the broker, so it is read the way any input is: what is wrong with it is said in one line.
// lib/discovery/home-assistant.ts keeps what a listener discovered; lib/discovery/device.ts is the
// device's side.
import table from './abbreviations.json' with { type: 'json' }
import { topicNameProblem } from '../topics.ts'

/** The first level of every discovery topic, unless Home Assistant is configured otherwise. */
export const DEFAULT_PREFIX = 'homeassistant'

/** Home Assistant's rule for the component, node id and object id levels of a discovery topic. */
export const ID_PATTERN = /^[a-zA-Z0-9_-]+$/

/** The component level of a device config's topic: <prefix>/device/<object_id>/config. */
export const DEVICE = 'device'

/**
 * Where Home Assistant publishes its birth message (`online`, once it has subscribed) and its will
 * (`offline`). Home Assistant's default is homeassistant/status whatever the prefix; here it moves
 * with the prefix, so that plays on a shared broker under prefixes of their own do not hear each
 * other.
 */
export function statusTopic(prefix: string): string {
  return `${prefix}/status`
}

/**
 * The levels of a discovery topic between the prefix and `config`; component `device` for a device
 * config.
 */
export interface ConfigTopic {
  component: string
  nodeId?: string
  objectId: string
}

/** A value, or one line that says what is wrong. */
export type Checked<T> = { value: T } | { problem: string }

/** `<prefix>/<component>/[<node_id>/]<object_id>/config` */
export function configTopic(prefix: string, { component, nodeId, objectId }: ConfigTopic): string {
  return [prefix, component, nodeId, objectId, 'config']
    .filter((level) => level !== undefined)
    .join('/')
}

/**
 * Read a topic as a discovery topic under `prefix`. Undefined when it is not meant as one (another
 * prefix, or a last level other than `config`, such as Home Assistant's own status topic);
 * otherwise its levels, or what is wrong with its shape.
 */
export function parseConfigTopic(prefix: string, topic: string): Checked<ConfigTopic> | undefined {
  if (!topic.startsWith(`${prefix}/`) || !topic.endsWith('/config')) return undefined
  const levels = topic
    .slice(prefix.length + 1)
    .split('/')
    .slice(0, -1)
  const shape = `expected ${prefix}/<component>/[<node_id>/]<object_id>/config`
  if (levels.length < 2 || levels.length > 3) {
    return { problem: `not a discovery topic: ${levels.length + 2} levels, ${shape}` }
  }
  const bad = levels.find((level) => !ID_PATTERN.test(level))
  if (bad !== undefined) {
    return {
      problem: `level ${JSON.stringify(bad)} may only use letters, digits, _ and - (${shape})`,
    }
  }
  const [component, nodeId, objectId] =
    levels.length === 3 ? levels : [levels[0], undefined, levels[1]]
  return { value: { component, nodeId, objectId: objectId! } }
}

/** A topic on which an entity says whether it is reachable, and the two payloads it uses. */
export interface Availability {
  topic: string
  online: string
  offline: string
}

/** How the availability topics of an entity add up (the docs' availability_mode). */
type AvailabilityMode = 'all' | 'any' | 'latest'

/** The device an entity belongs to. */
export interface Device {
  identifiers: string[]
  name?: string
}

/** The software that published a config (the docs' origin): required for a device config. */
export interface Origin {
  name: string
  sw?: string
  url?: string
}

/** One entity, as a config describes it. */
export interface Entity {
  platform: string
  /** node_id/object_id of a component's topic, or object_id/component id of a device config. */
  path: string
  /**
   * What Home Assistant calls it: the device's name, then its own (the docs' "Naming of MQTT
   * entities").
   */
  name: string
  uniqueId?: string
  stateTopic?: string
  commandTopic?: string
  /**
   * What a light, a switch or a binary sensor sends and takes for on and off (default ON and OFF).
   */
  payloadOn: string
  payloadOff: string
  unit?: string
  qos: 0 | 1 | 2
  availability: Availability[]
  availabilityMode: AvailabilityMode
  device?: Device
}

/**
 * One component of a device config: an entity, its removal ({"p": "sensor"}), or what is wrong with
 * it.
 */
type Component = { entity: Entity } | { removed: string } | { problem: string }

/** A device config: the device, where it comes from, and each of its components by id. */
export interface DeviceConfig {
  device: Device
  origin: Origin
  components: Map<string, Component>
}

/** A config read: its value and what Home Assistant would do without (unknown keys, say). */
export type Read<T> = { value: T; notes: string[] } | { problem: string }

const ENTITY_KEYS: Record<string, string> = table.entity
const DEVICE_KEYS: Record<string, string> = table.device
const ORIGIN_KEYS: Record<string, string> = table.origin
/**
 * Every key Home Assistant documents, for some component, under its full name; object_id,
 * deprecated, is noted on its own.
 */
const KNOWN_ENTITY_KEYS = new Set([
  ...Object.values(ENTITY_KEYS),
  ...table.unabbreviated.entity,
  '~',
  'object_id',
])
const KNOWN_DEVICE_KEYS = new Set([...Object.values(DEVICE_KEYS), ...table.unabbreviated.device])
const KNOWN_ORIGIN_KEYS = new Set(Object.values(ORIGIN_KEYS))

/**
 * What a device config may set once for all its components (the docs' "Device discovery payload");
 * a component's own value wins. The device and the origin are the root's alone.
 */
const SHARED = [
  'availability',
  'availability_topic',
  'availability_mode',
  'availability_template',
  'payload_available',
  'payload_not_available',
  'command_topic',
  'state_topic',
  'qos',
  'encoding',
]

/**
 * Components whose state is on or off, in payload_on and payload_off (ON and OFF unless the config
 * says).
 */
const ON_OFF = new Set(['light', 'switch', 'binary_sensor'])
/** What each component needs to be of any use, as its page of the docs says. */
const REQUIRED: Record<string, { key: string; why: string }> = {
  light: { key: 'command_topic', why: 'the topic it takes its on and off commands on' },
  switch: { key: 'command_topic', why: 'the topic it takes its on and off commands on' },
  sensor: { key: 'state_topic', why: 'the topic it reports on' },
  binary_sensor: { key: 'state_topic', why: 'the topic it reports on' },
}

/** Check the JSON config of one component, published on `at`, and turn it into an entity. */
export function parseComponentConfig(at: ConfigTopic, payload: string): Read<Entity> {
  const json = parseJson(payload)
  if ('problem' in json) return json
  const notes: string[] = []
  const config = expand(json.value, ENTITY_KEYS, KNOWN_ENTITY_KEYS, '', notes)
  const device = config.device === undefined ? undefined : parseDevice(config.device, notes)
  if (device && 'problem' in device) return device
  if (config.origin !== undefined) {
    const origin = parseOrigin(config.origin, notes)
    if ('problem' in origin) return origin
  }
  const path = at.nodeId === undefined ? at.objectId : `${at.nodeId}/${at.objectId}`
  const entity = parseEntity(at.component, path, config, device?.value, notes)
  return 'problem' in entity ? entity : { value: entity.value, notes }
}

/** Check a device config (<prefix>/device/<object_id>/config) and each of its components. */
export function parseDeviceConfig(at: ConfigTopic, payload: string): Read<DeviceConfig> {
  const json = parseJson(payload)
  if ('problem' in json) return json
  const notes: string[] = []
  const root = expand(json.value, ENTITY_KEYS, KNOWN_ENTITY_KEYS, '', notes)
  if (root.device === undefined)
    return { problem: 'a device config needs "device" ("dev"), with its "identifiers"' }
  if (root.origin === undefined)
    return {
      problem: 'a device config needs "origin" ("o"), with the "name" of the software that sent it',
    }
  if (root.components === undefined)
    return {
      problem: 'a device config needs "components" ("cmps"), each with its "platform" ("p")',
    }
  const device = parseDevice(root.device, notes)
  if ('problem' in device) return device
  const origin = parseOrigin(root.origin, notes)
  if ('problem' in origin) return origin
  if (!isObject(root.components))
    return {
      problem: `"components" must be an object of components by id, not ${kindOf(root.components)}`,
    }

  const components = new Map<string, Component>()
  for (const [id, raw] of Object.entries(root.components)) {
    if (!isObject(raw)) {
      components.set(id, {
        problem: `a component must be an object with its "platform" ("p"), not ${kindOf(raw)}`,
      })
      continue
    }
    const own: string[] = []
    // The root's ~ is the base of the whole payload; a component may give its own.
    const config = expand(
      raw,
      ENTITY_KEYS,
      KNOWN_ENTITY_KEYS,
      typeof root['~'] === 'string' ? root['~'] : '',
      own,
    )
    notes.push(...own.map((note) => `component ${id}: ${note}`))
    const platform = config.platform
    delete config.platform
    if (typeof platform !== 'string' || platform === '') {
      components.set(id, {
        problem: 'a component needs its "platform" ("p"), such as "light" or "sensor"',
      })
      continue
    }
    // {"p": "sensor"} and nothing else: the docs' way to remove one component from a device.
    if (Object.keys(config).length === 0) {
      components.set(id, { removed: platform })
      continue
    }
    if (config.unique_id === undefined) {
      components.set(id, {
        problem: 'a component of a device config needs "unique_id" ("uniq_id")',
      })
      continue
    }
    for (const key of SHARED)
      if (config[key] === undefined && root[key] !== undefined) config[key] = root[key]
    const entity = parseEntity(platform, `${at.objectId}/${id}`, config, device.value, notes)
    components.set(id, 'problem' in entity ? entity : { entity: entity.value })
  }
  return { value: { device: device.value, origin: origin.value, components }, notes }
}

function parseJson(payload: string): Checked<Record<string, unknown>> {
  let json: unknown
  try {
    json = JSON.parse(payload)
  } catch {
    return { problem: `not JSON (${payload.length > 40 ? `${payload.slice(0, 40)}...` : payload})` }
  }
  if (!isObject(json)) return { problem: `the config must be a JSON object, not ${kindOf(json)}` }
  return { value: json }
}

function parseDevice(raw: unknown, notes: string[]): Checked<Device> {
  if (!isObject(raw)) return { problem: `"device" must be an object, not ${kindOf(raw)}` }
  const device = expand(raw, DEVICE_KEYS, KNOWN_DEVICE_KEYS, '', notes, 'device')
  if (device.identifiers === undefined && device.connections === undefined) {
    return {
      problem: '"device" needs "identifiers" (or "connections") to tell one device from another',
    }
  }
  const ids =
    typeof device.identifiers === 'string' ? [device.identifiers] : (device.identifiers ?? [])
  if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string')) {
    return { problem: '"identifiers" of "device" must be a string or a list of strings' }
  }
  if (device.name !== undefined && typeof device.name !== 'string')
    return { problem: `"name" of "device" must be a string, not ${kindOf(device.name)}` }
  return {
    value: {
      identifiers: ids as string[],
      ...(device.name !== undefined && { name: device.name as string }),
    },
  }
}

function parseOrigin(raw: unknown, notes: string[]): Checked<Origin> {
  if (!isObject(raw)) return { problem: `"origin" must be an object, not ${kindOf(raw)}` }
  const origin = expand(raw, ORIGIN_KEYS, KNOWN_ORIGIN_KEYS, '', notes, 'origin')
  if (typeof origin.name !== 'string')
    return { problem: '"origin" needs the "name" of the software that sent the config' }
  for (const key of ['sw_version', 'support_url']) {
    if (origin[key] !== undefined && typeof origin[key] !== 'string')
      return { problem: `"${key}" of "origin" must be a string, not ${kindOf(origin[key])}` }
  }
  return {
    value: {
      name: origin.name,
      ...(origin.sw_version !== undefined && { sw: origin.sw_version as string }),
      ...(origin.support_url !== undefined && { url: origin.support_url as string }),
    },
  }
}

/** The entity that an expanded config describes, or what is wrong with it. */
function parseEntity(
  platform: string,
  path: string,
  config: Record<string, unknown>,
  device: Device | undefined,
  notes: string[],
): Checked<Entity> {
  const required = REQUIRED[platform]
  if (required && config[required.key] === undefined)
    return { problem: `a ${platform} needs "${required.key}", ${required.why}` }
  for (const key of [
    'unique_id',
    'default_entity_id',
    'unit_of_measurement',
    'payload_on',
    'payload_off',
    'payload_available',
    'payload_not_available',
  ]) {
    if (config[key] !== undefined && typeof config[key] !== 'string')
      return { problem: `"${key}" must be a string, not ${kindOf(config[key])}` }
  }
  if (config.name !== undefined && config.name !== null && typeof config.name !== 'string') {
    return {
      problem:
        `"name" must be a string, or null for the device's name alone, not ` +
        `${kindOf(config.name)}`,
    }
  }
  for (const key of ['state_topic', 'command_topic', 'availability_topic']) {
    const problem = config[key] === undefined ? undefined : topicProblem(config[key])
    if (problem) return { problem: `"${key}" ${problem}` }
  }
  const qos = config.qos ?? 0
  if (qos !== 0 && qos !== 1 && qos !== 2)
    return { problem: `"qos" must be 0, 1 or 2, not ${JSON.stringify(qos)}` }
  if (config.object_id !== undefined) {
    notes.push(
      `"object_id" stopped working in Home Assistant 2026.4; "default_entity_id": ` +
        `"${platform}.<id>" took its place`,
    )
  }
  if (
    typeof config.default_entity_id === 'string' &&
    !config.default_entity_id.startsWith(`${platform}.`)
  ) {
    notes.push(
      `"default_entity_id" ${JSON.stringify(config.default_entity_id)} should start with ` +
        `"${platform}.", its platform`,
    )
  }
  const availability = parseAvailability(config)
  if ('problem' in availability) return availability

  const own =
    config.name === undefined ? `MQTT ${humanise(platform)}` : (config.name as string | null)
  const name =
    [device?.name, own].filter((part) => part !== undefined && part !== null).join(' ') ||
    humanise(platform)
  const onOff = ON_OFF.has(platform)
  return {
    value: {
      platform,
      path,
      name,
      ...(config.unique_id !== undefined && { uniqueId: config.unique_id as string }),
      ...(config.state_topic !== undefined && { stateTopic: config.state_topic as string }),
      ...(config.command_topic !== undefined && { commandTopic: config.command_topic as string }),
      payloadOn: onOff ? ((config.payload_on as string | undefined) ?? 'ON') : 'ON',
      payloadOff: onOff ? ((config.payload_off as string | undefined) ?? 'OFF') : 'OFF',
      ...(config.unit_of_measurement !== undefined && {
        unit: config.unit_of_measurement as string,
      }),
      qos,
      ...availability.value,
      ...(device && { device }),
    },
  }
}

/**
 * availability_topic, or an availability list, and availability_mode (the docs' "Using availability
 * topics").
 */
function parseAvailability(
  config: Record<string, unknown>,
): Checked<{ availability: Availability[]; availabilityMode: AvailabilityMode }> {
  if (config.availability !== undefined && config.availability_topic !== undefined) {
    return { problem: '"availability" and "availability_topic" must not be used together' }
  }
  const mode = config.availability_mode ?? 'latest'
  if (mode !== 'all' && mode !== 'any' && mode !== 'latest') {
    return {
      problem: `"availability_mode" must be "all", "any" or "latest", not ${JSON.stringify(mode)}`,
    }
  }
  const online = (config.payload_available as string | undefined) ?? 'online'
  const offline = (config.payload_not_available as string | undefined) ?? 'offline'
  if (config.availability_topic !== undefined) {
    return {
      value: {
        availability: [{ topic: config.availability_topic as string, online, offline }],
        availabilityMode: mode,
      },
    }
  }
  if (config.availability === undefined)
    return { value: { availability: [], availabilityMode: mode } }
  const entries = Array.isArray(config.availability) ? config.availability : [undefined]
  const availability: Availability[] = []
  for (const entry of entries) {
    if (!isObject(entry) || entry.topic === undefined)
      return { problem: '"availability" must be a list of objects, each with a "topic"' }
    const problem = topicProblem(entry.topic)
    if (problem) return { problem: `the "topic" of an "availability" entry ${problem}` }
    availability.push({
      topic: entry.topic as string,
      online: typeof entry.payload_available === 'string' ? entry.payload_available : online,
      offline:
        typeof entry.payload_not_available === 'string' ? entry.payload_not_available : offline,
    })
  }
  return { value: { availability, availabilityMode: mode } }
}

/**
 * Full key names, and topics with the `~` base put in where they start or end with it (keys ending
 * in _topic, and the topic of each availability entry). A key that Home Assistant knows for no
 * component is kept but noted: the docs allow unknown keys, and Home Assistant ignores them.
 */
function expand(
  object: Record<string, unknown>,
  names: Record<string, string>,
  known: Set<string>,
  inherited: string,
  notes: string[],
  within?: string,
): Record<string, unknown> {
  const base = typeof object['~'] === 'string' ? object['~'] : inherited
  const expanded: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(object)) {
    const full = names[key] ?? key
    if (!known.has(full))
      notes.push(
        `unknown key ${JSON.stringify(key)}${within ? ` in "${within}"` : ''}, ` +
          'ignored as Home Assistant does',
      )
    expanded[full] = full.endsWith('_topic') ? withBase(value, base) : value
  }
  if (Array.isArray(expanded.availability)) {
    expanded.availability = expanded.availability.map((entry) => {
      if (!isObject(entry)) return entry
      const full = expand(entry, ENTITY_KEYS, KNOWN_ENTITY_KEYS, base, notes, 'availability')
      return { ...full, topic: withBase(full.topic, base) }
    })
  }
  return expanded
}

function withBase(topic: unknown, base: string): unknown {
  if (typeof topic !== 'string' || base === '') return topic
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

/** living_room -> Living room */
export function humanise(id: string): string {
  const words = id.replace(/[_-]+/g, ' ')
  return words.charAt(0).toUpperCase() + words.slice(1)
}
