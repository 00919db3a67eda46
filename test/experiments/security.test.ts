// The security experiment, played by the same scenario as `npm run demo:security`, in check mode:
// a broker started as a process from demos/security/mosquitto.conf, then mosquitto-tls.conf, with
// a password file, an ACL and certificates made on the spot. It plays on the bundled broker and on
// Mosquitto with the same files, the second time with the Python programs too, and the programs
// print the same lines on both. The docs quote the bundled broker's play, and its trace is held to
// what every play's is (traceSuite).
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { $ } from 'zx'
import { ROOT } from '../../lib/build-cache.ts'
import { security } from '../../scenarios/security.ts'
import { check } from '../../scenarios/stage/stage.ts'
import type { TraceEntry } from '../../scenarios/stage/trace.ts'
import { claimsMet, missingProgram, type Event } from '../../scenarios/stage/scenario.ts'
import { normalise, printed } from '../docs/doc-blocks.ts'
import { mosquittoPath, NOT_INSTALLED } from '../helpers/mosquitto.ts'
import { expectOneLineError, runScript } from '../helpers/processes.ts'
import { NO_PAHO, python } from '../helpers/python.ts'
import { collect, playTimeout, quotingSuite, traceSuite } from './scenario-suite.ts'

/** Where openssl is missing, the line that says so: the scenario makes its certificates with it. */
const noOpenssl = missingProgram(security)

/**
 * Ports as normalise() numbers them, those of localhost too: the scenario's listeners and taps
 * take free ports.
 */
const blank = (text: string) => normalise(text.replace(/localhost:(\d+)/g, '127.0.0.1:$1'))

/**
 * What each program printed, by label, blanked: the same whichever broker it played on and in
 * whichever language, but for the TLS records the tap shows, which are new bytes every time.
 */
function byLabel(events: Event[]): Record<string, string> {
  const labels = new Set(
    events.flatMap((e) =>
      e.kind === 'line' && !['broker', 'passwd', 'openssl'].includes(e.label) ? [e.label] : [],
    ),
  )
  const readable = (text: string) =>
    text
      .split('\n')
      .filter((line) => !/ {2}not MQTT /.test(line))
      .join('\n')
  return Object.fromEntries(
    [...labels].map((label) => [label, readable(blank(printed(events, label)))]),
  )
}

/** A promise's outcome, read (and its failure thrown) by the test that needs it. */
async function outcome<T>(promise: Promise<T>): Promise<() => T> {
  try {
    const value = await promise
    return () => value
  } catch (error) {
    return () => {
      throw error
    }
  }
}

describe.skipIf(noOpenssl)(noOpenssl ?? 'scenario security', () => {
  let bundled: () => Event[]
  const trace: TraceEntry[] = []
  let onMosquitto: (() => Event[]) | undefined
  let inPython: (() => Event[]) | undefined
  beforeAll(async () => {
    // One after the other: side by side, each would run slower than its waits allow on a busy
    // machine.
    bundled = await outcome(check(security, { onTrace: collect(trace) }))
    if (mosquittoPath) {
      onMosquitto = await outcome(check(security, { mosquitto: mosquittoPath }))
      if (python) inPython = await outcome(check(security, { mosquitto: mosquittoPath, python }))
    }
  }, playTimeout(security) * 3)

  it('plays on the bundled broker started from demos/security/mosquitto.conf', () => {
    expect(claimsMet(bundled())).toEqual([])
  })

  traceSuite(security, () => bundled(), trace)

  it(
    'traces each connection refused in its TLS handshake, before any MQTT packet, from the ' +
      'program the stage started for it to the broker, in its step',
    () => {
      bundled()
      const labels = new Map(
        trace.flatMap((e) => (e.kind === 'lifeline' ? [[e.id, e.label] as const] : [])),
      )
      // Each refusal's program, whose lifeline was made in the same step, and its step.
      let step = 0
      const madeIn = new Map<string, number>()
      const refusals: string[] = []
      for (const e of trace) {
        if (e.kind === 'step') step = e.number
        else if (e.kind === 'lifeline') madeIn.set(e.id, step)
        else if (e.kind === 'refusal')
          refusals.push(
            `step ${step}: ${labels.get(e.from)} (of step ${madeIn.get(e.from)}) -> ` +
              `${labels.get(e.to)}: ${e.reason}`,
          )
      }
      expect(refusals).toEqual([
        'step 10: alice (of step 10) -> broker: TLS handshake failed: the client hung up',
        'step 10: by-address (of step 10) -> broker: TLS handshake failed: the client hung up',
        'step 10: plain (of step 10) -> broker: not TLS',
        'step 12: no-certificate (of step 12) -> broker: no client certificate',
      ])
      // Where the broker refused it, its record came before the program's end: the tick that
      // proves the refusal stands beside it.
      for (const program of ['plain', 'no-certificate']) {
        const refusal = trace.find((e) => e.kind === 'refusal' && labels.get(e.from) === program)
        const after = trace.indexOf(refusal!)
        const tick = trace.slice(after).find((e) => e.kind === 'tick')
        expect(tick, program).toMatchObject({ after: (refusal as { seq: number }).seq })
      }
    },
  )

  it.skipIf(!mosquittoPath)(
    mosquittoPath ? 'plays on Mosquitto started from the same files' : NOT_INSTALLED,
    () => {
      const events = onMosquitto!()
      expect(claimsMet(events)).toEqual([])
      expect(events.some((e) => e.kind === 'command' && /^\S*mosquitto -c /.test(e.text))).toBe(
        true,
      )
    },
  )

  it.skipIf(!mosquittoPath)(
    mosquittoPath ? 'its programs print the same on both brokers' : NOT_INSTALLED,
    () => {
      expect(byLabel(bundled())).toEqual(byLabel(onMosquitto!()))
    },
  )

  it.skipIf(!mosquittoPath || !python)(
    !mosquittoPath
      ? NOT_INSTALLED
      : python
        ? 'plays with the Python programs of demos/security/python/ (paho-mqtt) on Mosquitto, ' +
          'which print the same'
        : NO_PAHO,
    () => {
      const played = inPython!()
      expect(
        played.some((e) => e.kind === 'command' && e.text.startsWith('python3 demos/security/')),
      ).toBe(true)
      expect(byLabel(played)).toEqual(byLabel(onMosquitto!()))
    },
  )

  // The docs quote the bundled broker's play; Mosquitto's prints the same (above).
  quotingSuite(security, () => bundled(), blank)

  it('a key made for another certificate is refused in one line, before connecting', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'security-keys-'))
    try {
      const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1']
      for (const name of ['alice', 'bob'])
        await $({ quiet: true })`openssl req -x509 ${key} -subj /CN=${name} -keyout ${join(
          dir,
          `${name}.key`,
        )} -out ${join(dir, `${name}.crt`)}`
      const args = ['--url', 'mqtts://localhost:1', '--username', 'alice']
      const mismatch = ['--cert', join(dir, 'alice.crt'), '--key', join(dir, 'bob.key')]
      expectOneLineError(
        await runScript('demos/security/publisher.ts', [...args, ...mismatch]),
        /^error: --key \S+bob\.key is not the key of --cert \S+alice\.crt; give the key made /,
      )
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it("the README's table lists it, with no claim of the article's", () => {
    const row = readFileSync(join(ROOT, 'README.md'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('| `npm run demo:security` |'))
    expect(row, 'a row for demo:security in README.md').toBeDefined()
    expect(row!.split('|')[3].trim()).toBe('')
  })
})
