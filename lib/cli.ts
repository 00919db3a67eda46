// How every program of this project ends when something is wrong: one line on stderr that says what
// happened and what to do, and exit code 1. Never a stack trace: a learner reads the first line only.
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

let installed = false

/** Turn any error that nothing caught into one line and exit 1 (called once by every program). */
export function failOnUncaughtErrors(): void {
  if (installed) return
  installed = true
  process.on('uncaughtException', (error) => fail(messageOf(error)))
  process.on('unhandledRejection', (error) => fail(messageOf(error)))
}

/** Whether this module is the program that node was asked to run (`node --import tsx file.ts`). */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1]
  return script !== undefined && pathToFileURL(resolve(script)).href === moduleUrl
}
