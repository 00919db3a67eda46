// How every program of this project starts and ends. When something is wrong: one line on stderr
// that says what happened and what to do, and exit code 1; never a stack trace, a learner reads the
// first line only. And under the stage, a lifeline: a program ends when the stage that started it
// is gone, even if the stage was killed with SIGKILL and could not stop it.
import { writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

/** Print `error: <message>` and exit 1. */
export function fail(message: string): never {
  process.stderr.write(`error: ${message}\n`)
  process.exit(1)
}

/** The message of anything thrown, without a stack. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** Set by the stage for the programs it spawns, whose standard input is a pipe from the stage. */
export const LIFELINE = 'MQTT_BY_EXAMPLE_LIFELINE'

let started = false

/**
 * What every program does first: any error that nothing caught becomes one line and exit 1; and
 * when the stage started it (LIFELINE set), it exits once its standard input ends, which is when
 * the stage's end of the pipe closes, however the stage ended.
 */
export function startProgram(): void {
  if (started) return
  started = true
  process.on('uncaughtException', (error) => fail(messageOf(error)))
  process.on('unhandledRejection', (error) => fail(messageOf(error)))
  if (process.env[LIFELINE] === '1') {
    process.stdin
      .on('end', () => process.exit(1))
      .on('error', () => process.exit(1))
      .resume()
    // Listening must not keep a program alive that has finished its work (a publisher, say).
    ;(process.stdin as NodeJS.ReadStream & { unref?: () => void }).unref?.()
  }
}

/**
 * Whether this module is the program that node was asked to run: `npx tsx file.ts`, or its bundle
 * (scenarios/stage/bundle.ts), which keeps the source's path in argv[1].
 */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1]
  return script !== undefined && pathToFileURL(resolve(script)).href === moduleUrl
}

/**
 * Write this process's id to `file` (--pid-file), so that a learner can stop this program alone:
 * kill "$(cat FILE)".
 */
export function writePidFile(file: string): void {
  try {
    writeFileSync(file, `${process.pid}\n`)
  } catch (error) {
    fail(`cannot write --pid-file ${file}: ${messageOf(error)}`)
  }
}
