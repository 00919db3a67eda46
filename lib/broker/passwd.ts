// `npm run passwd`: a twin of Mosquitto's mosquitto_passwd, for a learner without Mosquitto. It
// makes and changes password files in the format Mosquitto 2 reads (./passwords.ts), so a file
// made here works in Mosquitto and in the bundled broker (`password_file` in a -c configuration).
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fail, messageOf, startProgram } from '../cli.ts'
import { parseFlags } from '../parse-flags.ts'
import { DEFAULT_ITERATIONS, hashLine } from './passwords.ts'

const USAGE = [
  'npm run passwd -- [-c | -D] FILE USER   asks for the password twice',
  'npm run passwd -- [-c] -b FILE USER PASSWORD',
  'npm run passwd -- -U FILE               hashes a file of user:password lines in place',
].join('\n')

async function main(): Promise<void> {
  startProgram()
  const { values, positionals } = parseFlags(
    {
      invocation: 'npm run passwd --',
      description:
        "Make or change a password file in Mosquitto's format, as mosquitto_passwd does.",
      positionals: 'FILE [USER [PASSWORD]]',
      notes: `usage:\n${USAGE.replace(/^/gm, '  ')}`,
    },
    {
      create: { type: 'boolean', short: 'c', help: 'make a new file, replacing any old one' },
      batch: { type: 'boolean', short: 'b', help: 'take the password from the command line' },
      delete: { type: 'boolean', short: 'D', help: 'remove USER from FILE' },
      update: { type: 'boolean', short: 'U', help: 'hash the plain passwords of FILE' },
    },
  )
  const { create, batch, delete: remove, update } = values
  const modes = [create && '-c', remove && '-D', update && '-U'].filter(Boolean)
  if (modes.length > 1) fail(`${modes.join(' and ')} cannot be used together; give one of them`)
  if (remove && batch) fail('-b and -D cannot be used together: -D needs no password')
  const wanted = update ? 1 : batch ? 3 : 2
  if (positionals.length !== wanted)
    fail(`expected ${['FILE', 'USER', 'PASSWORD'].slice(0, wanted).join(' ')}; see --help`)
  const [file, username, given] = positionals
  if (update) return write(file, hashAll(file, readLines(file)))
  if (/[\x00-\x1f\x7f:]/.test(username))
    fail(`the user name ${JSON.stringify(username)} may hold no ':' and no control character`)
  if (remove) {
    const lines = readLines(file)
    const kept = lines.filter((line) => userOf(line) !== username)
    if (kept.length === lines.length) fail(`user ${username} is not in ${file}; nothing removed`)
    return write(file, kept)
  }
  const password = given ?? (await askPassword())
  const line = hashLine(username, password, DEFAULT_ITERATIONS)
  if (create) return write(file, [line])
  const lines = readLines(file)
  const at = lines.findIndex((old) => userOf(old) === username)
  if (at < 0) lines.push(line)
  else lines[at] = line
  write(file, lines)
}

function readLines(file: string): string[] {
  if (!existsSync(file)) fail(`${file} does not exist; use -c to make a new password file`)
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean)
  } catch (error) {
    return fail(`cannot read ${file}: ${messageOf(error)}`)
  }
}

/** The user name of a `user:hash` line, as Mosquitto reads it (blanks around it ignored). */
function userOf(line: string): string | undefined {
  const colon = line.indexOf(':')
  return colon < 0 ? undefined : line.slice(0, colon).trim()
}

/**
 * -U: every `user:password` line with its password hashed. mosquitto_passwd would hash a hash
 * again, and lock the user out; we refuse a file that is already hashed.
 */
function hashAll(file: string, lines: string[]): string[] {
  return lines.map((line, index) => {
    const user = userOf(line)
    const password = line.slice(line.indexOf(':') + 1).trim()
    if (!user || password === '')
      fail(`${file}:${index + 1}: not a user:password line; fix it and run -U again`)
    if (/^\$[67]\$/.test(password))
      fail(
        `${file}:${index + 1}: the password of ${user} is already hashed; -U would hash it again`,
      )
    return hashLine(user, password)
  })
}

function write(file: string, lines: string[]): void {
  try {
    // Owner only: the hashes are slow to crack, not impossible.
    writeFileSync(file, lines.map((line) => `${line}\n`).join(''), { mode: 0o600 })
  } catch (error) {
    fail(`cannot write ${file}: ${messageOf(error)}`)
  }
}

/** Ask twice, without echo on a terminal, as mosquitto_passwd does. */
async function askPassword(): Promise<string> {
  const tty = process.stdin.isTTY === true
  // Under the stage's lifeline (lib/cli.ts) standard input does not keep a program alive; here
  // the program waits for what is typed.
  ;(process.stdin as NodeJS.ReadStream & { ref?: () => void }).ref?.()
  const lines = createInterface({ input: process.stdin, output: process.stderr, terminal: tty })
  // The prompts are shown; nothing of what is typed is. Lines piped in wait in the iterator.
  const answers = lines[Symbol.asyncIterator]()
  const prompt = async (text: string) => {
    process.stderr.write(text)
    const answer = await answers.next()
    process.stderr.write('\n')
    return answer.done ? '' : answer.value
  }
  ;(lines as unknown as { _writeToOutput(text: string): void })._writeToOutput = () => undefined
  const first = await prompt('Password: ')
  const second = await prompt('Reenter password: ')
  lines.close()
  if (first !== second) fail('the two passwords differ; run the command again')
  if (first === '') fail('the password is empty; type one, or give it with -b')
  return first
}

await main()
