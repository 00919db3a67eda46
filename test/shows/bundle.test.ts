// The bundles that the stage and the tests start programs from (scenarios/stage/bundle.ts): a
// program run from its bundle sees what it sees under tsx, and an edit to any file it imports makes
// the bundle stale until it is built again. A throwaway program in a directory of its own inside
// the repository (bundles are only made of the repository's files) plays the part of a demo.
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildBundles, programArgs, programEnv } from '../../scenarios/stage/bundle.ts'
import { ROOT } from '../../lib/build-cache.ts'
import { runScript } from '../helpers/processes.ts'

const dir = `test/.bundle-test-${process.pid}`
const script = `${dir}/main.ts`
const client = `${dir}/client.ts`
const helper = (word: string) =>
  `// A module beside main.ts.\nexport const where = import.meta.url\nexport const word = ` +
  `'${word}'\n`

beforeAll(async () => {
  await mkdir(join(ROOT, dir), { recursive: true })
  await writeFile(join(ROOT, dir, 'helper.ts'), helper('first'))
  await writeFile(
    join(ROOT, client),
    [
      '// Connects to the URL it is given, where nobody listens, and prints the packages it ' +
        'loaded from node_modules.',
      "import { createRequire } from 'node:module'",
      "import mqtt from 'mqtt'",
      'const connection = mqtt.connect(process.argv[2], { reconnectPeriod: 0, connectTimeout: ' +
        '5000 })',
      "connection.on('error', () => undefined)",
      "connection.on('close', () => {",
      '  const loaded = Object.keys(createRequire(import.meta.url).cache).map((f) => ' +
        'f.match(/node_modules\\/([^/]+)\\//)?.[1]).filter(Boolean)',
      '  console.log(JSON.stringify([...new Set(loaded)].sort()))',
      '  connection.end(true)',
      '})',
      '',
    ].join('\n'),
  )
  await writeFile(
    join(ROOT, script),
    [
      '// Prints what a program can see of where it runs from.',
      "import { isMain } from '../../lib/cli.ts'",
      "import { where, word } from './helper.ts'",
      'console.log(JSON.stringify({ argv1: process.argv[1], main: isMain(import.meta.url), ' +
        'where, word, cwd: process.cwd(), args: process.argv.slice(2) }))',
      "if (process.argv[2] === 'fail') process.exit(3)",
      '',
    ].join('\n'),
  )
})
afterAll(async () => {
  await rm(join(ROOT, dir), { recursive: true, force: true })
  await rm(join(ROOT, 'node_modules', '.cache', 'mqtt-by-example', dir), {
    recursive: true,
    force: true,
  })
})

describe('a program started from its bundle', () => {
  it('is started by tsx until its bundle is built, then from the bundle', async () => {
    expect(programArgs(script)).toEqual(['--import', 'tsx', join(ROOT, script)])
    await buildBundles([script])
    expect(programArgs(script)).toEqual([
      join(ROOT, 'node_modules', '.cache', 'mqtt-by-example', dir, 'main.mjs'),
    ])
  })

  it(
    'sees its source as argv[1], is main, and each module keeps its own import.meta.url, as ' +
      'under tsx',
    async () => {
      await buildBundles([script])
      const result = await runScript(script, ['fail'])
      expect(result.code).toBe(3)
      expect(JSON.parse(result.stdout)).toEqual({
        argv1: join(ROOT, script),
        main: true,
        where: `file://${join(ROOT, dir, 'helper.ts')}`,
        word: 'first',
        cwd: ROOT,
        args: ['fail'],
      })
    },
  )

  it('is rebuilt after an edit to a file it imports', async () => {
    await buildBundles([script])
    await writeFile(join(ROOT, dir, 'helper.ts'), helper('second'))
    expect(programArgs(script)[0]).toBe('--import')
    await buildBundles([script])
    expect(programArgs(script)[0]).toMatch(/main\.mjs$/)
    expect(JSON.parse((await runScript(script)).stdout).word).toBe('second')
  })
})

describe('what a start costs', () => {
  it(
    'a client on mqtt:// loads no WebSocket, SOCKS or browser timer code; one on ws:// loads ws ' +
      'as it connects',
    async () => {
      await buildBundles([client])
      const loaded = async (url: string) =>
        JSON.parse((await runScript(client, [url])).stdout) as string[]
      expect(await loaded('mqtt://127.0.0.1:1')).toEqual([])
      expect(await loaded('ws://127.0.0.1:1')).toEqual(['ws'])
    },
  )

  it(
    'a program is started without NODE_EXTRA_CA_CERTS, unless it is to reach a broker over ' +
      'TLS',
    () => {
      const env = { NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt', PATH: '/usr/bin' }
      expect(programEnv(env, ['--url', 'mqtt://127.0.0.1:1883'])).toEqual({ PATH: '/usr/bin' })
      expect(programEnv(env, ['--url', 'mqtts://127.0.0.1:8883'])).toEqual(env)
      expect(programEnv({ ...env, MQTT_URL: 'wss://broker.example:443' })).toHaveProperty(
        'NODE_EXTRA_CA_CERTS',
      )
      expect(programEnv({ PATH: '/usr/bin' })).toEqual({ PATH: '/usr/bin' })
    },
  )
})
