// Topics that start with $ are not matched by a filter that starts with a wildcard.
// Keeps [MQTT-4.7.2-1] (§4.7.2 of MQTT 3.1.1 and of MQTT 5).
import type { Aedes } from 'aedes'
import { topicMatches } from '../../topics.ts'
import { filterOf, subscriptionsOf } from './aedes-internals.ts'

/**
 * A filter that starts with + or # must not match a topic name that starts with $. aedes keeps to
 * this for live messages but sends retained ones anyway (subscribe to # and you get
 * $SYS/broker/version); this hook, which sees every message on its way to a client, drops a $ topic
 * unless one of the client's filters that does not start with a wildcard matches it.
 */
export function keepDollarTopicsFromWildcards(aedes: Aedes): void {
  const forward = aedes.authorizeForward
  aedes.authorizeForward = (client, packet) => {
    if (packet.topic.startsWith('$')) {
      const filters = Object.keys(subscriptionsOf(client)).map(filterOf)
      if (!filters.some((filter) => !/^[+#]/.test(filter) && topicMatches(filter, packet.topic)))
        return null
    }
    return forward.call(aedes, client, packet)
  }
}
