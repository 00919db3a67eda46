// MQTT 5: Clean Start 0 resumes a kept session whole, its queued messages included.
// Keeps MQTT 5 [MQTT-3.1.2-5] (§3.1.2.4).
import type { Aedes, Client } from 'aedes'

/**
 * Clean Start 0 resumes a kept session whole, whatever Session Expiry Interval the new CONNECT asks
 * for; the interval only says how long the session outlives this connection (§3.1.2.11.2). aedes
 * takes an interval of 0 for a clean session from the CONNECT on, and so, once it has said session
 * present, drops the QoS 1 and 2 messages queued in it instead of sending them (a client that comes
 * back "for the last time" with --session-expiry 0 loses them). Here the client counts as keeping
 * its session from its CONNACK until aedes has sent the queue and calls it ready; its session still
 * ends with the connection.
 */
export function deliverQueueOfResumedSession(aedes: Aedes): void {
  type Resumable = Client & {
    clean: boolean
    _cleanStart?: boolean
    sessionExpiryInterval?: number
  }
  const resuming = new WeakSet<Client>()
  aedes.on('connackSent', (connack, client) => {
    const c = client as Resumable
    if (c.version !== 5 || !connack.sessionPresent || c._cleanStart || !c.clean) return
    c.clean = false
    resuming.add(client)
  })
  aedes.on('clientReady', (client) => {
    if (!resuming.delete(client)) return
    ;(client as Resumable).clean = true
  })
}
