// The retained experiment, played by the same scenario as `npm run demo:retained`, in check mode.
import { expect } from 'vitest'
import { retained } from '../../scenarios/retained.ts'
import type { Event } from '../../scenarios/stage/scenario.ts'
import { scenarioSuite } from './scenario-suite.ts'

const messages = (events: Event[], label: string) =>
  events.flatMap((e) =>
    e.kind === 'line' && e.label === label && e.text.startsWith('my_topic ') ? [e.text] : [],
  )

scenarioSuite(
  retained,
  'C11, C12, C13, S2: new subscribers get the last retained message, marked; an empty one ' +
    'deletes it',
  ['C11', 'C12', 'S2', 'C13'],
  {
    verify: (events) => {
      expect(messages(events, 'subscriber-1')).toEqual([
        'my_topic on (retained)', // first run
        'my_topic on (retained)', // second run, nothing published in between
        'my_topic marker-1',
        'my_topic one',
        'my_topic two',
        'my_topic three',
        'my_topic marker-2',
        'my_topic (empty)',
        'my_topic marker-3',
      ])
      expect(messages(events, 'subscriber-2')).toEqual([
        'my_topic three (retained)',
        'my_topic marker-2',
        'my_topic (empty)',
        'my_topic marker-3',
      ])
      expect(messages(events, 'subscriber-3')).toEqual(['my_topic marker-3'])
    },
  },
)
