// What a device of demos/discovery/publisher.ts announces for Home Assistant's MQTT discovery,
// without the MQTT calls: its topics, and its configs, either one device config for all its
// components (the docs' "Device discovery payload", the form of today) or one config per component
// (the docs' "Single component discovery payload", the article's form). Both carry the origin, and
// default_entity_id where the deprecated object_id used to be.
import { setTimeout } from 'node:timers/promises'
import pkg from '../../package.json' with { type: 'json' }
import { configTopic, DEVICE, statusTopic } from './format.ts'

/** The components a demo device can have: a light, a thermometer, or both. */
export const COMPONENTS = ['light', 'temperature'] as const
export type ComponentName = (typeof COMPONENTS)[number]

/** Who a device is, as its flags say (lib/discovery/flags.ts). */
export interface DeviceIdentity {
  prefix: string
  base: string
  nodeId: string
  /** What it calls itself ("Kitchen"); Home Assistant puts it before each entity's own name. */
  deviceName: string
  components: ComponentName[]
  /**
   * One config per component, on <prefix>/<platform>/<node>/<component>/config, instead of a device
   * config.
   */
  perComponent: boolean
  /**
   * A component the device had and has no longer: removed from Home Assistant once, at the first
   * connection.
   */
  drop?: ComponentName
  payloadOn: string
  payloadOff: string
  /** The light's state to start in, payloadOn or payloadOff. */
  state: string
  temperature: string
}

/** The light of a device: where it reports, where it takes commands, and the payloads of both. */
interface Light {
  stateTopic: string
  commandTopic: string
  on: string
  off: string
}

interface Announcement {
  /** One topic for the whole device: its will says "offline" there. */
  availability: string
  /** Where Home Assistant says "online" when it starts: the device then announces itself again. */
  status: string
  light?: Light
  /** Each component's state topic and the state it starts in. */
  states: Map<string, string>
  /** [topic, payload] to publish once, retained, before the configs: the dropped component goes. */
  removal: [string, string][]
  /** The retained configs, by topic. */
  configs: Map<string, string>
  /** How the device's log names a payload it publishes: a config by what it is, else in quotes. */
  said(payload: string): string
}

/** Written into every config (the docs' origin): which software sent it. */
const ORIGIN = { name: pkg.name, sw: pkg.version }

export function announcement(device: DeviceIdentity): Announcement {
  const home = `${device.base}/${device.nodeId}`
  const stateOf = (component: ComponentName) => `${home}/${component}`
  const availability = `${home}/availability`
  const dev = { ids: [device.nodeId], name: device.deviceName }
  // The options of each component; unique_id lets Home Assistant keep the entity across restarts.
  const options = (component: ComponentName) => {
    const platform = component === 'light' ? 'light' : 'sensor'
    const uniqueId = `${device.nodeId}_${component}`
    const common = {
      name: component,
      unique_id: uniqueId,
      default_entity_id: `${platform}.${uniqueId}`,
      state_topic: stateOf(component),
    }
    return component === 'light'
      ? {
          platform,
          ...common,
          command_topic: `${stateOf(component)}/set`,
          payload_on: device.payloadOn,
          payload_off: device.payloadOff,
        }
      : { platform, ...common, device_class: 'temperature', unit_of_measurement: '°C' }
  }
  // Shared by every component: one availability topic for the device, QoS 1 for its states and
  // commands.
  const shared = { availability_topic: availability, qos: 1 }
  const configs = new Map<string, string>()
  const removal: Announcement['removal'] = []
  // A config payload by what the log calls it: the whole one is "its config".
  const names = new Map<string, string>()
  const deviceTopic = configTopic(device.prefix, { component: DEVICE, objectId: device.nodeId })
  const componentTopic = (component: ComponentName) =>
    configTopic(device.prefix, {
      component: options(component).platform,
      nodeId: device.nodeId,
      objectId: component,
    })
  const deviceConfig = (cmps: Record<string, unknown>) =>
    JSON.stringify({ dev, o: ORIGIN, cmps, ...shared })
  const cmps = (names: ComponentName[]) =>
    Object.fromEntries(
      names.map((c) => {
        const { platform, ...rest } = options(c)
        return [c, { p: platform, ...rest }]
      }),
    )

  if (device.perComponent) {
    for (const component of device.components) {
      const { platform: _, ...rest } = options(component)
      configs.set(componentTopic(component), JSON.stringify({ ...rest, dev, o: ORIGIN, ...shared }))
    }
  } else {
    configs.set(deviceTopic, deviceConfig(cmps(device.components)))
  }
  if (device.drop) {
    // A device config removes a component in two updates: with it reduced to its platform, then
    // without it. One component's config is removed by an empty one. Either way its state goes too.
    const gone = device.drop
    if (device.perComponent) {
      removal.push([componentTopic(gone), ''])
    } else {
      const platform = options(gone).platform
      const reduced = deviceConfig({ ...cmps(device.components), [gone]: { p: platform } })
      removal.push([deviceTopic, reduced])
      names.set(reduced, `its config with "${gone}": {"p": "${platform}"}`)
    }
    removal.push([stateOf(gone), ''])
  }

  const states = new Map(
    device.components.map((c) => [stateOf(c), c === 'light' ? device.state : device.temperature]),
  )
  const light = device.components.includes('light')
    ? {
        stateTopic: stateOf('light'),
        commandTopic: `${stateOf('light')}/set`,
        on: device.payloadOn,
        off: device.payloadOff,
      }
    : undefined
  for (const config of configs.values()) names.set(config, 'its config')
  const said = (payload: string) => names.get(payload) ?? JSON.stringify(payload)
  const status = statusTopic(device.prefix)
  return { availability, status, ...(light && { light }), states, removal, configs, said }
}

let answering = false

/**
 * How a device answers Home Assistant's birth message: after a random moment, up to half a second
 * here, so that a house of devices does not answer at once; and once, whatever other birth message
 * comes while it waits or answers. `answer` makes the MQTT calls.
 */
export async function answerBirth(answer: () => Promise<void>): Promise<void> {
  if (answering) return
  answering = true
  try {
    await setTimeout(Math.random() * 500)
    await answer()
  } finally {
    answering = false
  }
}
