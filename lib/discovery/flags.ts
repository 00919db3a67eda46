// The flags of the two discovery demos, demos/discovery/publisher.ts (a device) and subscriber.ts
// (a listener): the usual --url and --id of lib/demo-flags.ts plus what says which device to play
// or which configs to follow, all checked before anything reaches the broker. The device plays the
// kitchen of docs/05-discovery.md unless its flags say otherwise; the listener writes its filter in
// its subscribe call (`flags.topic ?? 'homeassistant/#'`), which --topic or --prefix replaces.
import { fail, writePidFile } from '../cli.ts'
import { COMPONENTS, type ComponentName, type DeviceIdentity } from './device.ts'
import { DEFAULT_PREFIX, humanise, ID_PATTERN } from './format.ts'
import {
  clientFlags,
  clientOptions,
  parseFlags,
  programDescription,
  writtenInCalls,
  type ClientFlags,
  type Flag,
} from '../demo-flags.ts'
import { topicFilterProblem, topicNameProblem } from '../topics.ts'

interface DeviceFlags extends ClientFlags, DeviceIdentity {}

/** The kitchen of docs/05-discovery.md, with its light and its thermometer. */
const KITCHEN = { base: 'home', node: 'kitchen', components: COMPONENTS }

interface ListenerFlags extends ClientFlags {
  /** The discovery prefix, homeassistant unless --prefix. */
  prefix: string
  /** The filter for the configs, if --topic gave one, or --prefix moved the written one along. */
  topic?: string
}

/**
 * A device and a listener reconnect, so they can take several brokers (sharing one Redis) and try
 * them in turn.
 */
const urlFlag = () => {
  const { url } = clientFlags()
  return {
    ...url,
    help: `${url.help.replace(/\)$/, '')}; or a list, a,b, tried in turn)`,
  } satisfies Flag
}

const prefixFlag = (prefix: string) =>
  ({
    type: 'string',
    arg: 'TOPIC',
    help: `discovery prefix: the first level of every config topic (default ${prefix})`,
  }) satisfies Flag

/** Flags of the device. */
export function deviceFlags(): DeviceFlags {
  const defaults = { prefix: DEFAULT_PREFIX, ...KITCHEN }
  const names = COMPONENTS.join(' and ')
  const flags = {
    url: urlFlag(),
    'mqtt-version': clientFlags()['mqtt-version'],
    id: clientFlags().id,
    node: {
      type: 'string',
      arg: 'ID',
      help: `node id, the device: letters, digits, _ and - (default ${defaults.node})`,
    },
    name: {
      type: 'string',
      arg: 'TEXT',
      help:
        "the device's name, which listeners put before each entity's (default: made of " +
        '--node, e.g. "Kitchen")',
    },
    components: {
      type: 'string',
      arg: 'LIST',
      help:
        `what the device has, of ${names}, with commas ` +
        `(default ${defaults.components.join(',')})`,
    },
    'per-component': {
      type: 'boolean',
      help: "one config per component, the article's form, instead of one device config",
    },
    drop: {
      type: 'string',
      arg: 'COMPONENT',
      help:
        'a component the device no longer has: removed from Home Assistant at the first ' +
        'connection',
    },
    state: {
      type: 'string',
      arg: 'VALUE',
      help: "the light's state to start in: its --payload-on or --payload-off (default the first)",
    },
    temperature: {
      type: 'string',
      arg: 'NUMBER',
      help: 'what the thermometer reports, in °C (default 21.5)',
    },
    'payload-on': {
      type: 'string',
      arg: 'TEXT',
      help: 'what the light takes and reports for on (default ON)',
    },
    'payload-off': {
      type: 'string',
      arg: 'TEXT',
      help: 'what the light takes and reports for off (default OFF)',
    },
    prefix: prefixFlag(defaults.prefix),
    base: {
      type: 'string',
      arg: 'TOPIC',
      help:
        `its state, command and availability topics go under <base>/<node> (default ` +
        `${defaults.base})`,
    },
    'pid-file': {
      type: 'string',
      arg: 'FILE',
      help: 'write the process id to FILE, to pull the plug with kill -KILL "$(cat FILE)"',
    },
  } satisfies Record<string, Flag>
  const values = parseFlags(programDescription(), flags)

  const nodeId = checkId('--node', values.node ?? defaults.node)
  const drop = values.drop === undefined ? undefined : component('--drop', values.drop)
  const listed = values.components?.split(',').map((c) => component('--components', c))
  if (listed && new Set(listed).size < listed.length)
    fail(`--components lists a component twice: ${values.components}`)
  if (drop && listed?.includes(drop))
    fail(
      `--drop ${drop} removes a component that --components still lists; leave it out of one of ` +
        `them`,
    )
  const components = listed ?? defaults.components.filter((c) => c !== drop)
  if (components.length === 0)
    fail(`the device has no component left; give it one of ${names} with --components`)
  const payloadOn = values['payload-on'] ?? 'ON'
  const payloadOff = values['payload-off'] ?? 'OFF'
  if (payloadOn === '' || payloadOff === '' || payloadOn === payloadOff) {
    fail(
      `--payload-on and --payload-off must be two different payloads, not ` +
        `${JSON.stringify(payloadOn)} and ${JSON.stringify(payloadOff)}`,
    )
  }
  const state = values.state ?? payloadOn
  if (values.state !== undefined && !components.includes('light'))
    fail("--state is the light's, and this device has no light")
  if (state !== payloadOn && state !== payloadOff)
    fail(`--state of the light must be ${payloadOn} or ${payloadOff}, not ${JSON.stringify(state)}`)
  const temperature = values.temperature ?? '21.5'
  if (!Number.isFinite(Number(temperature)) || temperature.trim() === '')
    fail(`--temperature must be a number, not ${JSON.stringify(temperature)}`)
  if (values.name === '') fail('--name must not be empty; leave it out to get one made of --node')
  // The pid of this very process: under npx, the pid of npx or tsx is another one, whose kill
  // leaves this one running.
  if (values['pid-file'] !== undefined) writePidFile(values['pid-file'])
  return {
    ...clientOptions(values, {}, { list: true }),
    prefix: checkTopic('--prefix', values.prefix ?? defaults.prefix),
    base: checkTopic('--base', values.base ?? defaults.base),
    nodeId,
    deviceName: values.name ?? humanise(nodeId),
    components,
    perComponent: values['per-component'] ?? false,
    ...(drop && { drop }),
    payloadOn,
    payloadOff,
    state,
    temperature,
  }
}

function component(flag: string, name: string): ComponentName {
  if (!(COMPONENTS as readonly string[]).includes(name))
    fail(`${flag} takes ${COMPONENTS.join(' and ')}, not ${JSON.stringify(name)}`)
  return name as ComponentName
}

/** Flags of the listener, over what its calls write. */
export function listenerFlags(): ListenerFlags {
  // It plays Home Assistant, which speaks MQTT 5: -V 5 is its default, and the only one it takes.
  const written = { ...writtenInCalls(), version: 5 } as const
  const flags = {
    ...clientFlags(written),
    url: urlFlag(),
    prefix: prefixFlag(DEFAULT_PREFIX),
    topic: {
      type: 'string',
      arg: 'FILTER',
      help: `filter for the config topics to follow, e.g. ${DEFAULT_PREFIX}/light/#, quoted${
        written.topic === undefined ? '' : ` (default ${written.topic})`
      }`,
    },
  } satisfies Record<string, Flag>
  const values = parseFlags(programDescription(), flags)
  const prefix = checkTopic('--prefix', values.prefix ?? DEFAULT_PREFIX)
  // --prefix alone moves the written filter along: homeassistant/# becomes <prefix>/#.
  const moved =
    values.prefix !== undefined && written.topic?.startsWith(`${DEFAULT_PREFIX}/`)
      ? `${prefix}${written.topic.slice(DEFAULT_PREFIX.length)}`
      : undefined
  const topic = values.topic ?? moved
  const filter = topic ?? written.topic
  const problem = filter === undefined ? undefined : topicFilterProblem(filter)
  if (problem) fail(`cannot subscribe to ${JSON.stringify(filter)}: ${problem}`)
  const options = clientOptions(values, written, { list: true, sessionExpiry: 86_400 })
  if (options.version !== 5) {
    fail(
      'the listener plays Home Assistant, which speaks MQTT 5 to its broker: ' +
        '-V takes 5 only here',
    )
  }
  // The listener speaks MQTT 5, which ends a session with its connection unless CONNECT says how
  // long to keep it: with --no-clean, a day.
  if (options.clean === false) options.connection.properties = { sessionExpiryInterval: 86_400 }
  return { ...options, prefix, topic }
}

function checkId(flag: string, id: string): string {
  if (!ID_PATTERN.test(id)) {
    fail(
      `${flag} must be made of letters, digits, _ and - only (Home Assistant's rule for ids), ` +
        `not ${JSON.stringify(id)}`,
    )
  }
  return id
}

function checkTopic(flag: string, topic: string): string {
  const problem = topicNameProblem(topic)
  if (problem) fail(`${flag} ${JSON.stringify(topic)} cannot begin a topic name: ${problem}`)
  return topic
}
