// Builds kept from one run to the next in node_modules/.cache/mqtt-by-example and used again for as
// long as every file they were built from is unchanged, byte for byte: the bundles the stage and
// the tests start programs from (scenarios/stage/bundle.ts), and the scripts of the dashboard's
// page and of the stage view's. Each build has a manifest beside it: the files it was built from
// and a hash of their contents. Every package under node_modules stands for itself through
// node_modules/.package-lock.json, which npm rewrites whenever the installed packages change.
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Metafile } from 'esbuild'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
export const CACHE = join(ROOT, 'node_modules', '.cache', 'mqtt-by-example')
/** Stands for every input under node_modules. */
const INSTALLED = join('node_modules', '.package-lock.json')

interface Manifest {
  key: string
  /** Relative to ROOT; INSTALLED stands for everything under node_modules. */
  inputs: string[]
}

const manifestPath = (path: string) => `${path}.json`

/**
 * `path` (a build in CACHE), if it was built, in the way `format` names, from the files as they are
 * now.
 */
export function upToDate(path: string, format: string): string | undefined {
  let manifest: Manifest
  try {
    manifest = JSON.parse(readFileSync(manifestPath(path), 'utf8')) as Manifest
  } catch {
    return undefined
  }
  return keyOf(format, manifest.inputs) === manifest.key && existsSync(path) ? path : undefined
}

/**
 * Keep `contents` as the build at `path`, made in the way `format` names from the inputs of
 * `output` in esbuild's metafile (built with absWorkingDir ROOT). A build whose inputs changed
 * meanwhile is not kept: the next start builds again.
 */
export function keep(
  path: string,
  contents: string | Uint8Array,
  output: Metafile['outputs'][string],
  format: string,
): void {
  const inputs = [
    ...new Set(
      Object.keys(output.inputs).map((input) =>
        input.startsWith('node_modules/') ? INSTALLED : input,
      ),
    ),
  ].sort()
  const key = keyOf(format, inputs)
  if (!key) return
  writeWhole(path, contents)
  writeWhole(manifestPath(path), JSON.stringify({ key, inputs } satisfies Manifest))
}

/** The output of `path` in a metafile of a build run from ROOT. */
export function outputOf(
  metafile: Metafile,
  path: string,
): Metafile['outputs'][string] | undefined {
  return metafile.outputs[relative(ROOT, path)]
}

/**
 * A hash of the way of building and of every input's content, undefined when one of them is gone.
 */
function keyOf(format: string, inputs: string[]): string | undefined {
  const hash = createHash('sha256').update(format)
  for (const input of inputs) {
    const digest = digestOf(join(ROOT, input))
    if (digest === undefined) return undefined
    hash.update(`\0${input}\0${digest}`)
  }
  return hash.digest('hex')
}

/**
 * Each file's hash, read again only when its size or modification time changed: a show checks some
 * forty bundles that share most of their inputs.
 */
const digests = new Map<string, { stamp: string; digest: string }>()

/** A hash of the content of the file at `path`, undefined when it is gone. */
function digestOf(path: string): string | undefined {
  try {
    const { size, mtimeMs, ctimeMs } = statSync(path)
    const stamp = `${size} ${mtimeMs} ${ctimeMs}`
    const known = digests.get(path)
    if (known?.stamp === stamp) return known.digest
    const digest = createHash('sha256').update(readFileSync(path)).digest('hex')
    digests.set(path, { stamp, digest })
    return digest
  } catch {
    return undefined
  }
}

/**
 * Write to a temporary name, then rename: a process reading the build meanwhile reads the old one
 * or the new one.
 */
function writeWhole(path: string, contents: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true })
  const temporary = `${path}.${process.pid}.${Math.random().toString(16).slice(2)}`
  writeFileSync(temporary, contents)
  renameSync(temporary, path)
}

/**
 * A page's script, bundled for the browser from `entry` (a path under ROOT) and what it imports
 * (MQTT.js's package.json points browsers at its own browser build): no build step to forget. The
 * bundle is kept under `name` between starts while none of those files changes, since bundling
 * MQTT.js takes a good part of a second of CPU.
 */
export async function bundleForBrowser(entry: string, name: string): Promise<Buffer> {
  const path = join(CACHE, 'pages', `${name}.js`)
  const format = 'browser-es2022-1'
  const kept = upToDate(path, format)
  if (kept) return readFileSync(kept)
  const { build, stop } = await import('esbuild')
  try {
    const result = await build({
      absWorkingDir: ROOT,
      entryPoints: [entry],
      outfile: path,
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      write: false,
      metafile: true,
      logLevel: 'silent',
    })
    const contents = Buffer.from(result.outputFiles[0]!.contents)
    const output = outputOf(result.metafile, path)
    if (output) keep(path, contents, output, format)
    return contents
  } finally {
    // esbuild runs as a child process; it is not needed again.
    await stop()
  }
}
