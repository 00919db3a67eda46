// The ephemeral experiment, played by the same scenario as `npm run demo:ephemeral`, in check mode.
import { expect } from 'vitest'
import { ephemeral } from '../../scenarios/ephemeral.ts'
import type { Event } from '../../scenarios/stage/scenario.ts'
import { normalise } from '../docs/doc-blocks.ts'
import { scenarioSuite } from './scenario-suite.ts'

/**
 * A returning session's queued messages and the SUBACK of its new SUBSCRIBE race (the broker sends
 * the queue as soon as the session is back): the SUBACK line is put right after the CONNACK line,
 * so that a docs block quoting either order matches, and every other line keeps its place.
 */
function sessionOrder(text: string): string {
  const lines = normalise(text).split('\n')
  const resumed = lines.findIndex((l) => l.endsWith('session present: yes'))
  const suback = lines.findIndex((l, i) => i > resumed && l.startsWith('subscribed to '))
  if (resumed >= 0 && suback > resumed + 1) lines.splice(resumed + 1, 0, ...lines.splice(suback, 1))
  return lines.join('\n')
}

/** The messages a subscriber printed, in order, without its connected and subscribed lines. */
const messages = (events: Event[], label: string) =>
  events.flatMap((e) =>
    e.kind === 'line' &&
    e.label === label &&
    e.stream === 'stdout' &&
    !/^(connected|subscribed) /.test(e.text)
      ? [e.text]
      : [],
  )

scenarioSuite(
  ephemeral,
  'C8, C9, C10, S1: only subscribers listening at the time get a message, unless a persistent ' +
    'session keeps it',
  ['C8', 'C9', 'C10', 'S1'],
  {
    normalise: sessionOrder,
    verify: (events) => {
      // Markers are the stage's proofs of "nothing else": alice's first run, her second, her clean
      // one.
      expect(messages(events, 'alice')).toEqual([
        'my_topic marker-1',
        'my_topic on',
        'my_topic off',
        'my_topic marker-2',
        'my_topic kept for alice',
        'my_topic marker-3',
        'my_topic marker-4',
      ])
      expect(messages(events, 'bob')).toEqual(['my_topic marker-2', 'my_topic marker-4'])
    },
  },
)
