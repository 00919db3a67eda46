// One suite per scenario, so that each plays once on the bundled broker: to check what it proves,
// every docs block that quotes it, and that it leaves the broker as it found it (no retained
// message, no session), which is what lets it play again in front of an audience with the same
// output. Then it plays once more, as the article played it: on a Mosquitto of the file's own,
// under a topic prefix as on a broker shared with others, and with the Python programs
// (demos/<name>/python/, paho-mqtt) where the experiment has them. That one play proves two things:
// that what the scenario shows is MQTT, not a quirk of the bundled broker, and that the Python
// programs print what the TypeScript ones print. Where Mosquitto is not installed, the Python
// programs play on a bundled broker of their own; where paho-mqtt is not, the TypeScript programs
// play on Mosquitto.
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type RunningBroker } from '../../lib/broker/broker.ts'
import { check, type Scenario } from '../../scenarios/stage/stage.ts'
import { budgetMs, byClaimId, claimsMet, type Event } from '../../scenarios/stage/scenario.ts'
import { ROOT } from '../../lib/build-cache.ts'
import { allBlocks, normalise, printed } from '../docs/doc-blocks.ts'
import type { PacketRecord } from '../../lib/broker/record.ts'
import { mermaid } from '../../scenarios/stage/mermaid.ts'
import { packetText } from '../../scenarios/stage/packet-text.ts'
import type { PacketEntry, TraceEntry } from '../../scenarios/stage/trace.ts'
import {
  mosquittoPath,
  NOT_INSTALLED,
  retainedUnder,
  startMosquitto,
  type RunningMosquitto,
} from '../helpers/mosquitto.ts'
import { NO_PAHO, python } from '../helpers/python.ts'

/** What a play can leave on the bundled broker for the next one to find. */
interface Leftovers {
  retained: string[]
  /** Persistent sessions kept for clients, and their subscriptions. */
  sessions: number
  subscriptions: number
}

/**
 * Every topic the bundled broker holds a retained message for, and the persistent sessions it
 * keeps.
 */
async function leftovers(broker: RunningBroker): Promise<Leftovers> {
  // aedes' types leave out its persistence. The in-memory one streams the stored retained packets
  // and counts the sessions; aedes 1 wraps it in callbacks, aedes 2 in promises: this takes either.
  const { persistence } = broker.aedes as unknown as {
    persistence: {
      createRetainedStream(pattern: string): AsyncIterable<{ topic: string }>
      countOffline(
        done?: (error: Error | null, subscriptions: number, sessions: number) => void,
      ): Promise<{ subsCount: number; clientsCount: number }> | undefined
    }
  }
  const retained: string[] = []
  for await (const packet of persistence.createRetainedStream('#')) retained.push(packet.topic)
  const counted = await new Promise<{ subsCount: number; clientsCount: number }>(
    (resolve, reject) => {
      persistence
        .countOffline((error, subsCount, clientsCount) =>
          error ? reject(error) : resolve({ subsCount, clientsCount }),
        )
        ?.then(resolve, reject)
    },
  )
  return {
    retained: retained.sort(),
    sessions: counted.clientsCount,
    subscriptions: counted.subsCount,
  }
}

/**
 * What each demo program printed, by label (processes run side by side, so only each one's order is
 * fixed), with ports normalised: a page or a tap listens on a new free port each run.
 */
function byLabel(events: Event[]): Record<string, string> {
  const lines: Record<string, string[]> = {}
  for (const e of events)
    if (e.kind === 'line' && e.label !== 'broker') (lines[e.label] ??= []).push(e.text)
  return Object.fromEntries(
    Object.entries(lines).map(([label, printed]) => [label, normalise(printed.join('\n'))]),
  )
}

/**
 * A promise's outcome, to be read (and its failure thrown) by the test it belongs to, not by the
 * hook that awaited it.
 */
type Outcome<T> = () => T

async function outcome<T>(promise: Promise<T>): Promise<Outcome<T>> {
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
function uniquePrefix(): string {
  return `mqtt-by-example-${Math.random().toString(16).slice(2, 10)}/`
}

/** Any prefix uniquePrefix() makes. */
const ANY_UNIQUE_PREFIX = /mqtt-by-example-[0-9a-f]{1,8}\//g

interface Round {
  events: Event[]
  /** The topics it left a retained message on (under its prefix, if it had one). */
  retained: string[]
}

/**
 * Play `scenario` on `url`, under a topic prefix of its own unless `prefixed` is false (then nobody
 * else may use that broker), with the Python programs if `python` is given, and see what retained
 * messages it left.
 */
async function playOn(
  scenario: Scenario,
  url: string,
  prefixed = true,
  python?: string,
): Promise<Round> {
  const topicPrefix = prefixed ? uniquePrefix() : ''
  const events = await check(scenario, { url, topicPrefix, python })
  return {
    events,
    retained: await retainedUnder(url, `${topicPrefix}#`, `${topicPrefix}mqtt-by-example/marker`),
  }
}

/**
 * How long a hook or test that plays `scenario` may take: its budget, and time to start and stop
 * brokers; the play's own budget fails first, naming its step.
 */
export const playTimeout = (scenario: Scenario) => budgetMs(scenario) + 15_000

interface SuiteOptions {
  /** Asserts more of the events of the play on the bundled broker. */
  verify?: (events: Event[]) => void
  /**
   * What differs between two runs beyond ports and random client ids (see doc-blocks.ts normalise),
   * blanked for the docs.
   */
  normalise?: (text: string) => string
  /**
   * Its plays on Mosquitto, the claims each ticks and what more `verify` asserts of it; default one
   * under a prefix, ticking the claims of the bundled broker. One without a prefix gets a Mosquitto
   * of its own.
   */
  onMosquitto?: { prefixed: boolean; claims: string[]; verify?: (events: Event[]) => void }[]
}

/**
 * The suite of `scenario`: a test titled `title` that checks the claims it ticks (in order) and
 * whatever `verify` asserts of its events; one per docs block quoting it; that it leaves nothing
 * behind; and its play on Mosquitto.
 */
export function scenarioSuite(
  scenario: Scenario,
  title: string,
  claims: string[],
  options: SuiteOptions = {},
): void {
  describe(`scenario ${scenario.name}`, () => {
    const rounds = options.onMosquitto ?? [{ prefixed: true, claims }]
    let broker: RunningBroker
    const mosquittos: Promise<RunningMosquitto>[] = []
    let dir: string | undefined
    let before: Leftovers
    let first: Outcome<Event[]>
    /** The trace of the first play, each entry once, and what the broker recorded meanwhile. */
    const trace: TraceEntry[] = []
    const records: PacketRecord[] = []
    const onMosquitto: Outcome<Round>[] = []
    const hasPython = existsSync(join(ROOT, 'demos', scenario.name, 'python'))
    /**
     * The Python that plays the second round, if the experiment has Python programs and paho-mqtt
     * is installed.
     */
    const withPython = hasPython ? python : undefined
    let pythonBroker: RunningBroker | undefined
    /**
     * The Python programs' play on a bundled broker of their own, where Mosquitto is not installed.
     */
    let pythonAlone: Outcome<Event[]> | undefined
    beforeAll(async () => {
      // The listeners the scenario needs beyond TCP, as the stage would start them itself.
      const listeners = scenario.needs?.listeners ?? []
      if (listeners.includes('unix')) dir = await mkdtemp(join(tmpdir(), 'scenario-suite-'))
      broker = await startBroker({
        port: 0,
        wsPort: listeners.includes('ws') ? 0 : undefined,
        unixPath: dir && join(dir, 'broker.sock'),
      })
      before = await leftovers(broker)
      const stopRecording = broker.onPacket((record) => records.push(record))
      first = await outcome(check(scenario, { broker, onTrace: collect(trace) }))
      stopRecording()
    }, playTimeout(scenario))
    // After it, not beside it: two plays at once in one file would each run slower than the
    // scenario's timings allow on a busy machine (the wire experiment's ping must come after the
    // publish, say).
    // biome-ignore lint/suspicious/noDuplicateTestHooks: it runs after the first, on purpose
    beforeAll(async () => {
      if (!mosquittoPath) {
        if (!withPython) return
        pythonBroker = await startBroker({
          port: 0,
          wsPort: scenario.needs?.listeners?.includes('ws') ? 0 : undefined,
        })
        pythonAlone = await outcome(check(scenario, { broker: pythonBroker, python: withPython }))
        return
      }
      // Rounds under a prefix share one Mosquitto, as they would a public broker; one without a
      // prefix has one to itself.
      let shared: Promise<RunningMosquitto> | undefined
      const start = () => {
        const mosquitto = startMosquitto()
        mosquittos.push(mosquitto)
        return mosquitto
      }
      for (const round of rounds) {
        onMosquitto.push(
          await outcome(
            (async () => {
              const mosquitto = await (round.prefixed ? (shared ??= start()) : start())
              return playOn(scenario, mosquitto.url, round.prefixed, withPython)
            })(),
          ),
        )
      }
    }, playTimeout(scenario) * rounds.length)
    afterAll(async () => {
      const started = await Promise.allSettled(mosquittos)
      await Promise.all([
        broker?.close(),
        pythonBroker?.close(),
        ...started.map((m) => (m.status === 'fulfilled' ? m.value.close() : undefined)),
      ])
      if (dir) await rm(dir, { recursive: true, force: true })
    })

    it(title, () => {
      expect(claimsMet(first())).toEqual(claims)
      options.verify?.(first())
    })

    it("the README's table lists the claims its show ticks", () => {
      const row = readFileSync(join(ROOT, 'README.md'), 'utf8')
        .split('\n')
        .find((l) => l.startsWith(`| \`npm run demo:${scenario.name}\` |`))
      expect(row, `a row for demo:${scenario.name} in README.md`).toBeDefined()
      // "C1, C5–C7, S1": ranges written with an en dash.
      const listed = row!
        .split('|')[3]
        .split(',')
        .flatMap((item) => {
          const [from, to] = item.trim().split('–')
          if (!to) return [from]
          return Array.from(
            { length: Number(to.slice(1)) - Number(from.slice(1)) + 1 },
            (_, i) => `${from[0]}${Number(from.slice(1)) + i}`,
          )
        })
      expect(listed.sort(byClaimId)).toEqual([...claims].sort(byClaimId))
    })

    it.skipIf(scenario.needs?.none)(
      'traces every packet the broker recorded, in order, between lifelines the show labels',
      () => {
        first()
        const lifelines = new Map(
          trace.flatMap((e) => (e.kind === 'lifeline' ? [[e.id, e] as const] : [])),
        )
        const labelOf = (id: string) => lifelines.get(id)!.label
        // Every program's lifeline is named with its label in the show, or is the stage's own.
        const labels = new Set(first().flatMap((e) => (e.kind === 'command' ? [e.label] : [])))
        for (const l of lifelines.values())
          if (l.role === 'program') expect(l.stage || labels.has(l.label), l.label).toBe(true)
        // Client id -> label, as the trace names each client.
        const byClient = new Map<string, string>()
        for (const l of lifelines.values()) if (l.clientId) byClient.set(l.clientId, l.label)
        // Per arrow, the packets in the order they went: what the broker recorded, and what the
        // trace draws (an arrow folding a burst stands for `count` packets).
        const arrows = (pairs: [string, string][]) => {
          const by = new Map<string, string[]>()
          for (const [arrow, text] of pairs) by.set(arrow, [...(by.get(arrow) ?? []), text])
          return Object.fromEntries([...by].sort(([a], [b]) => (a < b ? -1 : 1)))
        }
        const recorded = arrows(
          records
            .filter((r) => r.dir !== 'act')
            .map((r) => {
              const client = byClient.get(r.client) ?? `(unnamed ${r.client})`
              const arrow = r.dir === 'in' ? `${client}>broker` : `broker>${client}`
              return [arrow, packetText(r.packet)]
            }),
        )
        const drawn = arrows(
          trace
            .filter((e): e is PacketEntry => e.kind === 'packet' && e.from !== e.to)
            .flatMap((e) =>
              Array.from(
                { length: e.count },
                () => [`${labelOf(e.from)}>${labelOf(e.to)}`, e.text] as [string, string],
              ),
            ),
        )
        expect(drawn).toEqual(recorded)
        const wills = records.filter((r) => r.act === 'will').length
        expect(trace.filter((e) => e.kind === 'packet' && e.act === 'will').length).toBe(wills)
      },
    )

    traceSuite(scenario, () => first(), trace)

    quotingSuite(scenario, () => first(), options.normalise ?? normalise)

    it(
      'leaves the broker as it found it, no retained message and no session, so that it plays ' +
        'again the same',
      async () => {
        first()
        expect(await leftovers(broker)).toEqual(before)
      },
    )

    if (hasPython) {
      const where = mosquittoPath
        ? 'on Mosquitto'
        : 'on a bundled broker of their own (Mosquitto is not installed)'
      it.skipIf(!python)(
        python
          ? `plays with the Python programs of demos/${scenario.name}/python/ (paho-mqtt) ` +
              `${where}, which print the same`
          : NO_PAHO,
        async () => {
          const played = mosquittoPath ? onMosquitto[0]!().events : pythonAlone!()
          // The labels whose programs have a Python twin: played in Python now, in TypeScript the
          // first time.
          const labels = (events: Event[], twin: (command: string) => boolean) =>
            [
              ...new Set(
                events.flatMap((e) => (e.kind === 'command' && twin(e.text) ? [e.label] : [])),
              ),
            ].sort()
          const inPython = labels(played, (command) =>
            /^python3 demos\/[^/]+\/python\//.test(command),
          )
          expect(inPython.length, 'programs played in Python').toBeGreaterThan(0)
          expect(inPython).toEqual(
            labels(first(), (command) => {
              const script = /^npx tsx (demos\/[^/]+)\/([^/ ]+)\.ts\b/.exec(command)
              return (
                script !== null && existsSync(join(ROOT, script[1], 'python', `${script[2]}.py`))
              )
            }),
          )
          // The same lines; their order the scenario's own expectations checked as it played.
          // Beyond that, a few lines race (a message queued for a session against the SUBACK of its
          // subscription: paho subscribes sooner after the CONNACK than MQTT.js does). The stage's
          // markers are left out: whether a program that a proof did not wait for saw one before it
          // was stopped races. So are what differs from broker to broker: the topic prefix of a
          // play on Mosquitto, and the version a broker gives on $SYS/broker/version.
          const version = /^(\$SYS\/broker\/version) .+ \(retained\)$/gm
          const comparable = (text: string) =>
            text
              .replace(ANY_UNIQUE_PREFIX, '')
              .replace(version, '$1 <version> (retained)')
              .split('\n')
              .filter((line) => !/ marker-\d+$/.test(line))
              .sort()
          const sorted = (events: Event[]) =>
            Object.fromEntries(
              Object.entries(byLabel(events))
                .filter(([label]) => inPython.includes(label))
                .map(([label, text]) => [label, comparable(text)]),
            )
          expect(sorted(played)).toEqual(sorted(first()))
          if (pythonBroker) expect(await leftovers(pythonBroker)).toEqual(before)
        },
      )
    }

    for (const [i, round] of rounds.entries()) {
      const ids = [...round.claims].sort(byClaimId).join(', ')
      const where = round.prefixed
        ? 'under a topic prefix of its own, and leaves no retained message under it'
        : "with the article's topics, alone on it, and leaves no retained message"
      const programs = withPython ? ', with the Python programs,' : ''
      it.skipIf(!mosquittoPath)(
        mosquittoPath ? `${ids}: plays on Mosquitto${programs} ${where}` : NOT_INSTALLED,
        () => {
          const { events, retained } = onMosquitto[i]!()
          expect(claimsMet(events)).toEqual(round.claims)
          round.verify?.(events)
          expect(retained).toEqual([])
        },
      )
    }
  })
}

/** A StageOptions.onTrace that keeps each entry of the trace once in `trace`, in order. */
export function collect(trace: TraceEntry[]): (entry: TraceEntry) => void {
  const seen = new Set<TraceEntry>()
  return (entry) => {
    if (seen.has(entry)) return
    seen.add(entry)
    trace.push(entry)
  }
}

/**
 * One test per docs block that quotes what a program of `scenario` prints: the block equals what it
 * printed in the play `first`, in the steps the block names, once `blank` has made both stable.
 */
export function quotingSuite(
  scenario: Scenario,
  first: () => Event[],
  blank: (text: string) => string = normalise,
): void {
  const quoting = allBlocks.filter((b) => b.output?.scenario === scenario.name)
  it.each(
    quoting.map((b) => ({
      where: `${b.page}:${b.line}`,
      label: b.output!.label,
      steps: b.output!.steps,
      body: b.body,
    })),
  )('$where quotes what $label prints', ({ label, steps, body }) => {
    expect(blank(body)).toBe(blank(printed(first(), label, steps)))
  })
}

/**
 * What every play's trace must hold, checked on a play already made (`first`, whose trace is
 * `trace`, each entry once): the steps Scenario.steps says, one lifeline per broker process it
 * started with the packets of each, and every docs diagram of the scenario drawn from it.
 */
export function traceSuite(scenario: Scenario, first: () => Event[], trace: TraceEntry[]): void {
  it(`plays the ${scenario.steps} steps its Scenario.steps says, and traces them`, () => {
    const played = first().filter((e) => e.kind === 'step')
    expect(played.map((e) => e.number)).toEqual(
      Array.from({ length: scenario.steps }, (_, i) => i + 1),
    )
    expect(trace[0]).toMatchObject({ kind: 'play', name: scenario.name, steps: scenario.steps })
    expect(trace.filter((e) => e.kind === 'step').length).toBe(scenario.steps)
    expect(trace.at(-1)).toMatchObject({ kind: 'result', ok: true })
  })

  // Only a scenario that starts broker processes of its own has them to draw.
  if (scenario.needs?.none)
    it('draws a lifeline per broker process it starts, with the packets of each', () => {
      const brokers = trace.flatMap((e) =>
        e.kind === 'lifeline' && e.role === 'broker' ? [e.id] : [],
      )
      const started = first().filter(
        (e) => e.kind === 'command' && e.text.startsWith('npx tsx lib/broker/main.ts'),
      )
      expect(brokers.length).toBe(started.length)
      // Those that ran until the stage stopped them (one refused at its start saw nothing).
      const stopped = trace.flatMap((e) =>
        e.kind === 'end-of-life' && e.how !== 'exit' && brokers.includes(e.id) ? [e.id] : [],
      )
      expect(stopped.length).toBeGreaterThan(0)
      for (const broker of stopped)
        expect(
          trace.some((e) => e.kind === 'packet' && (e.from === broker || e.to === broker)),
          `packets of ${broker}`,
        ).toBe(true)
    })

  const drawing = allBlocks.filter((b) => b.diagram?.scenario === scenario.name)
  it.each(drawing.map((b) => ({ where: `${b.page}:${b.line}`, spec: b.diagram!, body: b.body })))(
    '$where draws what the play traced (npm run diagrams rewrites it)',
    ({ spec, body }) => {
      first()
      expect(body).toBe(mermaid(trace, spec))
    },
  )
}
