// `npm run soak -- --rounds N`: the whole test suite N times in a row, then every test that failed at
// least once with how often. Flakiness is a bug: a test that fails one round in twenty fails a talk.
// Not part of `npm test`. Extra arguments after the flags go to vitest (a file, or -t <name>).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { $ } from 'zx'
import { fail, messageOf } from '../lib/cli.ts'
import { ROOT } from '../scenarios/stage.ts'

const { values, positionals } = (() => {
  try {
    return parseArgs({ options: { rounds: { type: 'string', default: '20' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true })
  } catch (error) {
    return fail(`${messageOf(error).split('. ')[0]}; see npm run soak -- --help`)
  }
})()
if (values.help) {
  console.log('usage: npm run soak -- [--rounds N] [vitest arguments]\n\nRun the test suite N times (default 20) and report the tests that failed, with how often.')
  process.exit(0)
}
const rounds = Number(values.rounds)
if (!Number.isInteger(rounds) || rounds < 1) fail(`--rounds must be a whole number of at least 1, not ${JSON.stringify(values.rounds)}`)

interface Report {
  numTotalTests: number
  testResults: { name: string; assertionResults: { fullName: string; status: string; failureMessages: string[] }[] }[]
}

const dir = mkdtempSync(join(tmpdir(), 'soak-'))
const failures = new Map<string, { count: number; first: string }>()
let tests = 0
const started = performance.now()
$.cwd = ROOT
$.verbose = false
try {
  for (let round = 1; round <= rounds; round++) {
    const output = join(dir, `round-${round}.json`)
    const run = await $`npx vitest run --reporter=json --outputFile=${output} ${positionals}`.nothrow()
    let report: Report
    try {
      report = JSON.parse(readFileSync(output, 'utf8')) as Report
    } catch {
      fail(`round ${round}: vitest wrote no report (exit code ${run.exitCode}): ${run.stderr.trim().split('\n').at(-1) ?? ''}`)
    }
    tests = report.numTotalTests
    let failed = 0
    for (const file of report.testResults) {
      for (const test of file.assertionResults.filter((t) => t.status === 'failed')) {
        failed++
        const name = `${relativeName(file.name)} > ${test.fullName}`
        const seen = failures.get(name) ?? { count: 0, first: (test.failureMessages[0] ?? '').split('\n')[0] }
        failures.set(name, { ...seen, count: seen.count + 1 })
      }
    }
    process.stderr.write(`round ${round}/${rounds}: ${failed ? `${failed} failed` : 'all passed'} (exit code ${run.exitCode})\n`)
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}

const minutes = ((performance.now() - started) / 60_000).toFixed(1)
console.log(`\n${rounds} rounds of ${tests} tests in ${minutes} min: ${failures.size === 0 ? 'no test failed' : `${failures.size} tests failed at least once`}`)
for (const [name, { count, first }] of [...failures].sort((a, b) => b[1].count - a[1].count)) {
  console.log(`  ${count}/${rounds}  ${name}\n        ${first}`)
}
process.exit(failures.size === 0 ? 0 : 1)

function relativeName(path: string): string {
  return path.startsWith(ROOT) ? path.slice(ROOT.length + 1) : path
}
