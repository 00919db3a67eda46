// `npm run soak -- --rounds N [--load]`: the whole test suite N times in a row, then every test
// that failed at least once with how often. Flakiness is a bug: a test that fails one round in
// twenty fails a talk. With --load, every core is kept busy beside the suite by busy loops that end
// by themselves, as on a CI machine shared with other jobs. Each round is timed against 40 starts
// of node with MQTT.js loaded, measured just before it under the same load, so that rounds on
// machines of different speeds compare, and without --load the CPU time it took is said (on Linux).
// `npm run suite-time` is one round: the suite's time, its ratio to those 40 starts, and its CPU
// time. Not part of `npm test`. Extra arguments after the flags go to vitest (a file, or -t
// <name>).
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { $, type ProcessPromise } from 'zx'
import { fail } from '../../lib/cli.ts'
import { parseFlags } from '../../lib/parse-flags.ts'
import { ROOT } from '../../lib/build-cache.ts'

const { values, positionals } = parseFlags(
  {
    invocation: 'npm run soak --',
    description: 'Run the test suite N times and report the tests that failed, with how often.',
    positionals: '[vitest arguments]',
  },
  {
    rounds: { type: 'string', arg: 'N', help: 'how many times to run the suite (default 20)' },
    load: { type: 'boolean', help: 'keep every core busy with busy loops beside the suite' },
  },
)
const rounds = Number(values.rounds ?? '20')
if (!Number.isInteger(rounds) || rounds < 1)
  fail(`--rounds must be a whole number of at least 1, not ${JSON.stringify(values.rounds)}`)

interface Report {
  numTotalTests: number
  testResults: {
    name: string
    status: string
    message?: string
    assertionResults: { fullName: string; status: string; failureMessages: string[] }[]
  }[]
}

/**
 * How long one busy loop spins before it ends by itself, should nobody stop it (the soak was
 * killed, say).
 */
const LOOP_S = 120
/** One busy loop: spin for the seconds it is given. */
const SPIN = 'const end = Date.now() + 1000 * Number(process.argv[1]); while (Date.now() < end);'

/** Busy loops on every core, each replaced as it ends, until stop(). */
function keepBusy(): { stop(): Promise<void> } {
  let stopped = false
  const loops = new Set<ProcessPromise>()
  const spin = () => {
    if (stopped) return
    const loop = $({
      nothrow: true,
      quiet: true,
    })`${process.execPath} -e ${SPIN} ${LOOP_S}`
    loops.add(loop)
    void loop.then(() => {
      loops.delete(loop)
      spin()
    })
  }
  for (let core = 0; core < availableParallelism(); core++) spin()
  // An exit that skips stop() (a failed round) ends them too.
  process.once('exit', () => {
    for (const loop of loops) loop.child?.kill('SIGKILL')
  })
  return {
    async stop() {
      stopped = true
      await Promise.all(
        [...loops].map(async (loop) => {
          loop.child?.kill('SIGKILL')
          await loop
        }),
      )
    },
  }
}

/**
 * Seconds for 40 starts of node with MQTT.js loaded, one after the other: this machine's speed,
 * now.
 */
async function fortyStarts(): Promise<number> {
  const started = performance.now()
  for (let i = 0; i < 40; i++) await $`${process.execPath} -e ${"require('mqtt')"}`
  return (performance.now() - started) / 1000
}

/**
 * CPU seconds (user and system) of this process's children that have ended, every one they waited
 * for included: the fields cutime and cstime of /proc/self/stat, on Linux; undefined elsewhere.
 */
function childrenCpuSeconds(): number | undefined {
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8')
      .replace(/^.*\) /s, '')
      .split(' ')
    // After the command's name: cutime and cstime are fields 16 and 17 of the line, in clock ticks
    // (100 a second on Linux).
    return (Number(fields[13]) + Number(fields[14])) / 100
  } catch {
    return undefined
  }
}

const dir = mkdtempSync(join(tmpdir(), 'soak-'))
/** Kept after the soak when a test failed. */
const messages = join(dir, 'failures.txt')
const failures = new Map<string, { count: number; first: string }>()
let tests = 0
const started = performance.now()
$.cwd = ROOT
$.verbose = false
const load = values.load ? keepBusy() : undefined
try {
  for (let round = 1; round <= rounds; round++) {
    const starts = await fortyStarts()
    const output = join(dir, `round-${round}.json`)
    const begun = performance.now()
    const cpuBefore = childrenCpuSeconds()
    const run =
      await $`npx vitest run --reporter=json --outputFile=${output} ${positionals}`.nothrow()
    const seconds = (performance.now() - begun) / 1000
    const cpuAfter = childrenCpuSeconds()
    // Busy loops that ended during the round would count too: under --load, no CPU time is said.
    const cpu =
      load || cpuBefore === undefined || cpuAfter === undefined
        ? ''
        : `, ${(cpuAfter - cpuBefore).toFixed(0)} s of CPU`
    let report: Report
    try {
      report = JSON.parse(readFileSync(output, 'utf8')) as Report
    } catch {
      fail(
        `round ${round}: vitest wrote no report (exit code ${run.exitCode}): ` +
          (run.stderr.trim().split('\n').at(-1) ?? ''),
      )
    }
    tests = report.numTotalTests
    let failed = 0
    const count = (name: string, message: string) => {
      failed++
      const seen = failures.get(name) ?? { count: 0, first: message.split('\n')[0] }
      failures.set(name, { ...seen, count: seen.count + 1 })
      // The whole message, which names what was awaited and what the processes were doing then.
      appendFileSync(messages, `round ${round}: ${name}\n${message.replaceAll(ROOT, '.')}\n\n`)
    }
    for (const file of report.testResults) {
      const failedTests = file.assertionResults.filter((t) => t.status === 'failed')
      for (const test of failedTests)
        count(`${relativeName(file.name)} > ${test.fullName}`, test.failureMessages[0] ?? '')
      // A hook or the file itself failed: its tests are only skipped.
      if (file.status === 'failed' && failedTests.length === 0)
        count(`${relativeName(file.name)} (the file)`, file.message ?? '')
    }
    if (run.exitCode !== 0 && failed === 0)
      count('vitest itself', run.stderr.trim().split('\n').at(-1) ?? '')
    process.stderr.write(
      `round ${round}/${rounds}: ${failed ? `${failed} failed` : 'all passed'} ` +
        `(exit code ${run.exitCode}) in ${seconds.toFixed(1)} s${cpu}, ` +
        `${(seconds / starts).toFixed(1)} times 40 starts of node with MQTT.js ` +
        `(${starts.toFixed(1)} s)${load ? ', under load' : ''}\n`,
    )
  }
} finally {
  await load?.stop()
  for (const round of readdirSync(dir).filter((f) => f.startsWith('round-')))
    rmSync(join(dir, round))
  if (failures.size === 0) rmSync(dir, { recursive: true, force: true })
}

const minutes = ((performance.now() - started) / 60_000).toFixed(1)
console.log(
  `\n${rounds} rounds of ${tests} tests in ${minutes} min${load ? ' under load' : ''}: ` +
    (failures.size === 0 ? 'no test failed' : `${failures.size} tests failed at least once`),
)
for (const [name, { count, first }] of [...failures].sort((a, b) => b[1].count - a[1].count)) {
  console.log(`  ${count}/${rounds}  ${name}\n        ${first}`)
}
if (failures.size > 0) console.log(`every failure's whole message, round by round: ${messages}`)
process.exit(failures.size === 0 ? 0 : 1)

function relativeName(path: string): string {
  return path.startsWith(ROOT) ? path.slice(ROOT.length + 1) : path
}
