// lib/broker/acl.ts, the ACL file read and applied as Mosquitto 2.0.11's default ACL check does
// (src/security_default.c): who may read and write what, line by line. What Mosquitto itself
// answers with an ACL is test/broker/security.test.ts's SEC9 to SEC12.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { aclAllows, readAcl } from '../../lib/broker/acl.ts'

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mqtt-by-example-acl-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function acl(...lines: string[]) {
  const file = join(dir, 'acl')
  writeFileSync(file, `${lines.join('\n')}\n`)
  return readAcl(file)
}

const ann = { username: 'ann', clientId: 'ann-laptop' }
const anonymous = { clientId: 'sensor-1' }

describe('the ACL file', () => {
  it("ACL1 topic lines before any user line are the anonymous clients'", () => {
    const rules = acl('# comment', '', 'topic read public/#', 'user ann', 'topic ann/#')
    expect(aclAllows(rules, anonymous, 'public/news', 'read')).toBe(true)
    expect(aclAllows(rules, anonymous, 'public/news', 'write')).toBe(false)
    expect(aclAllows(rules, ann, 'public/news', 'read')).toBe(false)
    // No access word: read and write.
    expect(aclAllows(rules, ann, 'ann/notes', 'write')).toBe(true)
    expect(aclAllows(rules, ann, 'ann/notes', 'read')).toBe(true)
  })

  it('ACL2 a deny line wins over every allow line of its list, wherever it stands', () => {
    const rules = acl('user ann', 'topic readwrite home/#', 'topic deny home/safe')
    expect(aclAllows(rules, ann, 'home/lamp', 'write')).toBe(true)
    expect(aclAllows(rules, ann, 'home/safe', 'read')).toBe(false)
  })

  it('ACL3 patterns replace %u and %c, and skip %u for anonymous clients', () => {
    const rules = acl('pattern readwrite users/%u/#', 'pattern write devices/%c/state')
    expect(aclAllows(rules, ann, 'users/ann/x', 'read')).toBe(true)
    expect(aclAllows(rules, ann, 'users/bob/x', 'read')).toBe(false)
    expect(aclAllows(rules, ann, 'devices/ann-laptop/state', 'write')).toBe(true)
    expect(aclAllows(rules, anonymous, 'devices/sensor-1/state', 'write')).toBe(true)
    expect(aclAllows(rules, anonymous, 'users//x', 'read')).toBe(false)
  })

  it('ACL4 a user name or client id with + or # gets nothing from patterns', () => {
    const rules = acl('pattern readwrite users/%u/#')
    expect(aclAllows(rules, { username: '#', clientId: 'x' }, 'users/#/x', 'read')).toBe(false)
    expect(aclAllows(rules, { username: 'ann', clientId: 'a+' }, 'users/ann/x', 'read')).toBe(false)
  })

  it('ACL5 # matches its parent, + one level, and $ topics only filters that start with $', () => {
    const rules = acl('topic read a/#', 'topic read b/+/c', 'topic read #')
    expect(aclAllows(rules, anonymous, 'a', 'read')).toBe(true)
    expect(aclAllows(rules, anonymous, 'b/x/c', 'read')).toBe(true)
    expect(aclAllows(rules, anonymous, 'b/x/y/c', 'read')).toBe(true)
    expect(aclAllows(acl('topic read b/+/c'), anonymous, 'b/x/y/c', 'read')).toBe(false)
    expect(aclAllows(rules, anonymous, '$SYS/broker/version', 'read')).toBe(false)
    expect(aclAllows(acl('topic read $SYS/#'), anonymous, '$SYS/broker/version', 'read')).toBe(true)
  })

  it('ACL6 refuses a line it cannot read, naming the file and the line', () => {
    expect(() => acl('user ann', 'topic maybe a/b')).toThrow(/acl:2: maybe is not read, write/)
    expect(() => acl('topics a/b')).toThrow(/acl:1: "topics a\/b" is not an ACL line/)
    expect(() => acl('topic read a/#/b')).toThrow(/acl:1: "a\/#\/b" is not a topic filter/)
    expect(() => acl('user')).toThrow(/acl:1: user needs a name/)
    expect(() => readAcl(join(dir, 'none'))).toThrow(/cannot read acl_file .*none: ENOENT/)
  })
})
