// The basic experiment, played by the same scenario as `npm run demo:basic-pubsub`, in check mode.
import { expect } from 'vitest'
import { basicPubsub } from '../../scenarios/basic-pubsub.ts'
import { scenarioSuite } from './scenario-suite.ts'

scenarioSuite(
  basicPubsub,
  'C1, C5, C6, C7: a subscriber started first prints the message the publisher sends, through ' +
    'the broker',
  ['C6', 'C5', 'C7', 'C1'],
  {
    verify: (events) => {
      const subscriber = events.flatMap((e) =>
        e.kind === 'line' && e.label === 'subscriber' ? [e.text] : [],
      )
      expect(subscriber.slice(1)).toEqual(['subscribed to my_topic (QoS 0)', 'my_topic on'])
    },
  },
)
