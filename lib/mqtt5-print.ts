// What MQTT 5 adds to what the demos print: the reason code of an acknowledgement with its name
// (MQTT 5 §2.4), and the properties that came with a message. A 3.1.1 packet has neither, and for
// it each function here gives what the 3.1.1 programs always printed, so their output stays the
// same.
import type { IConnackPacket, IPublishPacket } from 'mqtt-packet'

/** The names MQTT 5 §2.4 gives its reason codes, in lower case to fit in a sentence. */
const NAMES: Record<number, string> = {
  0x00: 'success',
  0x01: 'granted QoS 1',
  0x02: 'granted QoS 2',
  0x04: 'disconnect with will message',
  0x10: 'no matching subscribers',
  0x11: 'no subscription existed',
  0x18: 'continue authentication',
  0x19: 're-authenticate',
  0x80: 'unspecified error',
  0x81: 'malformed packet',
  0x82: 'protocol error',
  0x83: 'implementation specific error',
  0x84: 'unsupported protocol version',
  0x85: 'client identifier not valid',
  0x86: 'bad user name or password',
  0x87: 'not authorized',
  0x88: 'server unavailable',
  0x89: 'server busy',
  0x8a: 'banned',
  0x8b: 'server shutting down',
  0x8c: 'bad authentication method',
  0x8d: 'keep alive timeout',
  0x8e: 'session taken over',
  0x8f: 'topic filter invalid',
  0x90: 'topic name invalid',
  0x91: 'packet identifier in use',
  0x92: 'packet identifier not found',
  0x93: 'receive maximum exceeded',
  0x94: 'topic alias invalid',
  0x95: 'packet too large',
  0x96: 'message rate too high',
  0x97: 'quota exceeded',
  0x98: 'administrative action',
  0x99: 'payload format invalid',
  0x9a: 'retain not supported',
  0x9b: 'QoS not supported',
  0x9c: 'use another server',
  0x9d: 'server moved',
  0x9e: 'shared subscriptions not supported',
  0x9f: 'connection rate exceeded',
  0xa0: 'maximum connect time',
  0xa1: 'subscription identifiers not supported',
  0xa2: 'wildcard subscriptions not supported',
}

/** A reason code as MQTT 5 names it: `0x87 not authorized`. */
export function reason(code: number): string {
  const hex = `0x${code.toString(16).toUpperCase().padStart(2, '0')}`
  return `${hex} ${NAMES[code] ?? 'unknown reason code'}`
}

/**
 * A reason code and the Reason String the broker may add to it: `0x87 not authorized ($SYS/ topic
 * is reserved)`.
 */
export function reasonWithString(code: number, properties?: { reasonString?: string }): string {
  return properties?.reasonString ? `${reason(code)} (${properties.reasonString})` : reason(code)
}

/**
 * How a CONNACK accepted the connection: `result code 0` in MQTT 3.1.1, `reason code 0x00 success`
 * in MQTT 5.
 */
export function connackResult(connack: IConnackPacket): string {
  return connack.reasonCode === undefined
    ? `result code ${connack.returnCode}`
    : `reason code ${reason(connack.reasonCode)}`
}

/**
 * The MQTT 5 properties that travel with a message, each in brackets, to print after it: ` (expires
 * in 9 s) (user property room=kitchen)`; nothing for a message without any (all of 3.1.1).
 */
export function messageProperties(packet: Pick<IPublishPacket, 'properties'>): string {
  const { messageExpiryInterval, userProperties, contentType, responseTopic, correlationData } =
    packet.properties ?? {}
  const said: string[] = []
  if (messageExpiryInterval !== undefined) said.push(`expires in ${messageExpiryInterval} s`)
  for (const [name, values] of Object.entries(userProperties ?? {})) {
    for (const value of [values].flat()) said.push(`user property ${name}=${value}`)
  }
  if (contentType !== undefined) said.push(`content type ${contentType}`)
  if (responseTopic !== undefined) said.push(`response topic ${responseTopic}`)
  if (correlationData !== undefined) said.push(`correlation data ${bytesText(correlationData)}`)
  return said.map((s) => ` (${s})`).join('')
}

/** Correlation data is bytes: as text when it is printable UTF-8, else in hex. */
function bytesText(data: Buffer | string): string {
  const bytes = Buffer.from(data)
  const text = bytes.toString('utf8')
  return Buffer.from(text, 'utf8').equals(bytes) && /^[\x20-\x7e\u00a0-\uffff]*$/.test(text)
    ? text
    : `0x${bytes.toString('hex')}`
}

/** What a PUBACK of MQTT 5 says: `acknowledged, reason code 0x10 no matching subscribers`. */
export function acknowledgement(puback: {
  reasonCode?: number
  properties?: { reasonString?: string }
}): string {
  return `acknowledged, reason code ${reasonWithString(puback.reasonCode ?? 0, puback.properties)}`
}
