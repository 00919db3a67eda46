// Topic names and filters as MQTT 3.1.1 §4.7 defines them ([MQTT-4.7.1-1] to [MQTT-4.7.1-3],
// [MQTT-4.7.3-1] to [MQTT-4.7.3-3]): what lib/topics.ts lets through to the wire.
import { describe, expect, it } from 'vitest'
import {
  emptyLevelNote,
  topicFilterProblem,
  topicMatches,
  topicNameProblem,
} from '../../lib/topics.ts'

describe('topic names (what PUBLISH carries)', () => {
  it.each([
    'my_topic',
    'home/living_room/light',
    'home//light',
    '/leading',
    'trailing/',
    '$SYS/broker',
    ' spaced name ',
  ])('accepts %j', (topic) => expect(topicNameProblem(topic)).toBeUndefined())

  it.each([
    ['', /at least one character/],
    ['home/+/light', /must not contain the wildcards/],
    ['home/#', /must not contain the wildcards/],
    ['home/liv+', /must not contain the wildcards/],
    ['nul\u0000byte', /null character/],
    ['x'.repeat(65536), /65535 bytes/],
  ])('S5: refuses %j', (topic, reason) => expect(topicNameProblem(topic)).toMatch(reason))
})

describe('topic filters (what SUBSCRIBE carries)', () => {
  it.each(['my_topic', '#', '+', 'home/#', 'home/+/light', '+/+', '+/#', 'home//light', '$SYS/#'])(
    'accepts %j',
    (filter) => expect(topicFilterProblem(filter)).toBeUndefined(),
  )

  it.each([
    ['', /at least one character/],
    ['home/#/x', /# must fill a whole level and be the last/],
    ['home#', /# must fill a whole level/],
    ['#/', /# must fill a whole level and be the last/],
    ['home/liv+', /\+ must fill a whole level/],
    ['+home', /\+ must fill a whole level/],
    ['a/\u0000', /null character/],
  ])('S3: refuses %j', (filter, reason) => expect(topicFilterProblem(filter)).toMatch(reason))
})

describe('topic matching', () => {
  it.each([
    ['home/living_room/light', 'home/living_room/light', true],
    ['home/living_room/light', 'home/living_room/tv', false],
    ['home/living_room/+', 'home/living_room/tv', true],
    ['home/+/light', 'home/bedroom/light', true],
    ['home/+/light', 'home/living_room/tv', false],
    ['home/+/light', 'home//light', true],
    ['home/+', 'home/a/b', false],
    ['#', 'home/living_room/light', true],
    ['home/#', 'home', true],
    ['home/#', 'homes', false],
    ['#', '$SYS/broker/uptime', false],
    ['+/broker/uptime', '$SYS/broker/uptime', false],
    ['$SYS/#', '$SYS/broker/uptime', true],
    ['a/b', 'a/b/', false],
  ])('%j matches %j: %s', (filter, topic, matches) =>
    expect(topicMatches(filter, topic)).toBe(matches),
  )
})

describe(
  'a topic with a slash at an end: valid, and likely a typing mistake, so the demos say ' +
    'what it means',
  () => {
    it.each([
      [
        'home/',
        'home/ ends with /, so it has an empty level there: it is not the same topic as home',
      ],
      [
        '/home',
        '/home starts with /, so it has an empty level there: it is not the same topic as home',
      ],
      [
        '/home/',
        '/home/ starts and ends with /, so it has an empty level there: it is not the same topic ' +
          'as home',
      ],
    ])('%j', (topic, note) => expect(emptyLevelNote(topic)).toBe(note))

    it.each(['home', 'home//light', '#', '/'])('%j needs no note', (topic) =>
      expect(emptyLevelNote(topic)).toBeUndefined(),
    )
  },
)
