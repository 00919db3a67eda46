// The flags of the two discovery demos, demos/discovery/publisher.ts (a device) and subscriber.ts (a
// listener), over the defaults each writes down: the usual --url and --id of lib/options.ts plus what
// says which device to play or which configs to follow, all checked before anything reaches the broker.
import { writeFileSync } from 'node:fs'
import { fail, messageOf } from './cli.ts'
import { DEFAULT_PREFIX, ID_PATTERN } from './discovery.ts'
import { clientFlags, clientOptions, parseFlags, programDescription, type ClientOptions, type Flag } from './options.ts'
import { topicFilterProblem, topicNameProblem } from './topics.ts'

export interface DeviceOptions extends ClientOptions {
  kind: 'light' | 'sensor'
  /** Discovery prefix: configs go to <prefix>/<kind>/<nodeId>/<objectId>/config. */
  prefix: string
  /** State, command and availability topics go under <base>/<nodeId>/<objectId>. */
  base: string
  nodeId: string
  objectId: string
  /** What a listener calls the entity ("Kitchen light"). */
  name: string
  /** What the device calls itself ("Kitchen"). */
  deviceName: string
  state: string
}

/** What the device demo does unless its flags say otherwise. */
export interface DeviceDefaults {
  prefix: string
  base: string
  kind: 'light' | 'sensor'
  node: string
}

/** What the listener demo does unless its flags say otherwise. */
export interface ListenerDefaults {
  prefix: string
  /** The filter for the configs; --prefix alone moves it along (homeassistant/# becomes <prefix>/#). */
  topic: string
  qos?: 0 | 1 | 2
}

export interface ListenerOptions extends ClientOptions {
  prefix: string
  /** The filter the listener subscribes to for configs. */
  topic: string
}

/** A device and a listener reconnect, so they can take several brokers (sharing one Redis) and try them in turn. */
const urlFlag = () => {
  const { url } = clientFlags()
  return { ...url, help: `${url.help.replace(/\)$/, '')}; or a list, a,b, tried in turn)` } satisfies Flag
}

const prefixFlag = (prefix: string) => ({
  type: 'string', arg: 'TOPIC', help: `discovery prefix: the first level of every config topic (default ${prefix})`,
}) satisfies Flag

/** Flags of the device, over the `defaults` written in it. */
export function deviceFlags(defaults: DeviceDefaults): DeviceOptions {
  const flags = {
    url: urlFlag(),
    'mqtt-version': clientFlags()['mqtt-version'],
    id: clientFlags().id,
    kind: { type: 'string', arg: 'KIND', help: `light (obeys ON and OFF) or sensor (a thermometer in °C); default ${defaults.kind}` },
    node: { type: 'string', arg: 'ID', help: `node id, the device: letters, digits, _ and - (default ${defaults.node})` },
    object: { type: 'string', arg: 'ID', help: 'object id, the entity on the device (default light, or temperature for a sensor)' },
    name: { type: 'string', arg: 'TEXT', help: 'the name listeners show (default: made of the two ids, e.g. "Kitchen light")' },
    state: { type: 'string', arg: 'VALUE', help: 'state to start in: ON or OFF for a light (default ON), a number for a sensor (default 21.5)' },
    prefix: prefixFlag(defaults.prefix),
    base: { type: 'string', arg: 'TOPIC', help: `the state, command and availability topics go under <base>/<node>/<object> (default ${defaults.base})` },
    'pid-file': { type: 'string', arg: 'FILE', help: 'write the process id to FILE, to pull the plug with kill -KILL "$(cat FILE)"' },
  } satisfies Record<string, Flag>
  const values = parseFlags(programDescription(), flags)

  const kind = values.kind ?? defaults.kind
  if (kind !== 'light' && kind !== 'sensor') fail(`--kind must be light or sensor, not ${JSON.stringify(kind)}`)
  const nodeId = checkId('--node', values.node ?? defaults.node)
  const objectId = checkId('--object', values.object ?? (kind === 'light' ? 'light' : 'temperature'))
  const state = values.state ?? (kind === 'light' ? 'ON' : '21.5')
  if (kind === 'light' && state !== 'ON' && state !== 'OFF') fail(`--state of a light must be ON or OFF, not ${JSON.stringify(state)}`)
  if (kind === 'sensor' && !Number.isFinite(Number(state))) fail(`--state of a sensor must be a number, not ${JSON.stringify(state)}`)
  if (values.name === '') fail('--name must not be empty; leave it out to get one made of --node and --object')
  // The pid of this very process: under npx, the pid of npx or tsx is another one, whose kill leaves this one running.
  if (values['pid-file'] !== undefined) writePidFile(values['pid-file'])
  return {
    ...clientOptions(values, {}, { list: true }),
    kind,
    prefix: checkTopic('--prefix', values.prefix ?? defaults.prefix),
    base: checkTopic('--base', values.base ?? defaults.base),
    nodeId,
    objectId,
    name: values.name ?? humanise(`${nodeId} ${objectId}`),
    deviceName: humanise(nodeId),
    state,
  }
}

/** Flags of the listener, over the `defaults` written in it. */
export function listenerFlags(defaults: ListenerDefaults): ListenerOptions {
  const flags = {
    ...clientFlags(defaults),
    url: urlFlag(),
    prefix: prefixFlag(defaults.prefix),
    topic: {
      type: 'string', arg: 'FILTER', help: `filter for the config topics to follow, e.g. ${DEFAULT_PREFIX}/light/#, quoted (default ${defaults.topic})`,
    },
  } satisfies Record<string, Flag>
  const values = parseFlags(programDescription(), flags)
  const prefix = checkTopic('--prefix', values.prefix ?? defaults.prefix)
  const moved = defaults.topic.startsWith(`${defaults.prefix}/`) ? `${prefix}${defaults.topic.slice(defaults.prefix.length)}` : defaults.topic
  const topic = values.topic ?? moved
  const problem = topicFilterProblem(topic)
  if (problem) fail(`cannot subscribe to ${JSON.stringify(topic)}: ${problem}`)
  return { ...clientOptions(values, defaults, { list: true }), prefix, topic }
}

function writePidFile(file: string): void {
  try {
    writeFileSync(file, `${process.pid}\n`)
  } catch (error) {
    fail(`cannot write --pid-file ${file}: ${messageOf(error)}`)
  }
}

function checkId(flag: string, id: string): string {
  if (!ID_PATTERN.test(id)) {
    fail(`${flag} must be made of letters, digits, _ and - only (Home Assistant's rule for ids), not ${JSON.stringify(id)}`)
  }
  return id
}

function checkTopic(flag: string, topic: string): string {
  const problem = topicNameProblem(topic)
  if (problem) fail(`${flag} ${JSON.stringify(topic)} cannot begin a topic name: ${problem}`)
  return topic
}

/** living_room temperature -> Living room temperature */
function humanise(ids: string): string {
  const words = ids.replace(/[_-]+/g, ' ')
  return words.charAt(0).toUpperCase() + words.slice(1)
}
