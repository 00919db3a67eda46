// docs/conformance.md from the conformance runs: each conformance file owns one part of the page,
// between a BEGIN and an END marker, and writes it from its results (one row per rule, one column
// per broker). A run checks its part against the committed page; `npm run conformance`
// (CONFORMANCE_WRITE=1) rewrites the parts instead. A cell of a rule that did not run here (a
// broker not installed, a run filtered with -t) is kept from the committed page.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from '../../lib/build-cache.ts'
import { mosquittoVersion } from '../helpers/mosquitto.ts'
import {
  targetsFor,
  type Departures,
  type Results,
  type Rule,
  type Target,
} from './conformance-probe.ts'
import type { ProtocolVersion } from '../helpers/raw-client.ts'
import { redisVersion } from '../helpers/redis-server.ts'

const PAGE = join(ROOT, 'docs', 'conformance.md')
const WRITE = process.env.CONFORMANCE_WRITE === '1'

interface PagePart {
  /** The marker's name: `<!-- BEGIN <name> ... -->`. */
  name: string
  /** The test file that writes it. */
  file: string
  rules: Rule[]
  departures: Departures
  results: Results
  /** Whether the table has a column for the article's claim each rule proves. */
  claims: boolean
  /** What the rules speak: it decides the brokers, so the columns. */
  protocolVersion: ProtocolVersion
}

const begin = (part: PagePart) =>
  `<!-- BEGIN ${part.name}: written by npm run conformance from ${part.file}; change that file, ` +
  `not this part -->`
const end = (part: PagePart) => `<!-- END ${part.name} -->`

/** The test that checks (or, under npm run conformance, writes) `part` of docs/conformance.md. */
export function pagePartTest(part: PagePart): void {
  describe('docs/conformance.md', () => {
    it(`shows what ${part.file} found (npm run conformance rewrites it)`, () => {
      const page = existsSync(PAGE) ? readFileSync(PAGE, 'utf8') : ''
      const start = page.indexOf(begin(part))
      const stop = page.indexOf(end(part))
      if (start < 0 || stop < start)
        throw new Error(
          `docs/conformance.md has no part between "${begin(part)}" and "${end(part)}": put the ` +
            `two markers back where the table goes, then npm run conformance`,
        )
      const committed = page.slice(start + begin(part).length, stop)
      const { text, notRun } = renderPart(part, committed)
      if (WRITE) {
        if (notRun.length > 0)
          throw new Error(
            'npm run conformance needs every test to run on every broker; not run: ' +
              notRun.join('; '),
          )
        writeFileSync(PAGE, page.slice(0, start + begin(part).length) + text + page.slice(stop))
        return
      }
      expect(
        committed,
        'docs/conformance.md does not show what the tests found: run npm run conformance',
      ).toBe(text)
    })
  })
}

/** A cell: ✓, ✓ with the fix that keeps the rule, or ✗ and what the broker does instead. */
function cell(
  part: PagePart,
  target: Target,
  rule: Rule,
  committed: string | undefined,
): string | undefined {
  const passed = part.results.get(`${target.key}:${rule.id}`)
  if (passed === undefined) return committed
  if (!passed)
    return `✗ ${part.departures[target.key]?.[rule.id]?.note ?? 'failed in the last run'}`
  const fix = part.departures.aedes?.[rule.id]?.fix
  // Brokers on Redis are bundled brokers, with the same fixes.
  return (target.key === 'bundled' || target.key === 'cluster') && fix ? `✓ with \`${fix}\`` : '✓'
}

function renderPart(part: PagePart, committed: string): { text: string; notRun: string[] } {
  const targets = targetsFor(part.protocolVersion)
  // A committed row's cells, by its behaviour column: the one before the brokers' columns.
  const committedRows = new Map(
    committed
      .split('\n')
      .filter((line) => line.startsWith('| §'))
      .map((line) => {
        const cells = line.split(' | ').map((c) => c.replace(/^\| |\s*\|$/g, ''))
        return [cells[cells.length - targets.length - 1], cells.slice(-targets.length)] as const
      }),
  )
  const notRun: string[] = []
  const rows = part.rules.map((rule) => {
    const cells = targets.map((target, i) => {
      const value = cell(part, target, rule, committedRows.get(rule.says)?.[i])
      if (value === undefined) notRun.push(`${target.column}: ${rule.says}`)
      return value ?? 'not run'
    })
    const row = [rule.section, ...(part.claims ? [rule.claim ?? ''] : []), rule.says, ...cells]
    return `| ${row.join(' | ')} |`
  })
  // The bundled broker's departures, each with why it is left: a fix would cost more than a demo
  // gains.
  const left = part.rules.flatMap((rule) => {
    const departure = part.departures.bundled?.[rule.id]
    return departure
      ? [
          `- ${rule.section}: ${rule.says}. The bundled broker ${departure.note}` +
            `${departure.why ? `: ${departure.why}` : ''}.`,
        ]
      : []
  })
  const heads = [
    'section',
    ...(part.claims ? ['claim'] : []),
    'behaviour',
    ...targets.map((t) => t.column),
  ]
  const aedes = JSON.parse(
    readFileSync(join(ROOT, 'node_modules', 'aedes', 'package.json'), 'utf8'),
  ).version as string
  const ranMosquitto = [...part.results.keys()].some((key) => key.startsWith('mosquitto:'))
  const mosquitto =
    (ranMosquitto ? mosquittoVersion() : undefined) ??
    committed.match(/^- Mosquitto: (.+)$/m)?.[1] ??
    'not run'
  const ranCluster = [...part.results.keys()].some((key) => key.startsWith('cluster:'))
  const redis =
    (ranCluster ? redisVersion() : undefined) ??
    committed.match(/^- Redis: (.+)$/m)?.[1] ??
    'not run'
  const redisLine = targets.some((t) => t.key === 'cluster') ? `- Redis: ${redis}\n` : ''
  const text = `
| ${heads.join(' | ')} |
|${heads.map((h) => '-'.repeat(h.length + 2)).join('|')}|
${rows.join('\n')}
${left.length ? `\nDepartures of the bundled broker left as they are:\n\n${left.join('\n')}\n` : ''}
Tested with:

- aedes: ${aedes}
- Mosquitto: ${mosquitto}
${redisLine}`
  return { text, notRun }
}
