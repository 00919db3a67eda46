// The docs' fenced blocks, read the way test/docs.test.ts and test/scenario-suite.ts check them: a
// block marked `<!-- output: <scenario> <label> [step N | through step N] -->` is what that process
// printed when the scenario played; one marked `<!-- output of the command above -->` is what the
// last command of the sh block before it prints.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, type Event } from '../scenarios/stage.ts'

export const pages = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]

export interface Block {
  page: string
  line: number
  lang: string
  body: string
  /**
   * The `<!-- output: <scenario> <label> [step N | through step N] -->` marker above the block: what
   * the process labelled so printed during step N only (a command run in that step), through the end
   * of step N (a terminal still running), or in the whole scenario. Step 0 is before the first step.
   */
  output?: { scenario: string; label: string; steps?: { from: number; to: number } }
  /** `<!-- output of the command above -->`: the block is what the last command of the previous sh block prints. */
  ownOutput?: string
}

function blocks(page: string): Block[] {
  const lines = readFileSync(join(ROOT, page), 'utf8').split('\n')
  const found: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i].match(/^```(\w*)/)
    if (!open) continue
    const end = lines.indexOf('```', i + 1)
    const marker = lines[i - 1]?.match(/^<!-- output: ([\w-]+) (\S+?)(?: (step|through step) (\d+))? -->$/)
    const previousCommand = found.findLast((b) => b.lang === 'sh')?.body.trim().split('\n').at(-1)
    found.push({
      page, line: i + 1, lang: open[1], body: lines.slice(i + 1, end).join('\n'),
      ownOutput: lines[i - 1] === '<!-- output of the command above -->' ? previousCommand : undefined,
      output: marker ? {
        scenario: marker[1], label: marker[2],
        steps: marker[4] === undefined ? undefined : { from: marker[3] === 'step' ? Number(marker[4]) : 0, to: Number(marker[4]) },
      } : undefined,
    })
    i = end
  }
  return found
}

/** Every fenced block of the README and docs/. */
export const allBlocks = pages.flatMap(blocks)

/**
 * Replace what differs between runs, each by order of first appearance: ports, and client ids, those
 * MQTT.js makes up (mqttjs_…, what a learner sees) and those in the broker's lines about its clients
 * (named after their labels when the stage starts the programs).
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
    .replace(/^client (\S+) (?=connected$|disconnected$|subscribed to |published |cut off: )/gm, (_, id: string) => `client ${client(id)} `)
    .replace(/mqttjs_[0-9a-f]+/g, client)
}

/** What `label` printed during steps `from` to `to` of the scenario (all of it when undefined), markers left out. */
export function printed(events: Event[], label: string, steps = { from: 0, to: Infinity }): string {
  let step = 0
  const lines: string[] = []
  for (const event of events) {
    if (event.kind === 'step') step++
    if (step < steps.from || step > steps.to) continue
    if (event.kind === 'line' && event.label === label && !/\bmarker-\d+\b/.test(event.text)) lines.push(event.text)
  }
  return lines.join('\n')
}
