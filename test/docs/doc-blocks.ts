// The docs' fenced blocks, read the way test/docs/docs.test.ts and
// test/experiments/scenario-suite.ts check them: a block marked `<!-- output: <scenario> <label>
// [step N | steps N to M | through step N] -->` is what that process printed when the scenario
// played; one marked
// `<!-- output of the command above -->` is what the last command of the sh block before it prints;
// `<!-- program: FILE -->` is that file, whole; `<!-- diff: FROM TO -->` is lineDiff() of the two
// files; `<!-- try: FILE -->` a change to FILE that a reader is asked to make, and `<!-- output of
// the change above -->` what the changed program prints (test/docs/try-it.test.ts runs it); `<!--
// diagram: ... -->` a sequence diagram generated from a play (test/experiments/scenario-suite.ts).
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../../lib/build-cache.ts'
import type { Event } from '../../scenarios/stage/scenario.ts'
import { diagramMarker, type DiagramSpec } from '../../scenarios/stage/mermaid.ts'

export const pages = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]

interface Block {
  page: string
  line: number
  lang: string
  body: string
  /**
   * The `<!-- output: <scenario> <label> [step N | steps N to M | through step N] -->` marker
   * above the block: what the process labelled so printed during step N only (a command run in
   * that step), during steps N to M (a show splits what one terminal does into two steps, one per
   * screen), through the end of step N (a terminal still running), or in the whole scenario. Step
   * 0 is before the first step.
   */
  output?: { scenario: string; label: string; steps?: { from: number; to: number } }
  /**
   * `<!-- output of the command above -->`: the block is what the last command of the previous sh
   * block prints.
   */
  ownOutput?: string
  /** `<!-- program: FILE -->`: the block is FILE, relative to the repository. */
  program?: string
  /** `<!-- diff: FROM TO -->`: the block is lineDiff(FROM, TO). */
  diff?: { from: string; to: string }
  /**
   * `<!-- try: FILE -->`: the block is a change to FILE, in lineDiff's form, that the page asks the
   * reader to make.
   */
  tryIt?: string
  /**
   * `<!-- output of the change above -->`: the block is what the program changed by the last try
   * block prints.
   */
  tryOutput?: string
  /**
   * `<!-- diagram: SCENARIO steps 1-2 [omit TYPES] -->`: the block is the Mermaid diagram of those
   * steps of a play of the scenario (scenarios/stage/mermaid.ts, written by `npm run diagrams`).
   */
  diagram?: DiagramSpec
}

function blocks(page: string): Block[] {
  const lines = readFileSync(join(ROOT, page), 'utf8').split('\n')
  const found: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i].match(/^```(\w*)/)
    if (!open) continue
    const end = lines.indexOf('```', i + 1)
    const marker = lines[i - 1]?.match(
      /^<!-- output: ([\w-]+) (\S+?)(?: (step|through step) (\d+)| steps (\d+) to (\d+))? -->$/,
    )
    const previousCommand = found
      .findLast((b) => b.lang === 'sh')
      ?.body.trim()
      .split('\n')
      .at(-1)
    const above = (pattern: RegExp) => lines[i - 1]?.match(pattern) ?? undefined
    const diff = above(/^<!-- diff: (\S+) (\S+) -->$/)
    found.push({
      page,
      line: i + 1,
      lang: open[1],
      body: lines.slice(i + 1, end).join('\n'),
      ownOutput:
        lines[i - 1] === '<!-- output of the command above -->' ? previousCommand : undefined,
      program: above(/^<!-- program: (\S+) -->$/)?.[1],
      diagram: diagramMarker(lines[i - 1] ?? ''),
      diff: diff && { from: diff[1], to: diff[2] },
      tryIt: above(/^<!-- try: (\S+) -->$/)?.[1],
      tryOutput:
        lines[i - 1] === '<!-- output of the change above -->'
          ? found.findLast((b) => b.tryIt)?.tryIt
          : undefined,
      output: marker
        ? {
            scenario: marker[1],
            label: marker[2],
            steps:
              marker[5] !== undefined
                ? { from: Number(marker[5]), to: Number(marker[6]) }
                : marker[4] === undefined
                  ? undefined
                  : { from: marker[3] === 'step' ? Number(marker[4]) : 0, to: Number(marker[4]) },
          }
        : undefined,
    })
    i = end
  }
  return found
}

/** Every fenced block of the README and docs/. */
export const allBlocks = pages.flatMap(blocks)

/**
 * Replace what differs between runs, each by order of first appearance: ports, and client ids,
 * those MQTT.js makes up (mqttjs_…, what a learner sees) and those in the broker's lines about its
 * clients (named after their labels when the stage starts the programs).
 */
export function normalise(text: string): string {
  const ports = new Map<string, string>()
  const ids = new Map<string, string>()
  const client = (id: string) => {
    if (!ids.has(id)) ids.set(id, `<client ${ids.size + 1}>`)
    return ids.get(id)!
  }
  return text
    .replace(/127\.0\.0\.1:(\d+)/g, (_, port: string) => {
      if (!ports.has(port)) ports.set(port, `<port ${ports.size + 1}>`)
      return `127.0.0.1:${ports.get(port)}`
    })
    .replace(
      /^client (\S+) (?=connected$|disconnected$|subscribed to |published |cut off: )/gm,
      (_, id: string) => `client ${client(id)} `,
    )
    .replace(/mqttjs_[0-9a-f]+/g, client)
}

/**
 * What `label` printed during steps `from` to `to` of the scenario (all of it when undefined),
 * markers left out.
 */
export function printed(events: Event[], label: string, steps = { from: 0, to: Infinity }): string {
  let step = 0
  const lines: string[] = []
  for (const event of events) {
    if (event.kind === 'step') step++
    if (step < steps.from || step > steps.to) continue
    if (event.kind === 'line' && event.label === label && !/\bmarker-\d+\b/.test(event.text))
      lines.push(event.text)
  }
  return lines.join('\n')
}

/**
 * What changed from `from` to `to`, line by line, as a ```diff block shows it: each changed line
 * with
 * - (only in `from`) or + (only in `to`), in order; a blank line between changes that lines in
 *   common separate. The longest common subsequence decides what is common.
 */
export function lineDiff(from: string, to: string): string {
  const a = from.trimEnd().split('\n')
  const b = to.trimEnd().split('\n')
  // common[i][j]: how many lines a[i..] and b[j..] have in common, in order.
  const common = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0))
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      common[i][j] =
        a[i] === b[j] ? common[i + 1][j + 1] + 1 : Math.max(common[i + 1][j], common[i][j + 1])
    }
  }
  const out: string[] = []
  let changing = false
  const mark = (line: string) => {
    if (!changing && out.length > 0) out.push('')
    changing = true
    out.push(line)
  }
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      changing = false
      i++
      j++
    } else if (j >= b.length || (i < a.length && common[i + 1][j] >= common[i][j + 1])) {
      mark(`-${a[i++]}`)
    } else {
      mark(`+${b[j++]}`)
    }
  }
  return out.join('\n')
}

/**
 * `file` with the change of a try block made: its - lines, found together in the file, become its +
 * lines.
 */
export function applyChange(file: string, change: string): string {
  const lines = change.split('\n').filter((l) => l !== '')
  const removed = lines.filter((l) => l.startsWith('-')).map((l) => l.slice(1))
  const added = lines.filter((l) => l.startsWith('+')).map((l) => l.slice(1))
  const old = removed.join('\n')
  if (removed.length === 0 || !file.includes(`${old}\n`))
    throw new Error(`the lines to change are not in the file:\n${old}`)
  return file.replace(`${old}\n`, `${added.join('\n')}\n`)
}
