// What an arrow of the trace says (./trace.ts's PacketEntry.text): a packet of the broker's record
// in a few words a room reads from the back, and, against a broker that is not ours, the packets a
// program's own lines tell of (the only ones the stage can see there).
import type { PacketSummary } from '../../lib/broker/record.ts'
import { topicMatches } from '../../lib/topics.ts'
import type { PacketType } from './trace.ts'

/** Payloads longer than this are given by their size: an arrow is one short line. */
const PAYLOAD_CHARS = 24

/** A payload as an arrow shows it: quoted when short and printable, else its size. */
function payloadText(payload: string, bytes: number, topic = ''): string {
  if (bytes <= PAYLOAD_CHARS && payload.length === bytes && /^[\x20-\x7e]*$/.test(payload))
    return JSON.stringify(payload)
  const what = topic.endsWith('/config') ? 'config, ' : ''
  return `(${what}${bytes} bytes)`
}

/** A code as MQTT's tables write it: 0 to 2 as numbers, failures (0x80 and up) in hex. */
function code(n: number): string {
  return n < 0x80 ? String(n) : `0x${n.toString(16)}`
}

/** Client ids that mean nothing to a room, and differ from run to run. */
const MADE_UP_ID = /^(mqttjs_[0-9a-f]+|stage-[0-9a-f]{8})$/

/**
 * `PUBLISH my_topic "on" q1 retain`, `CONNACK 0 session present`, `SUBSCRIBE home/# q0`, `PINGREQ`:
 * the packet's name and what matters on it.
 */
export function packetText(p: PacketSummary): string {
  const name = p.cmd.toUpperCase()
  const reasonCode = p.reasonCode ? ` ${code(p.reasonCode)}` : ''
  switch (p.cmd) {
    case 'connect': {
      const id = p.clientId && !MADE_UP_ID.test(p.clientId) ? ` ${p.clientId}` : ''
      const version = p.protocolVersion === 5 ? ' v5' : ''
      const will = p.will
        ? ` will ${p.will.topic} ${payloadText(p.will.payload, Buffer.byteLength(p.will.payload))}`
        : ''
      return `${name}${id}${version}${p.clean ? '' : ' keep session'}${will}`
    }
    case 'connack':
      return `${name} ${code(p.returnCode ?? 0)}${p.sessionPresent ? ' session present' : ''}`
    case 'publish':
      return publishText(p.topic ?? '', p.payload ?? '', p.bytes ?? 0, p)
    case 'subscribe':
      return `${name} ${(p.subscriptions ?? []).map((s) => `${s.topic} q${s.qos}`).join(', ')}`
    case 'suback':
      return `${name} ${(p.granted ?? []).map(code).join(', ')}`
    case 'unsubscribe':
      return `${name} ${(p.unsubscriptions ?? []).join(', ')}`
    default:
      return `${name}${reasonCode}`
  }
}

function publishText(
  topic: string,
  payload: string,
  bytes: number,
  flags: {
    qos?: number
    retain?: boolean
    dup?: boolean
    topicAlias?: number
    lastPayload?: string
  },
): string {
  const qos = flags.qos ? ` q${flags.qos}` : ''
  const more = `${flags.retain ? ' retain' : ''}${flags.dup ? ' dup' : ''}`
  // With a Topic Alias the topic is sent once, then only the alias: the arrow says which.
  const alias = flags.topicAlias === undefined ? '' : `alias ${flags.topicAlias}`
  const where = topic && alias ? `${topic} (${alias})` : topic || `(${alias})`
  // A burst of payloads that differ (lib/broker/record.ts's recordLines): the first and the last,
  // where it is short enough to quote (a record cuts a long one, whose size it then does not know).
  const lastPayload = flags.lastPayload ?? ''
  const lastText = payloadText(lastPayload, Buffer.byteLength(lastPayload), topic)
  const last = flags.lastPayload === undefined ? '' : lastText[0] === '"' ? ` … ${lastText}` : ' …'

  return `PUBLISH ${where} ${payloadText(payload, bytes, topic)}${last}${qos}${more}`
}

/** A packet that a program's line tells of, against a broker whose record the stage cannot read. */
export interface ToldPacket {
  /** 'out': the program sent it to the broker; 'in': the broker sent it to the program. */
  dir: 'out' | 'in'
  type: PacketType
  text: string
  retained?: boolean
}

/**
 * The packets a line of a demo program tells of: CONNECT and CONNACK for "connected to ...",
 * SUBSCRIBE and SUBACK for "subscribed to ...", a PUBLISH for "published ... to ...", and a PUBLISH
 * received for a line that starts with a topic one of `filters` (what it subscribed to) matches.
 */
export function toldByLine(line: string, filters: string[]): ToldPacket[] {
  const connected = line.match(/^connected to \S+, result code (\d+)(.*)$/)
  if (connected) {
    const present = /session present: yes/.test(connected[2]) ? ' session present' : ''
    return [
      { dir: 'out', type: 'connect', text: 'CONNECT' },
      { dir: 'in', type: 'connack', text: `CONNACK ${connected[1]}${present}` },
    ]
  }
  const subscribed = line.match(/^subscribed to (\S+) \(QoS (\d+)\)$/)
  if (subscribed)
    return [
      { dir: 'out', type: 'subscribe', text: `SUBSCRIBE ${subscribed[1]}` },
      { dir: 'in', type: 'suback', text: `SUBACK ${subscribed[2]}` },
    ]
  const published = line.match(/^published ("(?:[^"\\]|\\.)*") to (\S+)( \(retained\))?/)
  if (published) {
    const payload = JSON.parse(published[1]) as string
    const text = publishText(published[2], payload, Buffer.byteLength(payload), {
      retain: published[3] !== undefined,
    })
    return [{ dir: 'out', type: 'publish', text }]
  }
  const received = line.match(/^(\S+) (.*?)( \(retained\))?$/)
  if (received && filters.some((f) => topicMatches(f, received[1]))) {
    const payload = received[2] === '(empty)' ? '' : received[2]
    const retained = received[3] !== undefined
    const text = publishText(received[1], payload, Buffer.byteLength(payload), {
      retain: retained,
    })
    return [{ dir: 'in', type: 'publish', text, retained }]
  }
  return []
}

/** The filter a line "subscribed to FILTER (QoS n)" names, if it is one. */
export function subscribedFilter(line: string): string | undefined {
  return line.match(/^subscribed to (\S+) \(QoS \d+\)$/)?.[1]
}
