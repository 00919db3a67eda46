// A real show and its stage view: the retained show played with --step in a pseudo-terminal (as a
// speaker plays it, so that it waits at its last prompt with the page still served), its page open
// in Chromium from the start, and the feed read beside it: the page draws each step and every
// packet of the trace the show sent, in order. And the server around it: a port in use costs one
// line, and it answers only on this machine, to its own address.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { request } from 'node:http'
import { createServer } from 'node:net'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from '../../lib/build-cache.ts'
import { programArgs } from '../../scenarios/stage/bundle.ts'
import { shellQuote } from '../../scenarios/stage/proc.ts'
import { StageView } from '../../scenarios/stage/stage-view.ts'
import { expectOneLineError, Program, runScript } from '../helpers/processes.ts'
import { CHROMIUM, drawn, expectedOf, launchChromium, newPage, pageErrors } from './drawing.ts'
import { Feed } from './feed.ts'

/** One wait in a show: past the minute a show itself waits for anything before it fails. */
const STEP_MS = 90_000

/** The show of `scenario` from its bundle, with `args`, in a pseudo-terminal 80 columns wide. */
function inTerminal(scenario: string, args: string[]): Program {
  const command = [process.execPath, ...programArgs(`scenarios/${scenario}.ts`), ...args]
    .map(shellQuote)
    .join(' ')
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' }
  delete env.MQTT_URL
  const child = spawn(
    '/usr/bin/script',
    ['-qfec', `stty cols 80 rows 50; exec ${command}`, '/dev/null'],
    { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] },
  )
  return new Program(child, `${scenario} ${args.join(' ')}`)
}

const inBrowser = existsSync(CHROMIUM) ? describe : describe.skip

inBrowser('the stage view of a real show', () => {
  let browser: Browser
  beforeAll(async () => {
    browser = await launchChromium()
  })
  afterAll(async () => {
    expect(pageErrors).toEqual([])
    await browser?.close()
  })

  it(
    'npm run demo:retained -- --step --dashboard-port 0: the page, open from before step 1, ' +
      'draws each step and every packet of the trace, in order',
    async () => {
      const show = inTerminal('retained', ['--step', '--dashboard-port', '0'])
      try {
        const banner = await show.waitForLine('Stage view: ')
        const url = banner.match(/http:\/\/127\.0\.0\.1:\d+\//)![0]
        const feed = new Feed(url)
        const page = await newPage(browser, url)
        // Enter at each prompt, once it is there: keys typed before a prompt are dropped.
        let from = 0
        for (;;) {
          const prompt = await show.waitForLine('Enter: ', STEP_MS, from)
          from = show.stdout.length
          if (prompt.includes('Enter: end the show')) break
          show.child.stdin!.write('\r')
        }
        const steps = new Set(show.stdout.match(/^Step \d+\./gm)).size
        expect(steps).toBe(8)
        // The page and this test's own feed of the trace are two listeners: either may be the
        // later to hear the last entries, so both are read again until they agree.
        await expect
          .poll(async () => ({ page: await drawn(page), feed: expectedOf(feed.entries) }))
          .toSatisfy((seen) => JSON.stringify(seen.page) === JSON.stringify(seen.feed))
        // The stage sends the trace once it records it (scenarios/stage/trace.ts): then a band
        // per step the terminal showed.
        const traced = feed.entries.some((e) => e.kind === 'play')
        expect(await page.locator('[data-step]').count()).toBe(traced ? steps : 0)
        expect(await page.locator('#status').getAttribute('data-state')).toBe(
          traced ? 'live' : 'waiting',
        )
        show.child.stdin!.write('\r')
        const result = await show.finish(STEP_MS)
        expect(result.code, result.stdout).toBe(0)
        await feed.ended()
        await expect
          .poll(() => page.locator('#status').getAttribute('data-state'))
          .not.toBe(traced ? 'live' : 'waiting')
      } finally {
        show.child.kill('SIGKILL')
      }
    },
  )
})

describe("the stage view's server", () => {
  it('a show whose port is in use says so in one line, exit 1', async () => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    const port = (taken.address() as { port: number }).port
    try {
      const result = await runScript('scenarios/retained.ts', ['--dashboard-port', String(port)])
      expectOneLineError(
        result,
        new RegExp(`^error: --dashboard-port ${port}: that port is in use .*; stop it, or pass`),
      )
      expect(result.stdout).toBe('')
    } finally {
      taken.close()
    }
  })

  it('listens on 127.0.0.1 only, and answers only requests addressed to it there', async () => {
    const view = await StageView.open(0)
    try {
      expect(view.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/)
      expect((await fetch(view.url)).status).toBe(200)
      // A page elsewhere that names itself with our address (DNS rebinding) is turned away.
      const status = await new Promise<number | undefined>((resolve, reject) =>
        request(view.url, { headers: { host: `example.com:${view.port}` } }, (res) => {
          res.resume()
          resolve(res.statusCode)
        })
          .on('error', reject)
          .end(),
      )
      expect(status).toBe(421)
      expect((await fetch(new URL('secret.txt', view.url))).status).toBe(404)
    } finally {
      await view.close()
    }
  })
})
