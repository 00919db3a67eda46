// The show: scenarios played for an audience, one after the other, each with a broker of its own,
// the entry point of `npm run demo:<name>` (one scenario) and of `npm run demo` (all of them, or
// the ones named). Its command line picks the experiments (names, --list), the pace (--step,
// --from), what is seen (--verbose) and the stage view's port; ./view.ts renders what happens,
// ./terminal.ts fits it to the screen, ./stage-view.ts serves it as a diagram to a browser.
import { fail, messageOf } from '../../lib/cli.ts'
import { parseFlags } from '../../lib/parse-flags.ts'
import { buildBundles, programs } from './bundle.ts'
import { Stage, type Scenario } from './stage.ts'
import { byClaimId, claimsMet, missingProgram } from './scenario.ts'
import { StageView } from './stage-view.ts'
import { Terminal } from './terminal.ts'
import { View } from './view.ts'

/** How long one wait may last in a show: a slow machine is no reason to stop in front of a room. */
const SHOW_WAIT_MS = 60_000
const DEFAULT_DASHBOARD_PORT = 8080

interface ShowFlags {
  scenarios: Scenario[]
  step: boolean
  from: number
  verbose: boolean
  dashboardPort: number
  mosquitto?: string
}

/** Play the scenarios named on the command line, or all of `available`, as the flags say. */
export async function show(...available: Scenario[]): Promise<void> {
  const flags = showFlags(available)
  // First, so that a browser can be opened on it before the show begins; and before the keyboard
  // is taken, so that a port in use leaves the terminal as it was.
  const stageView = await StageView.open(flags.dashboardPort).catch((error: unknown) =>
    fail(messageOf(error)),
  )
  // From now on, keys typed before a prompt are dropped rather than echoed.
  const term = new Terminal({ keys: flags.step })
  term.print({ lead: '', text: `Stage view: ${stageView.url} (open it now)`, indent: 2 })
  // Once after an edit (about a second), and the programs on stage start as fast as node itself.
  await buildBundles(programs())
  const { scenarios } = flags

  let stage: Stage | undefined
  process.on('exit', () => {
    stage?.killAll()
    term.release()
  })
  // Output piped into `head` or a pager that quit: nobody is watching, so end the show quietly.
  process.stdout.on('error', () => process.exit(0))
  let interrupted = false
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    // `on`, not `once`: Ctrl-C reaches us twice under npm (from the terminal, and forwarded by
    // npm), and a second signal with no handler left would kill the show before it has cleaned up.
    process.on(signal, () => {
      if (interrupted) return
      interrupted = true
      stage?.expectEveryEnd()
      term.release()
      term.print(
        { lead: '', text: '' },
        {
          lead: `${term.paint('1;93', '■')} `,
          text: `interrupted (${signal}): stopping every process and the broker`,
        },
      )
      void (stage?.close() ?? Promise.resolve()).finally(() => process.exit(130))
      setTimeout(() => process.exit(130), 2000).unref()
    })
  }

  const started = performance.now()
  const shown: string[] = []
  const skipped: string[] = []
  for (const [i, scenario] of scenarios.entries()) {
    // In the whole talk, an experiment whose program is not installed is passed over, with the line
    // that says how to get it; played alone, it fails with that line.
    const missing = scenarios.length > 1 ? missingProgram(scenario) : undefined
    if (missing) {
      term.print({ lead: `${term.paint('1;93', '■')} `, text: `skipped: ${missing}` })
      skipped.push(scenario.name)
      continue
    }
    const from = i === 0 ? flags.from : 1
    const view = new View(term, { verbose: flags.verbose, from })
    const next = scenarios[i + 1]
    const current = (stage = new Stage({
      url: process.env.MQTT_URL,
      needs: scenario.needs,
      scenario,
      waitMs: SHOW_WAIT_MS,
      mosquitto: flags.mosquitto,
      onEvent: (event) => view.event(event),
      onTrace: (entry) => stageView.add(entry),
      onPage: (title, url) => stageView.link(title, url),
      onSlow: (label, what, ms) => view.slow(label, what, ms),
      beforeStep: async (number, title) => {
        if (flags.step && number >= from)
          await term.enter(`Enter: step ${number}, ${lowerFirst(title)}`)
      },
    }))
    if (i > 0) term.print({ lead: '', text: '' })
    const begun = performance.now()
    view.heading(scenario.name, scenario.title)
    try {
      await current.open()
      await scenario.play(current)
      if (view.lastStep < from)
        throw new Error(
          `--from ${from}: ${scenario.name} has ${view.lastStep} steps; start at one of them`,
        )
    } catch (error) {
      // Ctrl-C reaches the demo programs too, and the step that waited on them fails: that is no
      // failure.
      if (interrupted) return new Promise<never>(() => {})
      view.result(false, messageOf(error))
      await current.close()
      current.result(false, messageOf(error))
      process.exit(1)
    }
    if (flags.step)
      await term.enter(
        next
          ? `Enter: end ${scenario.name} (every program and the broker stop), then ${next.name}`
          : `Enter: end the show (every program and the broker stop)`,
      )
    await current.close()
    const claims = claimsMet(current.events)
    shown.push(...claims)
    // The security experiment demonstrates no claim of the article: no empty parentheses then.
    const met = `every expectation met${claims.length ? ` (${claims.join(', ')})` : ''}`
    view.result(true, `${scenario.name}: ${met} in ${secondsSince(begun)}`)
    current.result(true, `${scenario.name}: ${met}`)
  }
  if (scenarios.length > 1) {
    const all = [...new Set(shown)].sort(byClaimId)
    const played = `${scenarios.length - skipped.length} experiments`
    const claimsShown = `${all.length} claims shown (${all.join(', ')})`
    const skips = skipped.length ? `; skipped: ${skipped.join(', ')}` : ''
    new View(term, { verbose: false, from: 1 }).result(
      true,
      `${played}, ${claimsShown} in ${secondsSince(started)}${skips}`,
    )
  }
  term.release()
  await stageView.close()
}

/** "2.3 s": the time since `start`, a performance.now() reading, as the show's results give it. */
function secondsSince(start: number): string {
  return `${((performance.now() - start) / 1000).toFixed(1)} s`
}

/**
 * "Stop it" for "step 3, stop it": a title's first letter in lower case, unless it starts an
 * acronym.
 */
function lowerFirst(title: string): string {
  return /^[A-Z][a-z]/.test(title) ? `${title[0].toLowerCase()}${title.slice(1)}` : title
}

function showFlags(available: Scenario[]): ShowFlags {
  const several = available.length > 1
  const { values, positionals } = parseFlags(
    {
      invocation: several ? 'npm run demo --' : `npm run demo:${available[0].name} --`,
      description: several
        ? 'Play the experiments named, in that order, or every one of them (--list names them).'
        : available[0].title,
      positionals: several ? '[NAME...]' : undefined,
      notes: 'MQTT_URL=... uses that broker instead of starting the bundled one.',
    },
    {
      step: {
        type: 'boolean',
        help: 'wait for Enter before each step, and once more before the end',
      },
      from: {
        type: 'string',
        arg: 'N',
        help: 'start at step N: the steps before it play without a word, so that all is set',
      },
      verbose: {
        type: 'boolean',
        help: 'show everything: every broker line, and how the stage proves that nothing arrived',
      },
      'dashboard-port': {
        type: 'string',
        arg: 'N',
        help:
          `the port of the stage view, the show as a diagram in a browser (default ` +
          `${DEFAULT_DASHBOARD_PORT}; 0 a free port)`,
      },
      mosquitto: {
        type: 'boolean',
        help:
          'start Mosquitto, not the bundled broker, where an experiment starts its broker from a ' +
          'configuration file (security)',
      },
      list: { type: 'boolean', help: 'name the experiments, with what each shows' },
    },
  )
  if (values.list) {
    const width = Math.max(...available.map((s) => s.name.length))
    const term = new Terminal({ keys: false })
    for (const s of available) term.print({ lead: `${s.name.padEnd(width)}  `, text: s.title })
    process.exit(0)
  }
  const scenarios =
    positionals.length === 0
      ? available
      : positionals.map(
          (name) =>
            available.find((s) => s.name === name) ??
            fail(
              `there is no experiment called ${JSON.stringify(name)}; npm run demo -- --list ` +
                `names them`,
            ),
        )
  if (values.step && !process.stdin.isTTY) {
    fail(
      '--step waits for Enter before each step and needs a terminal; run it in one, or leave ' +
        '--step out',
    )
  }
  const from = values.from === undefined ? 1 : Number(values.from)
  if (!/^\d+$/.test(values.from ?? '1') || from < 1)
    fail(`--from must be a step number from 1 on, not ${JSON.stringify(values.from)}`)
  if (from > 1 && scenarios.length > 1)
    fail(
      `--from starts one experiment at a step; name one, as in npm run demo -- ` +
        `${scenarios[0].name} --from ${from}`,
    )
  const port = values['dashboard-port'] ?? String(DEFAULT_DASHBOARD_PORT)
  if (!/^\d+$/.test(port) || Number(port) > 65535)
    fail(`--dashboard-port must be a port number from 0 to 65535, not ${JSON.stringify(port)}`)
  return {
    scenarios,
    step: Boolean(values.step),
    from,
    verbose: Boolean(values.verbose),
    dashboardPort: Number(port),
    mosquitto: values.mosquitto ? 'mosquitto' : undefined,
  }
}
