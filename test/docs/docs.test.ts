// The docs are tested: every command they show exists with the flags it is given, every block that
// quotes a command's output is what it prints, every block that quotes a scenario names one that
// exists (test/experiments/scenario-suite.ts compares those with what the scenario's processes
// print), every program shown is the file, and every difference shown between two programs is
// theirs.
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { $ } from 'zx'
import { scenarios } from '../../scenarios/index.ts'
import { ROOT } from '../../lib/build-cache.ts'
import { allBlocks as all, applyChange, lineDiff, normalise, pages } from './doc-blocks.ts'
import { Program, runScript } from '../helpers/processes.ts'
import { python } from '../helpers/python.ts'

/** What `npm run broker` runs, also as `npm run --silent broker`. */
const BROKER = 'lib/broker/main.ts'
const packageScripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
  .scripts as Record<string, string>

describe('commands shown in the docs exist', () => {
  const commands = all
    .filter((b) => b.lang === 'sh')
    .flatMap((b) =>
      b.body
        .split('\n')
        .filter((l) => l.trim() && !l.startsWith('#'))
        .flatMap((l) => l.split('&&'))
        .map((command) => ({ where: `${b.page}:${b.line}`, command: command.trim() })),
    )
  const helpCache = new Map<string, Promise<string>>()
  const help = (script: string) => {
    if (!helpCache.has(script)) {
      const run = script.endsWith('.py')
        ? (async () =>
            (
              await $({
                cwd: ROOT,
                quiet: true,
                nothrow: true,
              })`${python!} ${join(ROOT, script)} --help`
            ).stdout)()
        : runScript(script, ['--help']).then((r) => r.stdout)
      helpCache.set(script, run)
    }
    return helpCache.get(script)!
  }
  /**
   * The pid files that commands of each page write (--pid-file FILE), for the kill commands that
   * read them.
   */
  const pidFiles = (page: string) =>
    all
      .filter((b) => b.page === page && b.lang === 'sh')
      .flatMap((b) => [...b.body.matchAll(/--pid-file (\S+)/g)].map((m) => m[1]))

  /**
   * The directories where a page's commands keep a store (--persist DIR) or its files (mkdir DIR),
   * for its rm -r.
   */
  const storeDirs = (page: string) =>
    all
      .filter((b) => b.page === page && b.lang === 'sh')
      .flatMap((b) =>
        [...b.body.matchAll(/--persist (\S+)|^mkdir (\S+)$/gm)].map((m) => m[1] ?? m[2]),
      )

  /**
   * Programs that are not ours, with the options the security page explains, and no other: a typo
   * in a long openssl command would otherwise go unseen.
   */
  const notOurs: Record<string, string[]> = {
    mkdir: [],
    mosquitto: ['-c'],
    mosquitto_passwd: ['-c', '-b'],
    openssl: [
      '-x509',
      '-newkey',
      '-pkeyopt',
      '-nodes',
      '-days',
      '-subj',
      '-addext',
      '-CA',
      '-CAkey',
      '-keyout',
      '-out',
    ],
  }

  it.each(commands)('$where: $command', async ({ where, command }) => {
    // npm run --silent (or -s) leaves out npm's own lines: the same script, the same flags.
    const words = command
      .replace(/^(\w+=\S+\s+)+/, '')
      .replace(/^npm run (--silent|-s) /, 'npm run ')
      .split(/\s+/)
    const flags = words.filter((w) => w.startsWith('--') && w !== '--')
    if (words[0] === 'npm' && (words[1] === 'run' || words[1] === 'start')) {
      const script = words[2]
      expect(Object.keys(packageScripts), `npm script ${script}`).toContain(script)
      const file = packageScripts[script].match(/node --import tsx (\S+\.ts)/)?.[1]
      if (file && flags.length)
        for (const flag of flags)
          expect(await help(file), `${flag} in ${file} --help`).toContain(flag)
    } else if (
      (words[0] === 'npx' && words[1] === 'tsx') ||
      (words[0] === 'node' && words[1].endsWith('.ts'))
    ) {
      // node FILE.ts runs on Node.js 22.18 and later: see the tests of node FILE.ts below.
      const file = words[0] === 'node' ? words[1] : words[2]
      expect(existsSync(join(ROOT, file)), `${file} exists`).toBe(true)
      for (const flag of flags)
        expect(await help(file), `${flag} in ${file} --help`).toContain(flag)
    } else if (words[0] === 'python3') {
      const file = words[1]
      expect(existsSync(join(ROOT, file)), `${file} exists`).toBe(true)
      if (python)
        for (const flag of flags)
          expect(await help(file), `${flag} in ${file} --help`).toContain(flag)
    } else if (words[0] === 'kill') {
      // The program's own process, from the pid file it wrote: never a pattern that may match
      // others'.
      const file = command.match(/^kill -KILL "\$\(cat (\S+)\)"$/)?.[1]
      expect(file, 'kill -KILL "$(cat FILE)"').toBeDefined()
      expect(
        pidFiles(where.split(':')[0]),
        `a command of the page writes ${file} with --pid-file`,
      ).toContain(file)
    } else if (words[0] === 'rm') {
      // Clean-up: only a broker store that a command of the same page made, never a pattern.
      const dir = command.match(/^rm -r (\S+)$/)?.[1]
      expect(dir, 'rm -r DIR').toBeDefined()
      const page = where.split(':')[0]
      expect(storeDirs(page), `a command of the page keeps a store or files in ${dir}`).toContain(
        dir,
      )
      expect(dir, 'a directory of its own, inside the project').toMatch(/^[\w-]+$/)
    } else if (notOurs[words[0]]) {
      for (const option of words.filter((w) => w.startsWith('-')))
        expect(notOurs[words[0]], `${option} of ${words[0]}`).toContain(option)
      if (words[0] === 'openssl') expect(words[1], 'openssl req').toBe('req')
    } else if (words[0] === 'redis-server') {
      // Not ours: only the settings the cluster page explains.
      for (const flag of flags)
        expect(['--port', '--save', '--appendonly'], `${flag} of redis-server`).toContain(flag)
    } else {
      expect(['npm install', 'npm test', 'npm ci'], 'a command this test knows').toContain(
        words.slice(0, 2).join(' '),
      )
    }
  })
})

describe('the experiment pages say which terminal each command goes in', () => {
  const experimentPages = pages.filter((p) => /^docs\/(0[1-9]|1\d)-/.test(p))
  const counts = ['one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine']
  /** The terminals a text names: "terminal 3", "terminals 2, 3 and 4", "terminals 2 to 6". */
  const naming = /\bterminals?\s+(\d+(?:(?:,\s+|,?\s+and\s+|\s+to\s+)\d+)*)/gi
  const named = (text: string) =>
    [...text.matchAll(naming)].flatMap((m) =>
      m[1].split(/,?\s+and\s+|,\s+/).flatMap((part) => {
        const [from, to = from] = part.split(/\s+to\s+/).map(Number)
        return Array.from({ length: to - from + 1 }, (_, i) => from + i)
      }),
    )

  it.each(experimentPages)('%s says at the top how many it needs, and uses each', (page) => {
    const text = readFileSync(join(ROOT, page), 'utf8')
    const top = text.slice(0, text.indexOf('\n## '))
    const count = counts.indexOf(top.match(/^\*\*Terminals:\*\* (\w+)/m)?.[1] ?? '') + 1
    expect(
      count,
      'a line "**Terminals:** <how many>: ..." before the first section',
    ).toBeGreaterThan(0)
    expect(Math.max(...named(text)), 'the highest terminal it names').toBe(count)
  })

  // Every command of a page but the show's and the like, which go in any terminal: the heading of
  // its section, the text between it and the block before, or a comment in the block names it.
  const anywhere = /^#+ (The whole experiment as a show|How fast|Options)$/
  const commands = experimentPages.flatMap((page) => {
    const lines = readFileSync(join(ROOT, page), 'utf8').split('\n')
    // Whether each line is inside a fenced block, whose `# terminal 2` is a comment, not a heading.
    let fenced = false
    const inside = lines.map((l) => {
      if (!l.startsWith('```')) return fenced
      fenced = !fenced
      return true
    })
    const last = (before: number, test: (l: string, i: number) => boolean) =>
      lines.findLastIndex((l, i) => i < before && test(l, i))
    return all
      .filter((b) => b.page === page && b.lang === 'sh')
      .flatMap((block) => {
        const opening = block.line - 1
        const heading = last(opening, (l, i) => !inside[i] && /^#+ /.test(l))
        if (anywhere.test(lines[heading])) return []
        // From the block before, when it is in the same section.
        const after = Math.max(
          heading,
          last(opening, (l) => l.startsWith('```')),
        )
        const context = [lines[heading], ...lines.slice(after + 1, opening), block.body].join('\n')
        return [
          { where: `${page}:${block.line}`, command: block.body.split('\n').at(-1)!, context },
        ]
      })
  })
  it.each(commands)('$where: $command', ({ context }) => {
    expect(
      named(context).length,
      'a terminal named in its heading, text before it or a comment',
    ).toBeGreaterThan(0)
  })
})

describe('no page stops a program by a pattern', () => {
  // pgrep -f, pkill -f or killall would also reach the brokers of a test run or of another learner:
  // a page kills the process whose id the program wrote with --pid-file.
  it.each(pages)('%s', (page) => {
    expect(readFileSync(join(ROOT, page), 'utf8')).not.toMatch(/\b(pgrep|pkill|killall)\b/)
  })
})

describe(
  'node FILE.ts, which the docs offer for npx tsx FILE.ts on Node.js 22.18 and ' + 'later',
  () => {
    // Every such command, in a block or in the text: `node demos/...ts`, flags and all.
    const commands = pages.flatMap((page) =>
      [
        ...readFileSync(join(ROOT, page), 'utf8').matchAll(
          /^node (demos\/\S+\.ts)( .*)?$|`node (demos\/\S+\.ts)([^`]*)`/gm,
        ),
      ].map((m) => ({ page, file: m[1] ?? m[3], args: (m[2] ?? m[4] ?? '').trim() })),
    )
    // process.features.typescript: 'strip' from 22.18 on, where Node runs TypeScript without a
    // flag.
    const strips = Boolean((process.features as { typescript?: string | false }).typescript)

    it('every experiment page offers it', () => {
      for (const page of pages.filter((p) => /docs\/(0[1-9]|1\d)-/.test(p)))
        expect(
          commands.map((c) => c.page),
          page,
        ).toContain(page)
    })

    it.each(commands)('$page: node $file $args', async ({ file, args }) => {
      expect(existsSync(join(ROOT, file)), `${file} exists`).toBe(true)
      if (!strips) {
        // This Node needs tsx, as the docs say of every Node.js before 22.18.
        const [major, minor] = process.versions.node.split('.').map(Number)
        expect(
          major < 22 || (major === 22 && minor < 18),
          `Node.js ${process.versions.node} strips no types`,
        ).toBe(true)
        return
      }
      // Run by this Node itself, no tsx and no bundle: what it prints for --help is what tsx's run
      // prints.
      const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' }
      delete env.MQTT_URL
      const direct = await new Program(
        spawn(process.execPath, [file, '--help'], { cwd: ROOT, env }),
        `node ${file} --help`,
      ).finish()
      expect(direct.stderr).toBe('')
      expect(direct.code).toBe(0)
      const viaTsx = await runScript(file, ['--help'])
      expect(direct.stdout).toBe(viaTsx.stdout)
      for (const flag of args.split(/\s+/).filter((w) => w.startsWith('--') && w !== '--help'))
        expect(direct.stdout, flag).toContain(flag)
    })
  },
)

describe('output blocks of a command are what it prints', () => {
  const quoted = all.filter((b) => b.ownOutput)
  it.each(
    quoted.map((b) => ({ where: `${b.page}:${b.line}`, command: b.ownOutput!, body: b.body })),
  )('$where: $command', async ({ command, body }) => {
    // Only demo programs and the broker run here: `npx tsx <file> ...`, `npm run broker -- ...`.
    const words = command.split(/\s+/)
    const after = words.includes('--') ? words.slice(words.indexOf('--') + 1) : []
    const [script, args] = words[0] === 'npx' ? [words[2], words.slice(3)] : [BROKER, after]
    const result = await runScript(script, args)
    expect(normalise(body)).toBe(normalise(`${result.stdout}${result.stderr}`.trimEnd()))
  })
})

describe('output blocks quote scenarios that exist', () => {
  const marked = all.filter((b) => b.output)

  it('every experiment page quotes at least one output block', () => {
    for (const page of pages.filter((p) => /docs\/\d\d-/.test(p))) {
      expect(
        marked.some((b) => b.page === page),
        `${page} has an output block`,
      ).toBe(true)
    }
  })

  it.each(marked.map((b) => ({ where: `${b.page}:${b.line}`, scenario: b.output!.scenario })))(
    '$where quotes $scenario',
    ({ scenario }) => {
      expect(scenarios.map((s) => s.name)).toContain(scenario)
    },
  )
})

describe('programs shown in the docs are the files', () => {
  const shown = all.filter((b) => b.program)
  it.each(shown.map((b) => ({ where: `${b.page}:${b.line}`, file: b.program!, body: b.body })))(
    '$where shows $file',
    ({ file, body }) => {
      expect(body).toBe(readFileSync(join(ROOT, file), 'utf8').trimEnd())
    },
  )

  const diffs = all.filter((b) => b.diff)
  it.each(diffs.map((b) => ({ where: `${b.page}:${b.line}`, ...b.diff!, body: b.body })))(
    '$where shows how $to differs from $from',
    ({ from, to, body }) => {
      expect(body).toBe(
        lineDiff(readFileSync(join(ROOT, from), 'utf8'), readFileSync(join(ROOT, to), 'utf8')),
      )
    },
  )

  const tries = all.filter((b) => b.tryIt)
  it.each(tries.map((b) => ({ where: `${b.page}:${b.line}`, file: b.tryIt!, body: b.body })))(
    '$where asks for a change that fits $file',
    ({ file, body }) => {
      expect(() => applyChange(readFileSync(join(ROOT, file), 'utf8'), body)).not.toThrow()
    },
  )

  // The experiment pages: 01-basic-pubsub.md shows demos/basic-pubsub/, and so on.
  const experiments = pages.flatMap((p) =>
    /^docs\/0[1-5]-/.test(p) ? [{ page: p, name: p.slice('docs/0N-'.length, -'.md'.length) }] : [],
  )
  it.each(experiments)(
    '$page shows the TypeScript and the Python programs of demos/$name/, and a change to try',
    ({ page, name }) => {
      const files = shown.filter((b) => b.page === page).map((b) => b.program)
      for (const program of [
        'publisher.ts',
        'subscriber.ts',
        'python/publisher.py',
        'python/subscriber.py',
      ]) {
        expect(files, `${page} shows demos/${name}/${program}`).toContain(
          `demos/${name}/${program}`,
        )
      }
      expect(
        tries.filter((b) => b.page === page),
        `${page} has a <!-- try: FILE --> block`,
      ).toHaveLength(1)
    },
  )
})
