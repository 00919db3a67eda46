// Topic names and topic filters, checked the way MQTT 3.1.1 §4.7 defines them, before they reach
// the wire. MQTT.js sends whatever it is given, and a broker answers a bad topic by dropping the
// connection, so a learner would see a disconnect instead of the reason.

/** Why a topic name (what PUBLISH carries) is invalid, or undefined when it is valid. */
export function topicNameProblem(topic: string): string | undefined {
  if (topic === '') return 'a topic name must be at least one character long (MQTT 3.1.1 §4.7.3)'
  if (/[+#]/.test(topic)) {
    return (
      'a topic name must not contain the wildcards + or # (MQTT 3.1.1 §4.7.1); publish to a ' +
      'concrete topic such as home/bedroom/light'
    )
  }
  return commonProblem(topic)
}

/** Why a topic filter (what SUBSCRIBE carries) is invalid, or undefined when it is valid. */
export function topicFilterProblem(filter: string): string | undefined {
  if (filter === '') return 'a topic filter must be at least one character long (MQTT 3.1.1 §4.7.3)'
  const levels = filter.split('/')
  for (const [i, level] of levels.entries()) {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
      return '# must fill a whole level and be the last one, as in home/# (MQTT 3.1.1 §4.7.1.2)'
    }
    if (level.includes('+') && level !== '+') {
      return '+ must fill a whole level, as in home/+/light (MQTT 3.1.1 §4.7.1.3)'
    }
  }
  return commonProblem(filter)
}

function commonProblem(topic: string): string | undefined {
  if (topic.includes('\u0000'))
    return 'a topic must not contain the null character U+0000 (MQTT 3.1.1 §4.7.3)'
  // TextEncoder rather than Buffer: the dashboard's page runs these checks in a browser too.
  if (new TextEncoder().encode(topic).length > 65535)
    return 'a topic must not be longer than 65535 bytes (MQTT 3.1.1 §4.7.3)'
  return undefined
}

/**
 * Whether a topic filter matches a topic name (MQTT 3.1.1 §4.7): `+` matches exactly one level,
 * possibly empty; `#` matches the parent level and every level below it; a filter that starts
 * with a wildcard does not match a topic name that starts with `$` (§4.7.2).
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length) return false
    if (f[i] !== '+' && f[i] !== t[i]) return false
  }
  return f.length === t.length
}

/**
 * What a topic that starts or ends with / means, when it does: a level that is empty, which makes
 * it another topic than the one without the slash. Valid (home//light is a topic of its own, S3),
 * so a note rather than an error; undefined for a topic with neither.
 */
export function emptyLevelNote(topic: string): string | undefined {
  const where = [topic.startsWith('/') && 'starts', topic.endsWith('/') && 'ends']
    .filter(Boolean)
    .join(' and ')
  if (!where || topic === '/') return undefined
  const bare = topic.replace(/^\/|\/$/g, '')
  return (
    `${topic} ${where} with /, so it has an empty level there: it is not the same topic as ` +
    `${bare}`
  )
}
