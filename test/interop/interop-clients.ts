// What the interop tests (test/interop/interop.test.ts, test/experiments/mqtt5.test.ts) start: our
// demo programs, pointed at a broker, and programs that are not ours (Mosquitto's clients, Python),
// run as in a shell session from the repository. Whatever a test left running, having failed
// halfway, is stopped after it.
import { afterEach } from 'vitest'
import { $, type ProcessOutput } from 'zx'
import { HUNG_MS } from '../../scenarios/stage/waiter.ts'
import { ROOT } from '../../lib/build-cache.ts'
import { Program, start } from '../helpers/processes.ts'

interface InteropClients {
  /** Start one of our demo programs with `env()` and keep it running. */
  ours(script: string, args?: string[]): Program
  /**
   * Start a program that is not ours and keep it running; exec, so that a signal reaches the
   * program itself.
   */
  theirs(command: string, args: string[]): Program
  /**
   * Run a program that is not ours to its end; it must exit 0 (zx fails with its exit code and
   * stderr otherwise). SIGKILL if it hangs: mosquitto_sub can hang in its SIGTERM handler.
   */
  runToEnd(command: string, args: string[]): Promise<ProcessOutput>
}

/**
 * The clients of one test file; call it at the file's (or a describe's) top level, where it
 * registers its afterEach.
 */
export function interopClients(env: () => NodeJS.ProcessEnv): InteropClients {
  const sh = $({ quiet: true, cwd: ROOT })
  const running: Program[] = []
  afterEach(async () => {
    await Promise.all(
      running.splice(0).map((program) => {
        program.child.kill('SIGKILL')
        return program.finish().catch(() => undefined)
      }),
    )
  })
  const keep = (program: Program) => {
    running.push(program)
    return program
  }
  return {
    ours: (script, args = []) => keep(start(script, args, env())),
    theirs: (command, args) =>
      keep(
        new Program(
          sh({ nothrow: true, stdio: ['ignore', 'pipe', 'pipe'] })`exec ${command} ${args}`.child!,
          `${command} ${args.join(' ')}`,
        ),
      ),
    runToEnd: (command, args) =>
      sh({ stdio: ['ignore', 'pipe', 'pipe'] })`${command} ${args}`.timeout(HUNG_MS, 'SIGKILL'),
  }
}
