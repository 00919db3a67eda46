// `npm run passwd` (lib/broker/passwd.ts) beside Mosquitto's mosquitto_passwd: files made or
// changed by either are read by the other and by the bundled broker (lib/broker/passwords.ts), and
// its mistakes are one line each. That Mosquitto accepts a password it wrote is
// test/broker/security.test.ts's SEC4.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkPassword, readPasswordFile } from '../../lib/broker/passwords.ts'
import { findProgram } from '../helpers/mosquitto.ts'
import { expectOneLineError, runScript, start } from '../helpers/processes.ts'

const passwd = 'lib/broker/passwd.ts'
const mosquittoPasswd = findProgram('mosquitto_passwd')

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mqtt-by-example-passwd-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Run npm run passwd with `typed` on its standard input, left open as a terminal's would be. */
function typing(args: string[], typed: string) {
  const program = start(passwd, args)
  program.child.stdin?.write(typed)
  return program.finish()
}

const users = (file: string) => [...readPasswordFile(file).keys()]
const accepts = (file: string, user: string, password: string) =>
  checkPassword(readPasswordFile(file), user, Buffer.from(password))

describe('npm run passwd', () => {
  it('-c -b makes $7$ lines that only the right password opens, for the owner alone', async () => {
    const file = join(dir, 'made')
    const made = await runScript(passwd, ['-c', '-b', file, 'ann', 'ann-pw'])
    expect(made.code, made.stderr).toBe(0)
    expect(made.stdout + made.stderr).not.toContain('ann-pw')
    expect(readFileSync(file, 'utf8')).toMatch(
      /^ann:\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==\n$/,
    )
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(accepts(file, 'ann', 'ann-pw')).toBe(true)
    expect(accepts(file, 'ann', 'ann-pw ')).toBe(false)
    expect(accepts(file, 'bob', 'ann-pw')).toBe(false)
  })

  it('asks twice for a password it is not given, and refuses two that differ', async () => {
    const file = join(dir, 'asked')
    const asked = await typing(['-c', file, 'ann'], 'pw1\npw1\n')
    expect(asked.code, asked.stderr).toBe(0)
    expect(asked.stderr).toBe('Password: \nReenter password: \n')
    expect(accepts(file, 'ann', 'pw1')).toBe(true)
    const differ = await typing([file, 'ann'], 'pw2\npw3\n')
    expect(differ.stderr).toContain('error: the two passwords differ')
    expect(accepts(file, 'ann', 'pw1')).toBe(true)
  })

  it('adds, changes (-b) and removes (-D) users, keeping the others', async () => {
    const file = join(dir, 'changed')
    await runScript(passwd, ['-c', '-b', file, 'ann', 'one'])
    await runScript(passwd, ['-b', file, 'bob', 'two'])
    await runScript(passwd, ['-b', file, 'ann', 'three'])
    expect(users(file)).toEqual(['ann', 'bob'])
    expect(accepts(file, 'ann', 'three')).toBe(true)
    await runScript(passwd, ['-D', file, 'ann'])
    expect(users(file)).toEqual(['bob'])
  })

  it('-U hashes a file of plain passwords once, and refuses to hash it again', async () => {
    const file = join(dir, 'plain')
    writeFileSync(file, 'ann:ann-pw\nbob:bob-pw\n')
    expect((await runScript(passwd, ['-U', file])).code).toBe(0)
    expect(accepts(file, 'bob', 'bob-pw')).toBe(true)
    expectOneLineError(await runScript(passwd, ['-U', file]), /plain:1: .* already hashed/)
  })

  it('says in one line what is wrong with its command line', async () => {
    const file = join(dir, 'errors')
    expectOneLineError(await runScript(passwd, ['-c', '-D', file, 'ann']), /-c and -D cannot/)
    expectOneLineError(await runScript(passwd, ['-b', file, 'ann', 'pw']), /does not exist; use -c/)
    expectOneLineError(await runScript(passwd, ['-c', '-b', file, 'a:b', 'pw']), /no ':'/)
    await runScript(passwd, ['-c', '-b', file, 'ann', 'pw'])
    expectOneLineError(await runScript(passwd, ['-D', file, 'zed']), /user zed is not in/)
    expectOneLineError(await runScript(passwd, ['-b', file, 'ann']), /expected FILE USER PASSWORD/)
  })
})

describe.skipIf(!mosquittoPasswd)('npm run passwd beside mosquitto_passwd', () => {
  it('each changes the files of the other, and the bundled broker reads them all', async () => {
    const file = join(dir, 'shared')
    await runScript(passwd, ['-c', '-b', file, 'ann', 'ann-pw'])
    execFileSync(mosquittoPasswd!, ['-b', file, 'bob', 'bob-pw'])
    // Mosquitto 1.6's format, which Mosquitto 2 still reads.
    execFileSync(mosquittoPasswd!, ['-H', 'sha512', '-b', file, 'old', 'old-pw'])
    expect(readFileSync(file, 'utf8')).toMatch(/^old:\$6\$/m)
    await runScript(passwd, ['-b', file, 'cid', 'cid-pw'])
    execFileSync(mosquittoPasswd!, ['-D', file, 'ann'])
    expect(users(file)).toEqual(['bob', 'old', 'cid'])
    expect(accepts(file, 'bob', 'bob-pw')).toBe(true)
    expect(accepts(file, 'old', 'old-pw')).toBe(true)
    expect(accepts(file, 'cid', 'cid-pw')).toBe(true)
    expect(accepts(file, 'old', 'bob-pw')).toBe(false)
  })
})
