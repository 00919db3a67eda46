// The docs are tested: every command they show exists with the flags it is given, every block that
// quotes a command's output is what it prints, and every block that quotes a scenario names one that
// exists (test/scenario-suite.ts compares those with what the scenario's processes print).
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { scenarios } from '../scenarios/index.ts'
import { ROOT } from '../scenarios/stage.ts'
import { allBlocks as all, normalise, pages } from './doc-blocks.ts'
import { runScript } from './processes.ts'

const packageScripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>

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
    } else if (words[0] === 'redis-server') {
      // Not ours: only the settings the cluster page explains.
      for (const flag of flags) expect(['--port', '--save', '--appendonly'], `${flag} of redis-server`).toContain(flag)
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

describe('output blocks quote scenarios that exist', () => {
  const marked = all.filter((b) => b.output)

  it('every experiment page quotes at least one output block', () => {
    for (const page of pages.filter((p) => /docs\/\d\d-/.test(p))) {
      expect(marked.some((b) => b.page === page), `${page} has an output block`).toBe(true)
    }
  })

  it.each(marked.map((b) => ({ where: `${b.page}:${b.line}`, scenario: b.output!.scenario })))('$where quotes $scenario', ({ scenario }) => {
    expect(scenarios.map((s) => s.name)).toContain(scenario)
  })
})
