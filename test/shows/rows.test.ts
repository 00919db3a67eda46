// One step, one screen (issue 27): every show played step by step in a pseudo-terminal of 80 by 24,
// as a speaker plays it on a projector, where no step may print more than 22 rows, so that its
// heading and what it shows stay on screen with the next prompt below them. Rows are counted as
// the screen shows them, wrapped at 80 columns, from the Enter that begins a step to the next
// prompt. Skipped in one line where script(1) is not installed.
import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { scenarios } from '../../scenarios/index.ts'
import { missingProgram } from '../../scenarios/stage/scenario.ts'
import { inTerminal, playStepRows, SCRIPT, showCommand } from './screen.ts'

/** The rows a step may print: a screen of 24 keeps one for the prompt, and one to spare. */
const MOST_ROWS = 22
/**
 * One show, played at once with no pause at its prompts, on a machine much slower than this one: a
 * show waits up to a minute for any one thing.
 */
const SHOW_MS = 240_000

/**
 * Two shows at a time, each lane in the order of the talk: a show spends most of its time waiting
 * for its programs, and two of them keep a machine of two cores busy enough.
 */
const lanes = [Promise.resolve(), Promise.resolve()]
function inLane(lane: number, play: () => Promise<void>): Promise<void> {
  const turn = lanes[lane].then(play)
  lanes[lane] = turn.catch(() => undefined)
  return turn
}

describe.skipIf(!existsSync(SCRIPT))('every step of every show fits a screen of 80 by 24', () => {
  it.concurrent.each(scenarios.map((s, i) => [s.name, s, i] as const))(
    '%s',
    (name, scenario, i) =>
      inLane(i % lanes.length, async () => {
        if (missingProgram(scenario)) return
        const show = inTerminal(
          showCommand(name, ['--step', '--dashboard-port', '0']),
          { NO_COLOR: '1' },
          { width: 80, height: 24 },
        )
        try {
          const steps = await playStepRows(show, {
            wait: (text, from) => show.waitForLine(text, SHOW_MS, from),
          })
          const result = await show.finish(SHOW_MS)
          expect(result.code, result.stdout).toBe(0)
          const over = steps
            .filter((s) => s.rows > MOST_ROWS)
            .map((s) => {
              const step = s.step === 0 ? 'before step 1' : `step ${s.step}`
              return `${name} ${step}: ${s.rows} rows\n${s.lines.join('\n')}`
            })
          expect(over, `steps over ${MOST_ROWS} rows at 80x24`).toEqual([])
        } finally {
          // A show that failed while it waited for Enter: script(1) gone, the show gets SIGHUP.
          show.child.kill('SIGKILL')
        }
      }),
    SHOW_MS * 4,
  )
})

it.skipIf(existsSync(SCRIPT))(
  'rows per step: script(1) is not installed; apt-get install util-linux (or bsdutils) to run ' +
    'these',
  () => {},
)
