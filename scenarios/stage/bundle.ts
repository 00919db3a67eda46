// How the stage and the tests start a program of this repository cheaply: node runs an esbuild
// bundle of the program (its sources and MQTT.js in one file), not the TypeScript through tsx,
// which compiles every file at every start and costs three to four times the CPU. Bundles are kept
// in node_modules/.cache and rebuilt when the program's source, a file it imports or the installed
// packages change. A learner still types `npx tsx <file>`; the bundle behaves the same: same
// process.argv[1], same import.meta.url in every module, so cwd-relative paths, isMain() and files
// found beside a module work as under tsx.
import { readdirSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Plugin } from 'esbuild'
import { CACHE, keep, outputOf, ROOT, upToDate as builtFromNow } from '../../lib/build-cache.ts'
/** Changes when the way bundles are built changes, so that older ones are not reused. */
const BUNDLE_FORMAT_VERSION = 'esm-node20-4'
/**
 * Packages left outside the bundle and loaded from node_modules at run time: classic-level finds
 * its native addon beside its own files, esbuild runs its own binary, and ws falls back without the
 * two optional ones when they are not installed. The rest are loaded only by a program that uses
 * them (WebSocket, a SOCKS proxy, a browser's timers, Redis, the store on disk): left in, every
 * program would parse them at every start, half of what a publisher's bundle holds.
 */
const LEFT_UNBUNDLED = [
  'classic-level',
  'esbuild',
  'bufferutil',
  'utf-8-validate',
  'ws',
  'socks',
  'worker-timers',
  'ioredis',
  'mqemitter-redis',
  'aedes-persistence-redis',
  'aedes-persistence-level',
  'level',
]

/**
 * The arguments for process.execPath that start `script` (relative to the repository): its bundle
 * when it is up to date. Otherwise tsx runs the source, as a learner would, and the bundle is built
 * for the next start.
 */
export function programArgs(script: string): string[] {
  const bundle = upToDate(script)
  if (bundle) return [bundle]
  // A program that does not build fails under tsx too, and says why there.
  buildBundle(script).catch(() => undefined)
  return ['--import', 'tsx', join(ROOT, script)]
}

/**
 * A URL that a client or a broker reaches over TLS, whose certificate node checks against its
 * authorities.
 */
export const isTlsUrl = (url: string | undefined): boolean =>
  url !== undefined && /^(mqtts|wss|ssl|tls|rediss):\/\//i.test(url)

/**
 * The environment to start a program of this repository in: `env` without NODE_EXTRA_CA_CERTS,
 * unless the program is to reach something over TLS (in `MQTT_URL` or one of its `args`). Node
 * reads that file of certificate authorities at every start, TLS or not, which costs a program a
 * fifth of its start; the programs the stage and the tests start talk to brokers of their own over
 * plain TCP.
 */
export function programEnv(
  env: NodeJS.ProcessEnv,
  args: readonly string[] = [],
): NodeJS.ProcessEnv {
  if (env.NODE_EXTRA_CA_CERTS === undefined || [env.MQTT_URL, ...args].some(isTlsUrl)) return env
  const { NODE_EXTRA_CA_CERTS: _unused, ...rest } = env
  return rest
}

/**
 * Every program a scenario or a test may start: all of demos/, the broker, the shows, and the
 * tests' own programs.
 */
export function programs(): string[] {
  // Not the copies test/docs/try-it.test.ts makes of a demo (*.tried.ts), which come and go as it
  // runs.
  const under = (dir: string): string[] =>
    readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory()
        ? under(join(dir, entry.name))
        : entry.name.endsWith('.ts') && !entry.name.endsWith('.tried.ts')
          ? [join(dir, entry.name)]
          : [],
    )
  const experiments = readdirSync(join(ROOT, 'scenarios'))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `scenarios/${f}`)
  return [...under('demos'), 'lib/broker/main.ts', ...experiments, 'test/shows/prompt-program.ts']
}

/**
 * Bring the bundles of `scripts` up to date, in one build. One that does not build is left to tsx.
 */
export async function buildBundles(scripts: string[]): Promise<void> {
  const stale = scripts.filter((script) => !upToDate(script))
  if (stale.length === 0) return
  // One build shares the parsing of MQTT.js and the rest among all the programs; if one program
  // does not build, the others are built one by one.
  await bundle(stale).catch(() =>
    Promise.all(stale.map((script) => buildBundle(script).catch(() => undefined))),
  )
}

const bundlePath = (script: string) => join(CACHE, script.replace(/\.ts$/, '.mjs'))

/** The path of the bundle of `script` if it was built from the files as they are now. */
function upToDate(script: string): string | undefined {
  return builtFromNow(bundlePath(script), BUNDLE_FORMAT_VERSION)
}

const building = new Map<string, Promise<void>>()

/** Build the bundle of `script`, once at a time in this process. */
function buildBundle(script: string): Promise<void> {
  let build = building.get(script)
  if (!build) {
    build = bundle([script]).finally(() => building.delete(script))
    building.set(script, build)
  }
  return build
}

/**
 * Build the bundles of `scripts` and their manifests; several processes may do so at once, each
 * file lands whole.
 */
async function bundle(scripts: string[]): Promise<void> {
  const { build } = await import('esbuild')
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: scripts,
    outbase: '.',
    outdir: CACHE,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    metafile: true,
    keepNames: true,
    logLevel: 'silent',
    external: LEFT_UNBUNDLED,
    plugins: [sourceUrls, lazyTransports],
  })
  for (const script of scripts) {
    const path = bundlePath(script)
    const output = outputOf(result.metafile, path)
    const contents = result.outputFiles.find((file) => file.path === path)?.text
    if (!output || contents === undefined) throw new Error(`esbuild wrote no ${path}`)
    keep(path, `${prelude(join(ROOT, script))}${contents}`, output, BUNDLE_FORMAT_VERSION)
  }
}

/**
 * What a bundle runs first. The packages bundled in are CommonJS and require node's own modules, so
 * they get a require() that resolves as it would from the source; and the program sees the path of
 * its source as argv[1], as under tsx.
 */
function prelude(source: string): string {
  return [
    "import { createRequire as __createRequire } from 'node:module';",
    `const require = __createRequire(${JSON.stringify(source)});`,
    `process.argv[1] = ${JSON.stringify(source)};`,
    '',
  ].join('\n')
}

/**
 * Each TypeScript module (ours; the packages bundled in are JavaScript and do not look at
 * import.meta) keeps its own import.meta.url, .filename and .dirname, those of its source file: in
 * a bundle they would all be the bundle's, and a module that finds files beside itself, computes
 * the repository's root or asks isMain() would go wrong.
 */
const sourceUrls: Plugin = {
  name: 'source-urls',
  setup(build) {
    build.onLoad({ filter: /\.[cm]?ts$/ }, async ({ path }) => {
      const text = await readFile(path, 'utf8')
      if (!text.includes('import.meta')) return undefined
      const meta: Record<string, string> = {
        url: pathToFileURL(path).href,
        filename: path,
        dirname: dirname(path),
      }
      return {
        contents: text.replace(/\bimport\.meta\.(url|filename|dirname)\b/g, (_, key: string) =>
          JSON.stringify(meta[key]),
        ),
        loader: 'ts',
      }
    })
  },
}

/**
 * MQTT.js loads the code of every transport as a client connects (WebSocket, TLS, and a SOCKS proxy
 * from TCP) and its browser timers as it loads: here each is loaded when it is first used, so that
 * a client on mqtt:// never loads ws, tls or socks. Where MQTT.js's code is not as expected, it is
 * left as it is, which costs time, not behaviour.
 */
const lazyTransports: Plugin = {
  name: 'lazy-transports',
  setup(build) {
    build.onLoad(
      {
        filter: joinedRegExp(
          /[\\/]node_modules[\\/]mqtt[\\/]build[\\/]lib[\\/]/,
          /(connect[\\/](index|tcp|tls)|get-timer)\.js$/,
        ),
      },
      async ({ path }) => {
        const text = await readFile(path, 'utf8')
        return {
          loader: 'js',
          contents: text
            // protocols.ws = require('./ws').streamBuilder;
            .replace(
              /(protocols\.\w+) = require\('\.\/(ws|tls|wx|ali)'\)\.(\w+);/g,
              "$1 = (...args) => require('./$2').$3(...args);",
            )
            .replace(
              'const socks_1 = __importDefault(require("./socks"));',
              'const socks_1 = { get default() { return require("./socks").default; } };',
            )
            .replace(
              'const worker_timers_1 = require("worker-timers");',
              'const worker_timers_1 = { setInterval: (...args) => ' +
                'require("worker-timers").setInterval(...args), clearInterval: (...args) => ' +
                'require("worker-timers").clearInterval(...args) };',
            ),
        }
      },
    )
  },
}

/** A regular expression written as several literals, each within 100 columns. */
function joinedRegExp(...parts: RegExp[]): RegExp {
  return new RegExp(parts.map((part) => part.source).join(''), parts[0].flags)
}
