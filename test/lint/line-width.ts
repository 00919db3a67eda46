// `npm run lint`, after Biome: no tracked TypeScript line over 100 columns. Biome wraps code at 100
// but leaves a long string or comment as it is; those are wrapped by hand, and this finds them.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../../lib/build-cache.ts'

const WIDTH = 100
const files = execFileSync('git', ['ls-files', '*.ts'], { cwd: ROOT, encoding: 'utf8' }).split('\n')
const over = files.filter(Boolean).flatMap((file) =>
  readFileSync(join(ROOT, file), 'utf8')
    .split('\n')
    .flatMap((line, i) =>
      [...line].length > WIDTH ? [`${file}:${i + 1}: ${[...line].length} columns`] : [],
    ),
)
for (const line of over) console.log(line)
if (over.length > 0) {
  console.error(
    `error: ${over.length} lines over ${WIDTH} columns; npm run format wraps what it can, wrap ` +
      `the rest by hand`,
  )
  process.exit(1)
}
