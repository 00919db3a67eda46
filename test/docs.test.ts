// The docs are tested: every command they show exists with the flags it is given, and every output
// block marked `<!-- output: <scenario> <label> [step N] -->` is what that process really prints when
// the scenario plays, after normalising what varies between runs (ports, client ids).
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { scenarios } from '../scenarios/index.ts'
import { check, ROOT, type Event } from '../scenarios/stage.ts'
import { runScript } from './processes.ts'

const pages = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
const packageScripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>

interface Block {
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

const all = pages.flatMap(blocks)

/** Replace what differs between runs: the broker's port, and MQTT.js's random client ids (by order of appearance). */
function normalise(text: string): string {
  const ids = new Map<string, string>()
  return text
    .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:1883')
    .replace(/mqttjs_[0-9a-f]+/g, (id) => {
      if (!ids.has(id)) ids.set(id, `<client ${ids.size + 1}>`)
      return ids.get(id)!
    })
}

/** What `label` printed during steps `from` to `to` of the scenario (all of it when undefined), markers left out. */
function printed(events: Event[], label: string, steps = { from: 0, to: Infinity }): string {
  let step = 0
  const lines: string[] = []
  for (const event of events) {
    if (event.kind === 'step') step++
    if (step < steps.from || step > steps.to) continue
    if (event.kind === 'line' && event.label === label && !/\bmarker-\d+\b/.test(event.text)) lines.push(event.text)
  }
  return lines.join('\n')
}

describe('commands shown in the docs exist', () => {
  const commands = all.filter((b) => b.lang === 'sh').flatMap((b) =>
    b.body.split('\n').filter((l) => l.trim() && !l.startsWith('#')).flatMap((l) => l.split('&&'))
      .map((command) => ({ where: `${b.page}:${b.line}`, command: command.trim() })))
  const helpCache = new Map<string, Promise<string>>()
  const help = (script: string) => {
    if (!helpCache.has(script)) helpCache.set(script, runScript(script, ['--help']).then((r) => r.stdout))
    return helpCache.get(script)!
  }

  it.each(commands)('$where: $command', async ({ command }) => {
    const words = command.replace(/^(\w+=\S+\s+)+/, '').split(/\s+/)
    const flags = words.filter((w) => w.startsWith('--') && w !== '--')
    if (words[0] === 'npm' && (words[1] === 'run' || words[1] === 'start')) {
      const script = words[2]
      expect(Object.keys(packageScripts), `npm script ${script}`).toContain(script)
      const file = packageScripts[script].match(/node --import tsx (\S+\.ts)/)?.[1]
      if (file && flags.length) for (const flag of flags) expect(await help(file), `${flag} in ${file} --help`).toContain(flag)
    } else if (words[0] === 'npx' && words[1] === 'tsx') {
      const file = words[2]
      expect(existsSync(join(ROOT, file)), `${file} exists`).toBe(true)
      for (const flag of flags) expect(await help(file), `${flag} in ${file} --help`).toContain(flag)
    } else {
      expect(['npm install', 'npm test', 'npm ci'], 'a command this test knows').toContain(words.slice(0, 2).join(' '))
    }
  })
})

describe('output blocks of a command are what it prints', () => {
  const quoted = all.filter((b) => b.ownOutput)
  it.each(quoted.map((b) => ({ where: `${b.page}:${b.line}`, command: b.ownOutput!, body: b.body })))(
    '$where: $command', async ({ command, body }) => {
      // Only demo programs and the broker run here: `npx tsx <file> ...` or `npm run broker -- ...`.
      const words = command.split(/\s+/)
      const [script, args] = words[0] === 'npx' ? [words[2], words.slice(3)] : ['lib/broker.ts', words.slice(4)]
      const result = await runScript(script, args)
      expect(normalise(body)).toBe(normalise(`${result.stdout}${result.stderr}`.trimEnd()))
    })
})

describe('output blocks are what the programs print', () => {
  const marked = all.filter((b) => b.output)
  const transcripts = new Map<string, Event[]>()
  beforeAll(async () => {
    for (const name of new Set(marked.map((b) => b.output!.scenario))) {
      const scenario = scenarios.find((s) => s.name === name)
      if (scenario) transcripts.set(name, await check(scenario))
    }
  })

  it('every page quotes at least one output block, and every block names a scenario that exists', () => {
    for (const page of pages.filter((p) => /docs\/\d\d-/.test(p))) {
      expect(marked.some((b) => b.page === page), `${page} has an output block`).toBe(true)
    }
    for (const block of marked) expect(scenarios.map((s) => s.name)).toContain(block.output!.scenario)
  })

  it.each(marked.map((b) => ({ where: `${b.page}:${b.line}`, ...b.output!, body: b.body })))(
    '$where: $scenario $label', ({ scenario, label, steps, body }) => {
      const events = transcripts.get(scenario)!
      expect(normalise(body)).toBe(normalise(printed(events, label, steps)))
    })
})
