// Claims, docs and tests line up: every claim of the article (C1..C19), every precision of the
// specification (S1..S8) and every change of MQTT 5 (V1..V8) has a row in docs/claims.md, a page
// that cites it, and a test named after it; and every link in the docs leads to a file, and
// heading, that exists.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from '../../lib/build-cache.ts'
import { joined } from '../helpers/regexp.ts'

const ids = [
  ...Array.from({ length: 19 }, (_, i) => `C${i + 1}`),
  ...Array.from({ length: 8 }, (_, i) => `S${i + 1}`),
  ...Array.from({ length: 8 }, (_, i) => `V${i + 1}`),
]
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8')
const docs = readdirSync(join(ROOT, 'docs'))
  .filter((f) => f.endsWith('.md'))
  .map((f) => `docs/${f}`)
const testFiles = readdirSync(join(ROOT, 'test'), { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.test.ts'))
  .map((f) => `test/${f}`)

/**
 * The titles given to it(...), it.each(...)(...), it.skipIf(...)(...) and scenarioSuite(scenario,
 * ...) in a test file.
 */
function testTitles(source: string): string[] {
  return [
    ...source.matchAll(
      joined(
        /(?:\bit(?:\.each\([\s\S]*?\)|\.skipIf\([^)]*\)|\.\w+)?\(|\bscenarioSuite\(\s*\w+,)/g,
        /\s*(?:`([^`]*)`|'([^']*)'|"([^"]*)")/,
      ),
    ),
  ].map((m) => m[1] ?? m[2] ?? m[3])
}

const claimRows = new Map(
  read('docs/claims.md')
    .split('\n')
    .map((line) => line.match(/^\| ([CSV]\d+) \|(.*)$/))
    .filter((m): m is RegExpMatchArray => m !== null)
    .map((m) => [m[1], m[2]]),
)

describe.each(ids)('%s', (id) => {
  it('has a row in docs/claims.md', () => expect(claimRows.has(id), `row for ${id}`).toBe(true))

  it('is shown in a page of docs/, or in a section of the claims page of its own', () => {
    const cites = new RegExp(`\\b${id}\\b`)
    const citing = docs.filter((page) => page !== 'docs/claims.md' && cites.test(read(page)))
    const section = read('docs/claims.md')
      .split('\n')
      .some((line) => line.startsWith('## ') && cites.test(line))
    expect(citing.length > 0 || section, `a page or a section showing ${id}`).toBe(true)
  })

  it('names a test that exists and whose title names it', () => {
    const linked = [...(claimRows.get(id) ?? '').matchAll(/\(\.\.\/(test\/[\w./-]+)\)/g)].map(
      (m) => m[1],
    )
    expect(linked, `tests linked for ${id}`).not.toEqual([])
    for (const file of linked) {
      expect(existsSync(join(ROOT, file)), `${file} exists`).toBe(true)
      expect(
        testTitles(read(file)).some((title) => new RegExp(`\\b${id}\\b`).test(title)),
        `a test title in ${file} names ${id}`,
      ).toBe(true)
    }
  })
})

it(
  'the claim IDs are those of the article (../shared/article/CLAIMS.md, where it is beside the ' +
    'project)',
  () => {
    const shared = join(ROOT, '..', 'shared', 'article', 'CLAIMS.md')
    if (!existsSync(shared)) return
    const listed = [...readFileSync(shared, 'utf8').matchAll(/^\| ([CSV]\d+) \|/gm)].map(
      (m) => m[1],
    )
    expect(listed).toEqual(ids)
  },
)

it("every test file's claim IDs are real claims", () => {
  for (const file of testFiles) {
    for (const title of testTitles(read(file))) {
      for (const [id] of title.matchAll(/\b[CSV]\d+\b/g))
        expect(ids, `${id} in a title of ${file}`).toContain(id)
    }
  }
})

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-')

describe('links in the docs and the README lead somewhere', () => {
  const links = ['README.md', ...docs]
    .flatMap((page) =>
      [...read(page).matchAll(/\]\(([^)\s]+)\)/g)].map((m) => ({ page, target: m[1] })),
    )
    .filter(({ target }) => !/^[a-z]+:/.test(target))

  it.each(links)('$page -> $target', ({ page, target }) => {
    const [path, anchor] = target.split('#')
    const file = path ? join(dirname(page), path) : page
    expect(existsSync(join(ROOT, file)), `${file} exists`).toBe(true)
    if (anchor) {
      const headings = read(file)
        .split('\n')
        .filter((l) => /^#+ /.test(l))
        .map((l) => slug(l.replace(/^#+ /, '')))
      expect(headings, `#${anchor} in ${file}`).toContain(anchor)
    }
  })
})
