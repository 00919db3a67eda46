// The ephemeral experiment, played by the same scenario as `npm run demo:ephemeral`, in check mode.
import { expect } from 'vitest'
import { ephemeral } from '../scenarios/ephemeral.ts'
import type { Event } from '../scenarios/stage.ts'
import { scenarioSuite } from './scenario-suite.ts'

/** The messages a subscriber printed, in order, without its connected and subscribed lines. */
const messages = (events: Event[], label: string) => events.flatMap((e) =>
  e.kind === 'line' && e.label === label && e.stream === 'stdout' && !/^(connected|subscribed) /.test(e.text) ? [e.text] : [])

scenarioSuite(ephemeral, 'C8, C9, C10, S1: only subscribers listening at the time get a message, unless a persistent session keeps it',
  ['C8', 'C9', 'C10', 'S1'], {
    verify: (events) => {
      // Markers are the stage's proofs of "nothing else": alice's first run, her second, her clean one.
      expect(messages(events, 'alice')).toEqual([
        'my_topic marker-1', 'my_topic on', 'my_topic off', 'my_topic marker-2',
        'my_topic kept for alice', 'my_topic marker-3',
        'my_topic marker-4',
      ])
      expect(messages(events, 'bob')).toEqual(['my_topic marker-2', 'my_topic marker-4'])
    },
  })
