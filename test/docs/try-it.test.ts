// Each experiment page ends with a change to try in a program (a <!-- try: FILE --> block) and what
// it then prints (the <!-- output of the change above --> block): here each change is made, in a
// copy of the program beside it, and the page's answer is checked against what the changed program
// does.
import { rmSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type RunningBroker } from '../../lib/broker/broker.ts'
import { buildBundles } from '../../scenarios/stage/bundle.ts'
import { ROOT } from '../../lib/build-cache.ts'
import { allBlocks, applyChange, normalise } from './doc-blocks.ts'
import { runScript, start, type Program } from '../helpers/processes.ts'

let broker: RunningBroker
beforeAll(async () => {
  broker = await startBroker({ port: 0 })
})
afterAll(() => broker?.close())

const running: Program[] = []
const copies: string[] = []
afterEach(async () => {
  for (const program of running.splice(0)) {
    program.child.kill('SIGINT')
    await program.finish().catch(() => undefined)
  }
  for (const copy of copies.splice(0)) rmSync(join(ROOT, copy), { force: true })
})

/** The try block of `page`, and the answer block after it. */
function tryOf(page: string): { file: string; change: string; answer: string } {
  const change = allBlocks.find((b) => b.page === page && b.tryIt)
  const answer = allBlocks.find((b) => b.page === page && b.tryOutput)
  if (!change || !answer)
    throw new Error(
      `${page} has no <!-- try: FILE --> block and an <!-- output of the change above --> after it`,
    )
  return { file: change.tryIt!, change: change.body, answer: answer.body }
}

/** A copy of `file` with the page's change made, beside it so that its imports still resolve. */
async function changed(file: string, change: string): Promise<string> {
  const copy = file.replace(/\.(ts|py)$/, '.tried.$1')
  writeFileSync(join(ROOT, copy), applyChange(await readFile(join(ROOT, file), 'utf8'), change))
  copies.push(copy)
  // Started from its bundle, as the programs it was copied from are; the same change next run finds
  // it built.
  if (copy.endsWith('.ts')) await buildBundles([copy])
  return copy
}

const env = () => ({ MQTT_URL: broker.url })
const launch = (script: string, args: string[] = []) => {
  const program = start(script, args, env())
  running.push(program)
  return program
}
const run = async (script: string, args: string[] = []) => {
  const result = await runScript(script, args, env())
  expect(result.code, `${script} ${args.join(' ')}: ${result.stderr}`).toBe(0)
  return result
}
/** What the page says the terminal prints: ports as the page writes them (1883), normalised. */
const expectAnswer = (answer: string, printed: string) =>
  expect(normalise(printed.trimEnd().replaceAll(broker.url, 'mqtt://127.0.0.1:1883'))).toBe(
    normalise(answer),
  )

describe('the change each page asks the reader to try', () => {
  it(
    'docs/01-basic-pubsub.md: a topic with capitals is another topic, so the subscriber gets ' +
      'nothing of it',
    async () => {
      const { file, change, answer } = tryOf('docs/01-basic-pubsub.md')
      const publisher = await changed(file, change)
      const subscriber = launch('demos/basic-pubsub/subscriber.ts')
      await subscriber.waitForLine('subscribed to my_topic')
      expect((await run(publisher)).stdout).toContain('published "on" to My_Topic')
      // The same connection order, the same topic as the subscriber: what it prints first proves
      // the rest.
      await run(publisher, ['--topic', 'my_topic'])
      await subscriber.waitForLine('my_topic on')
      expectAnswer(answer, subscriber.stdout)
    },
  )

  it(
    'docs/02-ephemeral.md: at QoS 0 nothing is queued for a session that is away, though the ' +
      'session is kept',
    async () => {
      const { file, change, answer } = tryOf('docs/02-ephemeral.md')
      const publisher = await changed(file, change)
      const away = launch('demos/ephemeral/subscriber.ts', ['--id', 'try-alice'])
      await away.waitForLine('subscribed to my_topic (QoS 1)')
      away.child.kill('SIGINT')
      await away.finish()
      await run(publisher, ['--message', 'while away'])
      const back = launch('demos/ephemeral/subscriber.ts', ['--id', 'try-alice'])
      await back.waitForLine('subscribed to my_topic (QoS 1)')
      await run(publisher, ['--message', 'back'])
      await back.waitForLine('my_topic back')
      expectAnswer(answer, back.stdout)
      // End the session, as the page asks.
      const clean = launch('demos/ephemeral/subscriber.ts', ['--id', 'try-alice', '--clean'])
      await clean.waitForLine('subscribed to my_topic')
    },
  )

  it(
    'docs/03-retained.md: a message without the retain flag leaves the retained one in ' + 'place',
    async () => {
      const { file, change, answer } = tryOf('docs/03-retained.md')
      try {
        await run(file)
        const publisher = await changed(file, change)
        const off = await run(publisher, ['--message', 'off'])
        expect(off.stdout).toContain('published "off" to my_topic\n')
        const subscriber = launch('demos/retained/subscriber.ts')
        await subscriber.waitForLine('my_topic on (retained)')
        // A marker after it, on the same topic from one connection: nothing else was retained.
        await run(file, ['--no-retain', '--message', 'marker'])
        await subscriber.waitForLine('my_topic marker')
        expectAnswer(answer, subscriber.stdout.replace('my_topic marker\n', ''))
      } finally {
        await clearRetained(['my_topic'])
      }
    },
  )

  it(
    'docs/04-wildcards.md: home/+ gets none of the five topics of step 2, which all have ' +
      'another number of levels',
    async () => {
      const { file, change, answer } = tryOf('docs/04-wildcards.md')
      const subscriber = launch(await changed(file, change))
      await subscriber.waitForLine('subscribed to home/+ (QoS 0)')
      await run('demos/wildcards/publisher.ts')
      for (const topic of ['home/living_room/tv', 'home/bedroom/light', 'home', 'home//light']) {
        await run('demos/wildcards/publisher.ts', ['--topic', topic])
      }
      await run('demos/wildcards/publisher.ts', ['--topic', 'home/kitchen'])
      await subscriber.waitForLine('home/kitchen on')
      expectAnswer(answer, subscriber.stdout)
    },
  )

  it(
    'docs/05-discovery.md: C18: homeassistant/device/+/config discovers the devices that send a ' +
      'device config, and not an entity announced on its own',
    async () => {
      const { file, change, answer } = tryOf('docs/05-discovery.md')
      const device = 'demos/discovery/publisher.ts'
      const listener = launch(await changed(file, change))
      await listener.waitForLine('the birth message')
      try {
        await launch(device).waitForLine('listening for Home Assistant')
        await listener.waitForLine('Kitchen temperature state 21.5 °C (retained)')
        await launch(device, [
          '--node',
          'living_room',
          '--components',
          'temperature',
          '--per-component',
        ]).waitForLine('listening for Home Assistant')
        // The hall comes after the living room: what the listener prints before it proves the rest.
        await launch(device, ['--node', 'hall', '--components', 'light']).waitForLine(
          'listening for Home Assistant',
        )
        await listener.waitForLine('Hall light state ON (retained)')
        expectAnswer(answer, listener.stdout)
      } finally {
        // Ctrl-C: each device says "offline" itself, and the broker drops its will, before the
        // clean-up.
        for (const program of running.splice(0)) {
          program.child.kill('SIGINT')
          await program.finish().catch(() => undefined)
        }
        await clearRetained([
          'homeassistant/device/kitchen/config',
          'home/kitchen/availability',
          'home/kitchen/light',
          'home/kitchen/temperature',
          'homeassistant/sensor/living_room/temperature/config',
          'home/living_room/availability',
          'home/living_room/temperature',
          'homeassistant/device/hall/config',
          'home/hall/availability',
          'home/hall/light',
        ])
      }
    },
  )
})

/**
 * The broker of these tests is one for all: a message a test leaves retained is cleared at its end.
 */
async function clearRetained(topics: string[]): Promise<void> {
  const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 })
  for (const topic of topics) await client.publishAsync(topic, '', { qos: 1, retain: true })
  await client.endAsync()
}
