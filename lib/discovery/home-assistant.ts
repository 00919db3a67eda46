// What Home Assistant keeps of MQTT discovery, without the MQTT calls: shared by the listener
// (demos/discovery/subscriber.ts) and the dashboard's page. Each message goes through read(), which
// says what it means (a device and its entities discovered, updated or removed, a state, an
// availability, a bad config) and which topics to follow or to leave; the program does the
// subscribing. The format itself, and how a config is checked, is lib/discovery/format.ts.
import {
  DEVICE,
  parseComponentConfig,
  parseConfigTopic,
  parseDeviceConfig,
  statusTopic,
  type ConfigTopic,
  type DeviceConfig,
  type Entity,
  type Origin,
} from './format.ts'
import { topicMatches } from '../topics.ts'

/**
 * What a listener should do about one message: lines to print, topics to stop and start following.
 */
interface News {
  /** Unsubscribe from these first: an entity was removed or replaced. */
  unfollow: string[]
  lines: string[]
  /**
   * Then subscribe to these, availability before state: each brings its topic's retained message.
   */
  follow: string[]
}

/**
 * Whether an entity is reachable, as its availability topics and availability_mode say; unknown
 * before they say.
 */
type Reachable = 'online' | 'offline' | 'unknown'

/** A discovered entity, and where it was announced. */
interface Discovered {
  /** The config topic, and for a component of a device config its id after a space. */
  key: string
  entity: Entity
}

/** What was announced on one config topic: a device with its entities, or one entity. */
type Known = { device: DeviceConfig; entities: Map<string, Entity> } | { entity: Entity }

export class Discoveries {
  /** What has been discovered, by config topic. */
  private readonly configs = new Map<string, Known>()
  /**
   * The payload last seen on each config topic: the same again is no news (a device that reconnects
   * sends it again).
   */
  private readonly lastConfig = new Map<string, string>()
  /**
   * The last payload on each followed state or availability topic, numbered in the order they came.
   */
  private readonly last = new Map<string, { payload: string; seq: number }>()
  private seq = 0
  /** The availability last said of each entity, by key. */
  private readonly said = new Map<string, Reachable>()
  /**
   * What was wrong with the last config published on a topic, while it is the last one there (for
   * the dashboard).
   */
  readonly problems = new Map<string, string>()

  private readonly prefix: string
  private readonly filter: string

  constructor(prefix: string, filter: string) {
    this.prefix = prefix
    this.filter = filter
  }

  read(topic: string, payload: string, retain: boolean): News {
    const news: News = { unfollow: [], lines: [], follow: [] }
    // Home Assistant's own birth and will, which every Home Assistant on the broker hears: not a
    // device.
    if (topic === statusTopic(this.prefix)) return news
    const retained = retain ? ' (retained)' : ''
    if (this.users(topic).length > 0) return this.reading(topic, payload, retained, news)
    // A topic left a moment ago: what was on its way still arrives, and concerns nobody.
    if (!topicMatches(this.filter, topic)) return news
    const at = parseConfigTopic(this.prefix, topic)
    if (at === undefined) {
      // Under the filter but not a config: as it is.
      news.lines.push(`${topic} ${payload === '' ? '(empty)' : payload}${retained}`)
      return news
    }
    if ('problem' in at) return this.ignore(topic, at.problem, news)
    if (this.lastConfig.get(topic) === payload) return news
    this.lastConfig.set(topic, payload)
    const before = new Set(this.followed())
    if (payload === '') this.removeAll(topic, news)
    else if (at.value.component === DEVICE)
      this.readDevice(topic, at.value, payload, retained, news)
    else this.readComponent(topic, at.value, payload, retained, news)
    return this.settle(before, news)
  }

  /** Every entity discovered, in the order they were. */
  entities(): Discovered[] {
    return [...this.configs.entries()].flatMap(([topic, known]) =>
      'entity' in known
        ? [{ key: topic, entity: known.entity }]
        : [...known.entities.entries()].map(([id, entity]) => ({ key: `${topic} ${id}`, entity })),
    )
  }

  /** The last state `entity` reported, if any. */
  stateOf(entity: Entity): string | undefined {
    return entity.stateTopic === undefined ? undefined : this.last.get(entity.stateTopic)?.payload
  }

  /**
   * Whether `entity` is reachable (the docs' availability_mode): with no availability topic,
   * always; `latest`, as the last payload on any of its topics says; `all`, once every topic says
   * online, and not once one says offline; `any`, once one says online, and not once all say
   * offline.
   */
  reachable(entity: Entity): Reachable {
    if (entity.availability.length === 0) return 'online'
    const heard = entity.availability
      .map((a) => {
        const last = this.last.get(a.topic)
        const said: Reachable | undefined =
          last?.payload === a.online
            ? 'online'
            : last?.payload === a.offline
              ? 'offline'
              : undefined
        return { said, seq: last?.seq ?? -1 }
      })
      .filter((h) => h.said !== undefined)
    const says = (word: string) => heard.filter((h) => h.said === word).length
    const all = entity.availability.length
    switch (entity.availabilityMode) {
      case 'latest':
        return heard.sort((x, y) => y.seq - x.seq)[0]?.said ?? 'unknown'
      case 'all':
        return says('offline') > 0 ? 'offline' : says('online') === all ? 'online' : 'unknown'
      case 'any':
        return says('online') > 0 ? 'online' : says('offline') === all ? 'offline' : 'unknown'
    }
  }

  /** A message on a state or availability topic that an entity follows. */
  private reading(topic: string, payload: string, retained: string, news: News): News {
    // An empty payload clears a retained message; it says nothing. And what has not changed is no
    // news.
    if (payload === '' || this.last.get(topic)?.payload === payload) return news
    this.last.set(topic, { payload, seq: ++this.seq })
    for (const { key, entity } of this.users(topic)) {
      if (entity.stateTopic === topic) news.lines.push(stateLine(entity, payload, retained))
      const availability = entity.availability.find((a) => a.topic === topic)
      if (!availability) continue
      if (payload !== availability.online && payload !== availability.offline) {
        news.lines.push(
          `${entity.name} sent ${JSON.stringify(payload)} on ${topic}, neither ` +
            `${JSON.stringify(availability.online)} nor ${JSON.stringify(availability.offline)}`,
        )
        continue
      }
      const now = this.reachable(entity)
      if (now === 'unknown' || now === (this.said.get(key) ?? 'unknown')) continue
      this.said.set(key, now)
      news.lines.push(`${entity.name} is ${now}${retained}`)
    }
    return news
  }

  private readComponent(
    topic: string,
    at: ConfigTopic,
    payload: string,
    retained: string,
    news: News,
  ): void {
    const config = parseComponentConfig(at, payload)
    if ('problem' in config) return void this.ignore(topic, config.problem, news)
    this.problems.delete(topic)
    news.lines.push(...config.notes.map((note) => `${topic}: ${note}`))
    const known = this.configs.get(topic)
    const old = known && 'entity' in known ? known.entity : undefined
    const twin = this.twin(config.value, topic)
    if (twin) return void this.ignore(topic, twin, news)
    if (old && JSON.stringify(old) === JSON.stringify(config.value)) return
    this.configs.set(topic, { entity: config.value })
    news.lines.push(`${old ? 'updated' : 'discovered'} ${describe(config.value)}${retained}`)
  }

  private readDevice(
    topic: string,
    at: ConfigTopic,
    payload: string,
    retained: string,
    news: News,
  ): void {
    const config = parseDeviceConfig(at, payload)
    if ('problem' in config) return void this.ignore(topic, config.problem, news)
    this.problems.delete(topic)
    const known = this.configs.get(topic)
    const before = known && 'device' in known ? known : undefined
    const { device, origin } = config.value
    const described =
      `device ${at.objectId} "${device.name ?? at.objectId}" from ` + `${originOf(origin)}`
    if (!before) news.lines.push(`discovered ${described}${retained}`)
    else if (
      JSON.stringify([device, origin]) !==
      JSON.stringify([before.device.device, before.device.origin])
    )
      news.lines.push(`updated ${described}`)
    news.lines.push(...config.notes.map((note) => `${topic}: ${note}`))

    const entities = new Map(before?.entities)
    for (const [id, component] of config.value.components) {
      const old = entities.get(id)
      if ('problem' in component) {
        news.lines.push(`ignored component ${id} of ${topic}: ${component.problem}`)
      } else if ('removed' in component) {
        if (!old)
          news.lines.push(
            `ignored component ${id} of ${topic}: {"p": "${component.removed}"} removes a ` +
              `component, and none was discovered there`,
          )
        else news.lines.push(`removed ${describe(old)}`)
        entities.delete(id)
      } else if (!old || JSON.stringify(old) !== JSON.stringify(component.entity)) {
        const twin = this.twin(component.entity, topic)
        if (twin) news.lines.push(`ignored component ${id} of ${topic}: ${twin}`)
        else {
          entities.set(id, component.entity)
          news.lines.push(
            `${old ? 'updated' : 'discovered'} ${describe(component.entity)}${retained}`,
          )
        }
      }
    }
    // The docs remove a component only once its config is reduced to {"p": ...}: one merely left
    // out stays.
    for (const [id, entity] of entities) {
      if (!config.value.components.has(id))
        news.lines.push(
          `kept ${describe(entity)}: left out of ${topic}, but not removed first with {"p": ` +
            `"${entity.platform}"}`,
        )
    }
    this.configs.set(topic, { device: config.value, entities })
  }

  /** An empty config: whatever was discovered on `topic` is removed, a whole device at once. */
  private removeAll(topic: string, news: News): void {
    const known = this.configs.get(topic)
    this.problems.delete(topic)
    // Nothing to remove is worth a line, but it is no problem to show: the topic is clear now.
    if (!known)
      return void news.lines.push(
        `ignored ${topic}: an empty config, but nothing was discovered there`,
      )
    this.configs.delete(topic)
    if ('entity' in known) {
      news.lines.push(`removed ${describe(known.entity)}`)
    } else {
      for (const entity of known.entities.values()) news.lines.push(`removed ${describe(entity)}`)
      const objectId = topic.split('/').at(-2)!
      news.lines.push(`removed device ${objectId} "${known.device.device.name ?? objectId}"`)
    }
  }

  private ignore(topic: string, problem: string, news: News): News {
    this.problems.set(topic, problem)
    news.lines.push(`ignored ${topic}: ${problem}`)
    return news
  }

  /** Why `entity` may not be discovered on `topic`: its unique_id is another entity's. */
  private twin(entity: Entity, topic: string): string | undefined {
    if (entity.uniqueId === undefined) return undefined
    const other = this.entities().find(
      (d) =>
        d.entity.uniqueId === entity.uniqueId && !d.key.startsWith(`${topic} `) && d.key !== topic,
    )
    return (
      other &&
      `unique_id ${JSON.stringify(entity.uniqueId)} is already used by ${other.key.split(' ')[0]}`
    )
  }

  /**
   * What changed in the topics to follow since `before`, into news; what no entity reads any more
   * is forgotten.
   */
  private settle(before: Set<string>, news: News): News {
    const now = this.followed()
    for (const t of before) {
      if (now.includes(t)) continue
      this.last.delete(t)
      if (!topicMatches(this.filter, t)) news.unfollow.push(t)
    }
    const keys = new Set(this.entities().map((d) => d.key))
    for (const key of this.said.keys()) if (!keys.has(key)) this.said.delete(key)
    news.follow.push(...now.filter((t) => !before.has(t) && !topicMatches(this.filter, t)))
    return news
  }

  /** Every topic the entities report on: availability topics first, then states, each once. */
  private followed(): string[] {
    const all = this.entities().map((d) => d.entity)
    return [
      ...new Set([
        ...all.flatMap((e) => e.availability.map((a) => a.topic)),
        ...all.flatMap((e) => e.stateTopic ?? []),
      ]),
    ]
  }

  private users(topic: string): Discovered[] {
    return this.entities().filter(
      ({ entity }) =>
        entity.stateTopic === topic || entity.availability.some((a) => a.topic === topic),
    )
  }
}

function describe(entity: Entity): string {
  return `${entity.platform} ${entity.path} "${entity.name}"`
}

function stateLine(entity: Entity, payload: string, retained: string): string {
  if (
    entity.platform === 'light' ||
    entity.platform === 'switch' ||
    entity.platform === 'binary_sensor'
  ) {
    if (payload !== entity.payloadOn && payload !== entity.payloadOff) {
      return (
        `${entity.name} sent ${JSON.stringify(payload)} on ${entity.stateTopic}, neither ` +
        `${JSON.stringify(entity.payloadOn)} nor ${JSON.stringify(entity.payloadOff)}`
      )
    }
  }
  return `${entity.name} state ${payload}${entity.unit ? ` ${entity.unit}` : ''}${retained}`
}

function originOf(origin: Origin): string {
  return origin.sw === undefined ? origin.name : `${origin.name} ${origin.sw}`
}
