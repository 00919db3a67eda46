// One suite per scenario, so that each plays once on the bundled broker: to check what it proves, every
// docs block that quotes it, and that it leaves the broker as it found it (no retained message, no
// session), which is what lets it play again in front of an audience with the same output. Then the
// same scenario plays on a Mosquitto of the file's own under a topic prefix, as on a broker shared
// with others: so what the scenario shows is MQTT, not a quirk of the bundled broker. Where the
// experiment has Python programs (demos/<name>/python/) and paho-mqtt is installed, they play it last,
// on a bundled broker of their own, and must print what the TypeScript ones print.
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type RunningBroker } from '../lib/broker.ts'
import { budgetMs, byClaimId, check, claimsMet, ROOT, type Event, type Scenario } from '../scenarios/stage.ts'
import { allBlocks, normalise, printed } from './doc-blocks.ts'
import { mosquittoPath, NOT_INSTALLED, retainedUnder, startMosquitto, type RunningMosquitto } from './mosquitto.ts'
import { NO_PAHO, python } from './python.ts'

/** What a play can leave on the bundled broker for the next one to find. */
export interface Leftovers {
  retained: string[]
  /** Persistent sessions kept for clients, and their subscriptions. */
  sessions: number
  subscriptions: number
}

/** Every topic the bundled broker holds a retained message for, and the persistent sessions it keeps. */
export async function leftovers(broker: RunningBroker): Promise<Leftovers> {
  // aedes' types leave out its persistence. The in-memory one streams the stored retained packets and
  // counts the sessions; aedes 1 wraps it in callbacks, aedes 2 in promises: this takes either.
  const { persistence } = broker.aedes as unknown as {
    persistence: {
      createRetainedStream(pattern: string): AsyncIterable<{ topic: string }>
      countOffline(done?: (error: Error | null, subscriptions: number, sessions: number) => void): Promise<{ subsCount: number; clientsCount: number }> | undefined
    }
  }
  const retained: string[] = []
  for await (const packet of persistence.createRetainedStream('#')) retained.push(packet.topic)
  const counted = await new Promise<{ subsCount: number; clientsCount: number }>((resolve, reject) => {
    persistence.countOffline((error, subsCount, clientsCount) => (error ? reject(error) : resolve({ subsCount, clientsCount })))?.then(resolve, reject)
  })
  return { retained: retained.sort(), sessions: counted.clientsCount, subscriptions: counted.subsCount }
}

/**
 * What each demo program printed, by label (processes run side by side, so only each one's order is
 * fixed), with ports normalised: a page or a tap listens on a new free port each run.
 */
function byLabel(events: Event[]): Record<string, string> {
  const lines: Record<string, string[]> = {}
  for (const e of events) if (e.kind === 'line' && e.label !== 'broker') (lines[e.label] ??= []).push(e.text)
  return Object.fromEntries(Object.entries(lines).map(([label, printed]) => [label, normalise(printed.join('\n'))]))
}

/** A promise's outcome, to be read (and its failure thrown) by the test it belongs to, not by the hook that awaited it. */
export type Outcome<T> = () => T

export async function outcome<T>(promise: Promise<T>): Promise<Outcome<T>> {
  try {
    const value = await promise
    return () => value
  } catch (error) {
    return () => {
      throw error
    }
  }
}

/** A topic prefix no other play on the same broker uses. */
export function uniquePrefix(): string {
  return `mqtt-by-example-${Math.random().toString(16).slice(2, 10)}/`
}

export interface Round {
  events: Event[]
  /** The topics it left a retained message on (under its prefix, if it had one). */
  retained: string[]
}

/**
 * Play `scenario` on `url`, under a topic prefix of its own unless `prefixed` is false (then nobody else
 * may use that broker), and see what retained messages it left.
 */
export async function playOn(scenario: Scenario, url: string, prefixed = true): Promise<Round> {
  const topicPrefix = prefixed ? uniquePrefix() : ''
  const events = await check(scenario, { url, topicPrefix })
  return { events, retained: await retainedUnder(url, `${topicPrefix}#`, `${topicPrefix}mqtt-by-example/marker`) }
}

/** How long a hook or test that plays `scenario` may take: its budget, and time to start and stop brokers; the play's own budget fails first, naming its step. */
export const playTimeout = (scenario: Scenario) => budgetMs(scenario) + 15_000

export interface SuiteOptions {
  /** Asserts more of the events of the play on the bundled broker. */
  verify?: (events: Event[]) => void
  /** What differs between two runs beyond ports and random client ids (see doc-blocks.ts normalise), blanked for the docs. */
  normalise?: (text: string) => string
  /**
   * Its plays on Mosquitto, the claims each ticks and what more `verify` asserts of it; default one
   * under a prefix, ticking the claims of the bundled broker. One without a prefix gets a Mosquitto of its own.
   */
  onMosquitto?: { prefixed: boolean; claims: string[]; verify?: (events: Event[]) => void }[]
}

/**
 * The suite of `scenario`: a test titled `title` that checks the claims it ticks (in order) and
 * whatever `verify` asserts of its events; one per docs block quoting it; that it leaves nothing
 * behind; and its play on Mosquitto.
 */
export function scenarioSuite(scenario: Scenario, title: string, claims: string[], options: SuiteOptions = {}): void {
  describe(`scenario ${scenario.name}`, () => {
    const rounds = options.onMosquitto ?? [{ prefixed: true, claims }]
    let broker: RunningBroker
    const mosquittos: Promise<RunningMosquitto>[] = []
    let dir: string | undefined
    let before: Leftovers
    let first: Outcome<Event[]>
    const onMosquitto: Outcome<Round>[] = []
    const hasPython = existsSync(join(ROOT, 'demos', scenario.name, 'python'))
    let pythonBroker: RunningBroker | undefined
    let withPython: Outcome<Event[]> | undefined
    beforeAll(async () => {
      // The listeners the scenario needs beyond TCP, as the stage would start them itself.
      const listeners = scenario.needs?.listeners ?? []
      if (listeners.includes('unix')) dir = await mkdtemp(join(tmpdir(), 'scenario-suite-'))
      broker = await startBroker({ port: 0, wsPort: listeners.includes('ws') ? 0 : undefined, unixPath: dir && join(dir, 'broker.sock') })
      before = await leftovers(broker)
      first = await outcome(check(scenario, { broker }))
    }, playTimeout(scenario))
    // After it, not beside it: two plays at once in one file would each run slower than the scenario's
    // timings allow on a busy machine (the wire experiment's ping must come after the publish, say).
    beforeAll(async () => {
      // Rounds under a prefix share one Mosquitto, as they would a public broker; one without a prefix has one to itself.
      let shared: Promise<RunningMosquitto> | undefined
      const start = () => {
        const mosquitto = startMosquitto()
        mosquittos.push(mosquitto)
        return mosquitto
      }
      for (const round of rounds) {
        onMosquitto.push(await outcome((async () => {
          if (!mosquittoPath) throw new Error(NOT_INSTALLED)
          const mosquitto = await (round.prefixed ? (shared ??= start()) : start())
          return playOn(scenario, mosquitto.url, round.prefixed)
        })()))
      }
    }, playTimeout(scenario) * rounds.length)
    beforeAll(async () => {
      if (!hasPython || !python) return
      pythonBroker = await startBroker({ port: 0, wsPort: scenario.needs?.listeners?.includes('ws') ? 0 : undefined })
      withPython = await outcome(check(scenario, { broker: pythonBroker, python }))
    }, playTimeout(scenario))
    afterAll(async () => {
      const started = await Promise.allSettled(mosquittos)
      await Promise.all([broker?.close(), pythonBroker?.close(), ...started.map((m) => (m.status === 'fulfilled' ? m.value.close() : undefined))])
      if (dir) await rm(dir, { recursive: true, force: true })
    })

    it(title, () => {
      expect(claimsMet(first())).toEqual(claims)
      options.verify?.(first())
    })

    it('the README\'s table lists the claims its show ticks', () => {
      const row = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').find((l) => l.startsWith(`| \`npm run demo:${scenario.name}\` |`))
      expect(row, `a row for demo:${scenario.name} in README.md`).toBeDefined()
      // "C1, C5–C7, S1": ranges written with an en dash.
      const listed = row!.split('|')[3].split(',').flatMap((item) => {
        const [from, to] = item.trim().split('–')
        if (!to) return [from]
        return Array.from({ length: Number(to.slice(1)) - Number(from.slice(1)) + 1 }, (_, i) => `${from[0]}${Number(from.slice(1)) + i}`)
      })
      expect(listed.sort(byClaimId)).toEqual([...claims].sort(byClaimId))
    })

    const quoting = allBlocks.filter((b) => b.output?.scenario === scenario.name)
    it.each(quoting.map((b) => ({ where: `${b.page}:${b.line}`, label: b.output!.label, steps: b.output!.steps, body: b.body })))(
      '$where quotes what $label prints', ({ label, steps, body }) => {
        const blank = options.normalise ?? normalise
        expect(blank(body)).toBe(blank(printed(first(), label, steps)))
      })

    it('leaves the broker as it found it, no retained message and no session, so that it plays again the same', async () => {
      first()
      expect(await leftovers(broker)).toEqual(before)
    })

    if (hasPython) {
      it.skipIf(!python)(python ? `plays with the Python programs of demos/${scenario.name}/python/ (paho-mqtt), which print the same` : NO_PAHO, async () => {
        const played = withPython!()
        const commands = played.flatMap((e) => (e.kind === 'command' ? [e.text] : []))
        expect(commands.filter((c) => c.startsWith('python3 ')).length, commands.join('\n')).toBeGreaterThan(0)
        // The same lines; their order the scenario's own expectations checked as it played. Beyond
        // that, a few lines race (a message queued for a session against the SUBACK of its
        // subscription: paho subscribes sooner after the CONNACK than MQTT.js does). The stage's markers
        // are left out: whether a program that a proof did not wait for saw one before it was stopped races.
        const sorted = (events: Event[]) => Object.fromEntries(Object.entries(byLabel(events))
          .map(([label, text]) => [label, text.split('\n').filter((line) => !/ marker-\d+$/.test(line)).sort()]))
        expect(sorted(played)).toEqual(sorted(first()))
        expect(await leftovers(pythonBroker!)).toEqual(before)
      })
    }

    for (const [i, round] of rounds.entries()) {
      const ids = [...round.claims].sort(byClaimId).join(', ')
      const where = round.prefixed ? 'under a topic prefix of its own, and leaves no retained message under it'
        : 'with the article\'s topics, alone on it, and leaves no retained message'
      it.skipIf(!mosquittoPath)(mosquittoPath ? `${ids}: plays on Mosquitto ${where}` : NOT_INSTALLED, () => {
        const { events, retained } = onMosquitto[i]!()
        expect(claimsMet(events)).toEqual(round.claims)
        round.verify?.(events)
        expect(retained).toEqual([])
      })
    }
  })
}
