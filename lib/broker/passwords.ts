// Password files in Mosquitto's format, as mosquitto_passwd 2.0 writes them and Mosquitto reads
// them: one `user:$7$iterations$salt$hash` line per user (PBKDF2-HMAC-SHA512, a 12-byte salt, a
// 64-byte hash, both in base64), or `user:$6$salt$hash` (SHA-512 of password then salt) from
// Mosquitto 1.6 and earlier. The bundled broker checks passwords with it; ./passwd.ts writes it.
import { createHash, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { messageOf } from '../cli.ts'

/** mosquitto_passwd's default since 2.0 (PW_DEFAULT_ITERATIONS in its sources). */
export const DEFAULT_ITERATIONS = 101
const SALT_BYTES = 12
const HASH_BYTES = 64

interface Hashed {
  /** '7' is PBKDF2-SHA512, '6' plain SHA-512. */
  type: '6' | '7'
  iterations: number
  salt: Buffer
  hash: Buffer
}

/** User name to hashed password, as read from a password file. */
export type PasswordFile = ReadonlyMap<string, Hashed>

/** One `user:$7$...` line for `password`, with a new random salt. */
export function hashLine(username: string, password: string, iterations = DEFAULT_ITERATIONS) {
  const salt = randomBytes(SALT_BYTES)
  const hash = digest(Buffer.from(password), { type: '7', iterations, salt })
  return `${username}:$7$${iterations}$${salt.toString('base64')}$${hash.toString('base64')}`
}

/**
 * Read a password file; throws one line naming the file and the line at the first line that is
 * not a user and a hash (where Mosquitto logs the line and drops that user, we refuse the file: a
 * user who cannot log in and a broker that started anyway is harder to understand).
 */
export function readPasswordFile(file: string): PasswordFile {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new Error(`cannot read password_file ${file}: ${messageOf(error)}`)
  }
  const users = new Map<string, Hashed>()
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/\r$/, '')
    if (line.startsWith('#') || line.trim() === '') return
    const colon = line.indexOf(':')
    const username = line.slice(0, colon).trim()
    const hashed = colon < 1 ? undefined : parseHash(line.slice(colon + 1).trim())
    if (username === '' || hashed === undefined) {
      throw new Error(
        `${file}:${index + 1}: not a user:$7$... line of mosquitto_passwd; make the file again ` +
          `with npm run passwd (or mosquitto_passwd), or -U to hash a file of plain passwords`,
      )
    }
    users.set(username, hashed)
  })
  return users
}

function parseHash(text: string): Hashed | undefined {
  const pbkdf2 = /^\$7\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(text)
  const sha512 = /^\$6\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(text)
  const [type, iterations, salt64, hash64] = pbkdf2
    ? (['7', Number(pbkdf2[1]), pbkdf2[2], pbkdf2[3]] as const)
    : sha512
      ? (['6', 0, sha512[1], sha512[2]] as const)
      : []
  if (type === undefined || (type === '7' && iterations < 1)) return undefined
  const salt = Buffer.from(salt64, 'base64')
  const hash = Buffer.from(hash64, 'base64')
  if (salt.length !== SALT_BYTES || hash.length !== HASH_BYTES) return undefined
  return { type, iterations, salt, hash }
}

function digest(password: Buffer, { type, iterations, salt }: Omit<Hashed, 'hash'>): Buffer {
  // Mosquitto hashes the password as a C string: up to its first NUL byte.
  const nul = password.indexOf(0)
  const bytes = nul < 0 ? password : password.subarray(0, nul)
  if (type === '6') return createHash('sha512').update(bytes).update(salt).digest()
  return pbkdf2Sync(bytes, salt, iterations, HASH_BYTES, 'sha512')
}

/**
 * Whether `password` is this user's, compared in constant time; false for a user not in the file
 * and for no password at all.
 */
export function checkPassword(
  users: PasswordFile,
  username: string,
  password: Buffer | undefined,
): boolean {
  const user = users.get(username)
  if (user === undefined || password === undefined) return false
  return timingSafeEqual(digest(password, user), user.hash)
}

/** `users` and one more, given in the clear (the broker's --username and --password). */
export function withUser(users: PasswordFile | undefined, username: string, password: string) {
  const salt = randomBytes(SALT_BYTES)
  const hashed: Hashed = { type: '7', iterations: DEFAULT_ITERATIONS, salt, hash: Buffer.alloc(0) }
  hashed.hash = digest(Buffer.from(password), hashed)
  return new Map(users).set(username, hashed) as PasswordFile
}
