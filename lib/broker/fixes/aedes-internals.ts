// What aedes keeps on a client and on itself that its types leave out, for the fixes that reach it.
import type { Client } from 'aedes'
import type { IPublishPacket } from 'mqtt-packet'

/** How aedes sends a message to a client, at QoS 0 (`deliver0`) or above (`deliverQoS`). */
type Deliver = (packet: IPublishPacket, done: () => void) => void

/**
 * What aedes keeps on a client: its filters with their granted QoS (and MQTT 5 subscription
 * identifier), and how it sends.
 */
export interface ClientInternals {
  subscriptions: Record<string, { qos: number; si?: number }>
  deliver0: Deliver
  deliverQoS: Deliver
}

/** A client as aedes keeps it. */
export const internalsOf = (client: Client) => client as Client & ClientInternals

/** What aedes keeps of a client's subscriptions: filter -> granted QoS. */
export const subscriptionsOf = (client: Client) => internalsOf(client).subscriptions

/**
 * The topic filter of a subscription as aedes keys it: `$share/lights/home/#` (a shared
 * subscription, ./shared-subscriptions.ts) filters home/#.
 */
export const filterOf = (key: string) =>
  key.startsWith('$share/') ? key.slice(key.indexOf('/', 7) + 1) : key
