// Around a scenario (./stage.ts's Scenario: one experiment of the article, written once as steps):
// what it needs and how long it may take, how a play is set up (StageOptions: check() and the show
// each pass theirs), and what it records: the events that check mode asserts, the docs quote and
// ./view.ts renders, and the claims it demonstrated.
import { spawnSync } from 'node:child_process'
import { createServer } from 'node:net'
import type { RunningBroker } from '../../lib/broker/broker.ts'
import type { TraceEntry } from './trace.ts'

/**
 * The budget of a scenario that does not give one. Ours took 1 to 5 s each on the project's 2-core
 * development machine at rest (December 2026), and up to ten times as long with other test suites
 * beside them. A hung run fails sooner anyway, at the wait that hangs (./waiter.ts's HUNG_MS).
 */
const DEFAULT_BUDGET_S = 120

/** A scenario's budget in milliseconds. */
export function budgetMs(scenario: { budget?: number }): number {
  return (scenario.budget ?? DEFAULT_BUDGET_S) * 1000
}

export interface Needs {
  /**
   * Listeners the bundled broker must also serve: stage.wsUrl, stage.unixUrl (undefined on a broker
   * the stage did not start with them).
   */
  listeners?: ('ws' | 'unix')[]
  /**
   * Start no broker at all: the scenario runs broker processes of its own and points the stage at
   * each with useBroker().
   */
  none?: boolean
  /**
   * A program it runs that is not ours, and the line that says how to install it where it is
   * missing.
   */
  program?: { command: string; missing: string }
}

/** The line saying what `scenario` needs and this machine lacks, if anything. */
export function missingProgram(scenario: { needs?: Needs }): string | undefined {
  const program = scenario.needs?.program
  return program && spawnSync(program.command, ['--version']).error ? program.missing : undefined
}

/**
 * One thing that happened on stage, in order: what the docs quote (the lines), what a check
 * asserts, and what ./show.ts renders. `detail` and `marker` mark what is about the stage's own
 * proofs rather than the experiment: the audience sees them with --verbose only.
 */
export type Event =
  | { kind: 'step'; number: number; text: string }
  /**
   * A program started: the command a learner types, the client id the stage gave it with --id,
   * and whether it is a server whose log is for --verbose (see ./stage.ts's Backstage).
   */
  | { kind: 'command'; label: string; text: string; id?: string; background?: boolean }
  | { kind: 'say'; text: string; detail?: boolean }
  /** `detail`: a line that says nothing to a room (a command's chatter), shown with --verbose. */
  | {
      kind: 'line'
      label: string
      text: string
      stream: 'stdout' | 'stderr'
      marker?: boolean
      detail?: boolean
    }
  | { kind: 'ok'; claim?: string; text: string }
  /** The stage stopped a program: Ctrl-C (SIGINT), or a kill. */
  | { kind: 'stop'; label: string; signal: NodeJS.Signals; pid: number }
  | { kind: 'died'; label: string; text: string }

/** An expectation as the audience sees it once met: what it showed, the claim it demonstrates. */
export interface Expectation {
  /** The ID of the claim it demonstrates (docs/claims.md), where it demonstrates one. */
  claim?: string
  /** One sentence: what was seen. */
  says: string
}

export interface StageOptions {
  /** An existing broker to use instead of starting the bundled one (MQTT_URL). */
  url?: string
  /**
   * A bundled broker started by the caller, to share between runs: its client events are recorded,
   * and it is left running.
   */
  broker?: RunningBroker
  /** Put every topic under this prefix, to share a broker with others (see topic()). */
  topicPrefix?: string
  /** The scenario's needs (Scenario.needs); check() and show() pass them. */
  needs?: Needs
  /**
   * A Python with paho-mqtt: play each demo that has a twin in its python/ directory
   * (demos/x/python/ publisher.py for demos/x/publisher.ts) with this interpreter instead, with the
   * same flags.
   */
  python?: string
  /** How long one wait may last before the run fails as hung; HUNG_MS by default. */
  waitMs?: number
  /** Called with every event as it is recorded. */
  onEvent?: (event: Event) => void
  /**
   * The scenario played, for the trace's first entry (./trace.ts's PlayEntry); check() passes it.
   */
  scenario?: { name: string; title: string; steps: number }
  /**
   * Called with every entry of the trace (./trace.ts) as it is made, and again with a packet entry
   * each time it changes (a burst grows its count; a PUBLISH turns out to have reached nobody).
   */
  onTrace?: (entry: TraceEntry) => void
  /** Called before each step begins (to wait for Enter, say). */
  beforeStep?: (number: number, title: string) => Promise<void>
  /** Called while a wait lasts: at a few points in time, with what it is waiting for. */
  onSlow?: (label: string, what: string, ms: number) => void
  /**
   * Called when the play serves a page of its own (the discovery show's device cards), so that the
   * show can link it from the stage view.
   */
  onPage?: (title: string, url: string) => void
  /**
   * Mosquitto's program (`mosquitto`, or its path): a scenario that starts its broker from a
   * Mosquitto configuration file (security) starts Mosquitto with it, not the bundled broker.
   */
  mosquitto?: string
}

/** The claim IDs that a run demonstrated, each once, in the order they were first met. */
export function claimsMet(events: Event[]): string[] {
  return [...new Set(events.flatMap((e) => (e.kind === 'ok' && e.claim ? [e.claim] : [])))]
}

/** C1 < C2 < C10 < S1: the order of ../shared/article/CLAIMS.md. */
export function byClaimId(a: string, b: string): number {
  return a[0] === b[0] ? Number(a.slice(1)) - Number(b.slice(1)) : a < b ? -1 : 1
}

/**
 * A loopback port nothing listens on now, for a program that takes no port 0 (redis-server) or a
 * configuration file that names its listeners' ports.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}
