// `npm run diagrams`: rewrites the docs' sequence diagrams from a real play. Each ```mermaid block
// under a `<!-- diagram: SCENARIO steps 1-2 [omit connect,connack] -->` marker becomes what
// ./mermaid.ts draws of those steps of the scenario's trace, played once on the bundled broker;
// test/experiments/scenario-suite.ts checks every such block against its own play of the scenario.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../../lib/build-cache.ts'
import { fail, messageOf } from '../../lib/cli.ts'
import { parseFlags } from '../../lib/parse-flags.ts'
import { scenarios } from '../index.ts'
import { buildBundles, programs } from './bundle.ts'
import { diagramMarker, mermaid, type DiagramSpec } from './mermaid.ts'
import { check } from './stage.ts'
import type { TraceEntry } from './trace.ts'

parseFlags(
  {
    invocation: 'npm run diagrams',
    description:
      "Play the scenarios the docs' diagrams draw, and rewrite each diagram from its play.",
  },
  {},
)

/** Where a page's diagram stands: the lines of its body, after its marker and the fence. */
interface Block {
  page: string
  spec: DiagramSpec
  /** The index of its opening fence in the page's lines. */
  fence: number
}

const pages = readdirSync(join(ROOT, 'docs'))
  .filter((f) => f.endsWith('.md'))
  .map((f) => `docs/${f}`)
const lines = new Map(
  pages.map((page) => [page, readFileSync(join(ROOT, page), 'utf8').split('\n')]),
)
const blocks: Block[] = []
for (const [page, text] of lines) {
  for (const [i, line] of text.entries()) {
    const spec = diagramMarker(line)
    if (!spec) continue
    if (text[i + 1] !== '```mermaid')
      fail(`${page}:${i + 1}: a diagram marker must stand above a mermaid block`)
    blocks.push({ page, spec, fence: i + 1 })
  }
}

await buildBundles(programs())
const traces = new Map<string, TraceEntry[]>()
for (const name of new Set(blocks.map((b) => b.spec.scenario))) {
  const scenario = scenarios.find((s) => s.name === name)
  if (!scenario)
    fail(`a diagram in the docs names ${name}, which is no scenario of scenarios/index.ts`)
  process.stderr.write(`· playing ${name}\n`)
  const trace: TraceEntry[] = []
  const seen = new Set<TraceEntry>()
  await check(scenario, {
    url: undefined,
    onTrace: (entry) => {
      if (seen.has(entry)) return
      seen.add(entry)
      trace.push(entry)
    },
  }).catch((error: unknown) => fail(`${name} failed, so its diagrams stay: ${messageOf(error)}`))
  traces.set(name, trace)
}

// From the last block of a page up, so that the line numbers of those above stay right.
for (const block of [...blocks].reverse()) {
  const text = lines.get(block.page)!
  const end = text.indexOf('```', block.fence + 1)
  const diagram = mermaid(traces.get(block.spec.scenario)!, block.spec).split('\n')
  text.splice(block.fence + 1, end - block.fence - 1, ...diagram)
}
for (const [page, text] of lines) {
  const now = text.join('\n')
  if (now !== readFileSync(join(ROOT, page), 'utf8')) {
    writeFileSync(join(ROOT, page), now)
    console.log(`rewrote the diagrams of ${page}`)
  }
}
process.exit(0)
