// Mosquitto's ACL file (`acl_file`), read and applied as Mosquitto 2.0 applies it: `topic` lines
// belong to the `user` section above them (those before any `user` line to anonymous clients),
// `pattern` lines to everyone with %u and %c replaced by the client's user name and id; a `deny`
// line is looked at before the others of its list; anything not allowed is denied.
import { readFileSync } from 'node:fs'
import { messageOf } from '../cli.ts'

type Access = 'read' | 'write' | 'readwrite' | 'deny'

interface Rule {
  access: Access
  /** A topic filter; in a pattern, with %u and %c still in it. */
  filter: string
}

export interface Acl {
  /** The `topic` lines of each `user` section; key null for those before any `user` line. */
  users: Map<string | null, Rule[]>
  patterns: Rule[]
}

/** Who asks: the user name the client logged in with (or its certificate's CN) and its id. */
export interface Asker {
  username?: string
  clientId: string
}

/** Read an ACL file; throws one line naming the file and the line of the first mistake. */
export function readAcl(file: string): Acl {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new Error(`cannot read acl_file ${file}: ${messageOf(error)}`)
  }
  const acl: Acl = { users: new Map(), patterns: [] }
  let user: string | null = null
  text.split('\n').forEach((raw, index) => {
    const line = raw.trimEnd()
    if (line.startsWith('#') || line.trim() === '') return
    const where = `${file}:${index + 1}`
    const [keyword, ...rest] = line.trim().split(/ +/)
    if (keyword === 'user') {
      if (rest.length === 0) throw new Error(`${where}: user needs a name: user NAME`)
      user = line.trim().slice('user'.length).trim()
      return
    }
    if (keyword !== 'topic' && keyword !== 'pattern')
      throw new Error(
        `${where}: ${JSON.stringify(line)} is not an ACL line; write user NAME, ` +
          'topic [read|write|readwrite|deny] TOPIC or pattern [read|write|readwrite|deny] TOPIC',
      )
    // One word is the topic itself; before a topic, the first word must say the access.
    const access = rest.length > 1
    if (access && !['read', 'write', 'readwrite', 'deny'].includes(rest[0]))
      throw new Error(`${where}: ${rest[0]} is not read, write, readwrite or deny`)
    const rule: Rule = {
      access: access ? (rest[0] as Access) : 'readwrite',
      filter: (access ? rest.slice(1) : rest).join(' '),
    }
    const problem = filterProblem(rule.filter)
    if (problem) throw new Error(`${where}: ${JSON.stringify(rule.filter)} ${problem}`)
    const list =
      keyword === 'pattern'
        ? acl.patterns
        : (acl.users.get(user) ?? acl.users.set(user, []).get(user))
    // Mosquitto puts each deny line first, so that no allow line can open what it closes.
    if (rule.access === 'deny') list?.unshift(rule)
    else list?.push(rule)
  })
  return acl
}

/** Why `filter` is not a topic filter, or undefined if it is one. */
function filterProblem(filter: string): string | undefined {
  if (filter === '') return 'is empty: give a topic filter'
  const levels = filter.split('/')
  if (levels.some((level) => level.length > 1 && /[+#]/.test(level)))
    return 'is not a topic filter: + and # stand for a whole level'
  if (levels.slice(0, -1).includes('#')) return 'is not a topic filter: # comes last'
  return undefined
}

/** Whether `asker` may read (receive) or write (publish) `topic` under `acl`. */
export function aclAllows(
  acl: Acl,
  asker: Asker,
  topic: string,
  wanted: 'read' | 'write',
): boolean {
  const verdict = (rules: Rule[], filterOf: (rule: Rule) => string) => {
    for (const rule of rules) {
      if (!matches(filterOf(rule), topic)) continue
      if (rule.access === 'deny') return false
      if (rule.access === 'readwrite' || rule.access === wanted) return true
    }
    return undefined
  }
  const own = verdict(acl.users.get(asker.username ?? null) ?? [], (rule) => rule.filter)
  if (own !== undefined) return own
  if (acl.patterns.length === 0) return false
  // A user name or client id with + or # in it would turn a pattern into a wildcard.
  if (/[+#]/.test(asker.username ?? '') || /[+#]/.test(asker.clientId)) return false
  const patterns = acl.patterns.filter(
    (rule) => asker.username !== undefined || !rule.filter.includes('%u'),
  )
  return (
    verdict(patterns, (rule) =>
      rule.filter.replace(/%([cu])/g, (_, which: string) =>
        which === 'c' ? asker.clientId : (asker.username ?? ''),
      ),
    ) ?? false
  )
}

/** MQTT's filter matching; a topic that starts with $ matches only a filter that does too. */
function matches(filter: string, topic: string): boolean {
  if (filter.startsWith('$') !== topic.startsWith('$')) return false
  const want = filter.split('/')
  const have = topic.split('/')
  for (let i = 0; i < want.length; i++) {
    if (want[i] === '#') return true
    if (i >= have.length || (want[i] !== '+' && want[i] !== have[i])) return false
  }
  return want.length === have.length
}
