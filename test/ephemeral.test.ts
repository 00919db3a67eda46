// The ephemeral experiment, played by the same scenario as `npm run demo:ephemeral`, in check mode.
import { expect } from 'vitest'
import { ephemeral } from '../scenarios/ephemeral.ts'
import type { Event } from '../scenarios/stage.ts'
import { scenarioSuite } from './scenario-suite.ts'

const printed = (events: Event[], label: string) =>
  events.flatMap((e) => (e.kind === 'line' && e.label === label && e.stream === 'stdout' ? [e.text] : []))

scenarioSuite(ephemeral, 'C8, C9, C10, S1: only subscribers listening at the time get a message, unless a persistent session keeps it',
  ['C8', 'C9', 'C10', 'S1'], {
    verify: (events) => {
      // Every message each subscriber printed, in order: markers are the stage's proofs of "nothing else".
      expect(printed(events, 'subscriber-1').slice(1)).toEqual(['subscribed to my_topic (QoS 0)', 'my_topic marker-1', 'my_topic on', 'my_topic off', 'my_topic marker-2'])
      expect(printed(events, 'subscriber-2').slice(1)).toEqual(['subscribed to my_topic (QoS 0)', 'my_topic marker-2'])
      const alice = printed(events, 'alice').filter((line) => !line.startsWith('connected') && !line.startsWith('subscribed'))
      expect(alice).toEqual(['my_topic kept for alice', 'my_topic marker-3', 'my_topic marker-4'])
    },
  })
