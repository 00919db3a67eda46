// The stage view in a real browser (Debian's Chromium, driven by playwright-core) at a projector's
// 1280×720: a scripted play pushed through the server's own API (scenarios/stage/stage-view.ts)
// draws every packet in order with its steps and ticks; a page opened in the middle catches up; a
// page waiting for the show says so; a burst grows in place and pings fold; the page follows the
// newest step until the speaker scrolls back; the lifelines' names, the mqtt5 show's 16 or more,
// stay whole, apart and clear of the step's band. Screenshots go to a temporary folder that is
// deleted afterwards, or to $STAGE_VIEW_SCREENSHOTS to keep and look at them.
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StageView } from '../../scenarios/stage/stage-view.ts'
import type { TraceEntry } from '../../scenarios/stage/trace.ts'
import { HUNG_MS } from '../../scenarios/stage/waiter.ts'
import { burstPlay, lifelinesPlay, MQTT5_LIFELINES, refusalPlay, retainedPlay } from './plays.ts'
import {
  CHROMIUM,
  drawn,
  expectedOf,
  launchChromium,
  lifelineNames,
  newPage,
  overlap,
  pageErrors,
  smallestText,
} from './drawing.ts'

/** Push entries as a stage makes them: a few at a time, with the event loop turning between. */
async function play(view: StageView, entries: TraceEntry[]): Promise<void> {
  for (const [i, entry] of entries.entries()) {
    view.add(entry)
    if (i % 3 === 2) await new Promise((resolve) => setImmediate(resolve))
  }
}

/** Scroll the page to `y`, and let it draw a frame there. */
function scrollTo(page: Page, y: number): Promise<void> {
  return page.evaluate(
    (top) =>
      new Promise<void>((resolve) => {
        document.scrollingElement!.scrollTop = top
        requestAnimationFrame(() => requestAnimationFrame(() => resolve()))
      }),
    y,
  )
}

/** The names in view that a step's band covers or that something else covers, as sentences. */
async function hiddenNames(page: Page): Promise<string[]> {
  const { names, bands } = await lifelineNames(page)
  return names.flatMap((name) => [
    ...(bands.some((band) => overlap(band, name.box)) ? [`${name.text} meets a step's band`] : []),
    ...(name.onTop ? [] : [`${name.text} is drawn over`]),
  ])
}

const inBrowser = existsSync(CHROMIUM) ? describe : describe.skip

inBrowser('the stage view in Chromium, with a scripted play', () => {
  let browser: Browser
  let shots: string
  const views: StageView[] = []

  beforeAll(async () => {
    browser = await launchChromium()
    shots = process.env.STAGE_VIEW_SCREENSHOTS ?? (await mkdtemp(join(tmpdir(), 'stage-view-')))
    await mkdir(shots, { recursive: true })
  })
  afterAll(async () => {
    expect(pageErrors).toEqual([])
    await browser?.close()
    await Promise.all(views.map((v) => v.close()))
    if (!process.env.STAGE_VIEW_SCREENSHOTS) await rm(shots, { recursive: true, force: true })
  })

  async function open(): Promise<StageView> {
    const view = await StageView.open(0)
    views.push(view)
    return view
  }

  it(
    "draws every packet of the retained show's play in order, each step as a band, each tick " +
      'beside its arrow; no text under 20 px; the show over, it says so',
    async () => {
      const view = await open()
      const page = await newPage(browser, view.url)
      await expect.poll(() => page.locator('#status').textContent()).toContain('waiting')
      const entries = retainedPlay()
      await play(view, entries)
      await page.locator('.result').waitFor({ timeout: HUNG_MS })
      expect(await drawn(page)).toEqual(expectedOf(entries))
      expect(await page.locator('#status').textContent()).toBe('live')
      expect(await page.locator('#now').textContent()).toBe(
        'retained · step 8 of 8: Stop the subscribers',
      )
      expect(await smallestText(page)).toBeGreaterThanOrEqual(20)
      await page.screenshot({ path: join(shots, 'stage-view-retained-end.png') })
      await page.mouse.wheel(0, -(await page.evaluate(() => document.body.scrollHeight)))
      await expect.poll(() => page.locator('#follow').isVisible()).toBe(true)
      await page.screenshot({ path: join(shots, 'stage-view-retained-start.png') })
      // The show ends, and its server with it: the page says so, and keeps the diagram.
      await view.close()
      await expect.poll(() => page.locator('#status').textContent()).toBe('the show has ended')
      expect(await drawn(page)).toEqual(expectedOf(entries))
    },
  )

  it(
    'a page opened in the middle of a play catches up, and draws what one open from the start ' +
      'does',
    async () => {
      const view = await open()
      const early = await newPage(browser, view.url)
      const entries = retainedPlay()
      const half = entries.length >> 1
      await play(view, entries.slice(0, half))
      const late = await newPage(browser, view.url)
      await play(view, entries.slice(half))
      for (const page of [early, late]) await page.locator('.result').waitFor({ timeout: HUNG_MS })
      expect(await drawn(late)).toEqual(expectedOf(entries))
      const html = (page: Page) => page.locator('#plays').innerHTML()
      expect(await html(late)).toBe(await html(early))
    },
  )

  it(
    'says it is connecting before its feed answers, and that the show is starting before the ' +
      'first play',
    async () => {
      const view = await open()
      const page = await browser.newPage({ viewport: { width: 1280, height: 720 } })
      // The feed never answers: as a page opened while the show is still starting its server.
      await page.route('**/feed', () => undefined)
      await page.goto(view.url)
      await expect.poll(() => page.locator('#status').getAttribute('data-state')).toBe('connecting')
      expect(await page.locator('#status').textContent()).toBe('connecting to the show…')
      expect(await page.locator('#waiting').textContent()).toBe('Connecting to the show…')
      await page.screenshot({ path: join(shots, 'stage-view-connecting.png') })
      await page.unroute('**/feed')
      await page.reload()
      await expect.poll(() => page.locator('#status').getAttribute('data-state')).toBe('waiting')
      expect(await page.locator('#waiting').textContent()).toBe('Connected: the show is starting…')
      expect(await page.locator('.play').count()).toBe(0)
      await page.close()
    },
  )

  it(
    'a burst grows in place (one arrow, ×1000), pings fold into one mark, a will and a kill are ' +
      'drawn as such',
    async () => {
      const view = await open()
      const page = await newPage(browser, view.url)
      const { first, growth, rest } = burstPlay()
      await play(view, first)
      await page.locator('.arrow.publish').first().waitFor({ timeout: HUNG_MS })
      const rows = await page.locator('.row').count()
      for (const entry of growth) {
        view.add(entry)
        const count = (entry as { count: number }).count
        await expect
          .poll(() => page.locator('.publish .count').first().textContent())
          .toBe(`×${count}`)
      }
      expect(await page.locator('.row').count(), 'no row added by the burst').toBe(rows)
      await play(view, rest)
      await page.locator('.result').waitFor({ timeout: HUNG_MS })
      expect(await page.locator('.arrow.pings').count()).toBe(1)
      expect(await page.locator('.arrow.pings .label').textContent()).toBe(
        'keepalive: PINGREQ, PINGRESP ×3',
      )
      expect(await page.locator('.act-will .label').textContent()).toBe(
        'Last Will PUBLISH home/sensor "offline" q0',
      )
      expect(await page.locator('.end.kill').textContent()).toBe('✕ killed')
      await page.screenshot({ path: join(shots, 'stage-view-burst.png') })
      // The server keeps the burst's last count only: a page opened now draws the same.
      const late = await newPage(browser, view.url)
      await late.locator('.result').waitFor({ timeout: HUNG_MS })
      expect(await late.locator('#plays').innerHTML()).toBe(
        await page.locator('#plays').innerHTML(),
      )
    },
  )

  it(
    'a connection refused in its TLS handshake is an arrow from the program that ends in a cross ' +
      "on the broker's lifeline, with why, its tick beside it",
    async () => {
      const view = await open()
      const page = await newPage(browser, view.url)
      const entries = refusalPlay()
      await play(view, entries)
      await page.locator('.result').waitFor({ timeout: HUNG_MS })
      expect(await drawn(page)).toEqual(expectedOf(entries))
      expect(await page.locator('.arrow.refusal .label').allTextContents()).toEqual([
        'refused TLS handshake failed: the client hung up',
        'refused TLS handshake failed: the client hung up',
        'refused not TLS',
        'refused no client certificate',
      ])
      expect(await smallestText(page)).toBeGreaterThanOrEqual(20)
      // Each line spans the two lifelines, and ends in a cross where the broker's is, on the left.
      const drawnAs = await page.evaluate(() => {
        const centre = (e: Element) => {
          const box = e.getBoundingClientRect()
          return Math.round(box.left + box.width / 2)
        }
        const heads = new Map(
          [...document.querySelectorAll('.heads .head')].map((h) => [h.textContent, centre(h)]),
        )
        return [...document.querySelectorAll('.arrow.refusal')].map((row) => {
          const line = row.querySelector('.line')!
          const box = line.getBoundingClientRect()
          return {
            from: Math.round(box.right),
            to: Math.round(box.left),
            broker: heads.get('broker'),
            heads: [...heads.values()],
            cross: getComputedStyle(line, '::before').content,
            head: getComputedStyle(line, '::after').content,
          }
        })
      })
      for (const arrow of drawnAs) {
        expect(Math.abs(arrow.to - arrow.broker!), 'ends on the broker').toBeLessThanOrEqual(2)
        expect(
          arrow.heads.some((x) => Math.abs(arrow.from - x) <= 2 && x !== arrow.broker),
          'starts on a program',
        ).toBe(true)
        expect(arrow.cross).toBe('"✖"')
        expect(arrow.head).toBe('none')
      }
      await page.screenshot({ path: join(shots, 'stage-view-refusals.png') })
    },
  )

  it(
    'a new play starts a new diagram below the last, which stays reachable, and drops the ' +
      "last one's links; against MQTT_URL the page says what it cannot see",
    async () => {
      const view = await open()
      const page = await newPage(browser, view.url)
      const { first, growth, rest } = burstPlay()
      await play(view, [...first, ...growth, ...rest])
      view.link('Device cards', 'http://127.0.0.1:9/')
      await page.locator('.links a', { hasText: 'Device cards ↗' }).waitFor({ timeout: HUNG_MS })
      const unseen =
        'Against MQTT_URL the broker is not ours: acknowledgements, pings and its own acts are ' +
        'not seen.'
      const retained = retainedPlay().map((e) =>
        e.kind === 'play' ? { ...e, source: 'programs' as const, unseen } : e,
      )
      await play(view, retained)
      await page.locator('.play:nth-of-type(2) .result').waitFor({ timeout: HUNG_MS })
      expect(await page.locator('.play h2').allTextContents()).toEqual(['wire', 'retained'])
      expect(await drawn(page)).toEqual(expectedOf(retained))
      expect(await page.locator('.play').first().locator('.result').textContent()).toBe(
        '✓ wire: every expectation met',
      )
      expect(await page.locator('.play').nth(1).locator('.unseen').textContent()).toBe(unseen)
      // The first play's page ended with it.
      expect(await page.locator('.links a').count()).toBe(0)
      await page.evaluate(() => document.querySelectorAll('.play')[1]!.scrollIntoView())
      await page.screenshot({ path: join(shots, 'stage-view-second-play-unseen.png') })
    },
  )

  it('follows the newest step; scrolled back, it stays there until F is pressed', async () => {
    const view = await open()
    const page = await newPage(browser, view.url)
    const entries = retainedPlay()
    const result = entries.pop()!
    await play(view, entries)
    await page.locator('[data-step="8"]').waitFor({ timeout: HUNG_MS })
    const atEnd = () =>
      page.evaluate(() => {
        const s = document.scrollingElement!
        return s.scrollHeight - s.scrollTop - s.clientHeight < 8
      })
    await expect.poll(atEnd).toBe(true)
    expect(await page.locator('[data-step="8"]').isVisible()).toBe(true)
    await page.mouse.wheel(0, -2000)
    await expect.poll(() => page.locator('#follow').isVisible()).toBe(true)
    const scrolled = await page.evaluate(() => document.scrollingElement!.scrollTop)
    view.add(result)
    await page.locator('.result').waitFor({ state: 'attached', timeout: HUNG_MS })
    expect(await page.evaluate(() => document.scrollingElement!.scrollTop)).toBe(scrolled)
    await page.screenshot({ path: join(shots, 'stage-view-scrolled-back.png') })
    await page.keyboard.press('f')
    await expect.poll(atEnd).toBe(true)
    expect(await page.locator('#follow').isVisible()).toBe(false)
    expect(await page.locator('.result').isVisible()).toBe(true)
  })

  it(
    "names a lifeline that starts mid-step in the rows of names, never under the step's band: " +
      'as it starts, and as the speaker scrolls its start under the band',
    async () => {
      const view = await open()
      const page = await newPage(browser, view.url)
      const entries = retainedPlay()
      // The stage's own client starts in the middle of step 3, after nine of its rows.
      const starts = entries.findIndex((e) => e.kind === 'lifeline' && e.id === 'stage') + 1
      await play(view, entries.slice(0, starts))
      await page.locator('.row.starts').last().waitFor({ timeout: HUNG_MS })
      const its = (await page.locator('.row.starts').count()) - 1
      const named = async () => (await lifelineNames(page)).names.map((n) => n.text)
      expect(await named()).toContain('stage')
      expect(await hiddenNames(page)).toEqual([])
      // What started in this step is marked as new: the stage's client, subscriber-1 again.
      expect(await page.locator('.heads .head.new').allTextContents()).toEqual([
        'subscriber-1',
        'stage',
      ])
      await page.screenshot({ path: join(shots, 'stage-view-lifeline-starts.png') })
      await play(view, entries.slice(starts))
      await page.locator('.result').waitFor({ timeout: HUNG_MS })
      expect(await page.locator('.heads .head.new').count()).toBe(0)
      const start = await page.evaluate(
        (i) => document.querySelectorAll('.row.starts')[i]!.getBoundingClientRect().top + scrollY,
        its,
      )
      // Its start from below the band to above it, 12 px at a time: the band sticks meanwhile.
      for (let y = 260; y >= 40; y -= 12) {
        await scrollTo(page, start - y)
        expect(await named(), `its start ${y} px from the top`).toContain('stage')
        expect(await hiddenNames(page), `its start ${y} px from the top`).toEqual([])
        if (y === 140)
          await page.screenshot({ path: join(shots, 'stage-view-start-under-band.png') })
      }
    },
  )

  it(
    "lays out the names of the mqtt5 show's 16 lifelines, and of 20, in rows: each whole, none " +
      'over another, none cut by the edge of the page, all above the first step',
    async () => {
      const more = ['subscriber-3', 'subscriber-4', 'requester-2', 'responder-2']
      for (const labels of [MQTT5_LIFELINES, [...MQTT5_LIFELINES, ...more]]) {
        const view = await open()
        const page = await newPage(browser, view.url)
        await play(view, lifelinesPlay(labels))
        await page.locator('.result').waitFor({ timeout: HUNG_MS })
        await scrollTo(page, 0)
        const { names, heads, bands } = await lifelineNames(page)
        const width = page.viewportSize()!.width
        expect(names.map((n) => n.text)).toEqual(expect.arrayContaining(labels))
        expect(names).toHaveLength(labels.length)
        for (const [i, { text, box, whole, onTop }] of names.entries()) {
          expect({ text, whole, onTop }).toEqual({ text, whole: true, onTop: true })
          expect(box.left, text).toBeGreaterThanOrEqual(0)
          expect(box.right, text).toBeLessThanOrEqual(width)
          expect(box.top, text).toBeGreaterThanOrEqual(heads.top)
          expect(box.bottom, text).toBeLessThanOrEqual(heads.bottom)
          for (const other of names.slice(i + 1))
            expect(overlap(box, other.box), `${text} and ${other.text}`).toBe(false)
        }
        expect(bands.length).toBe(1)
        expect(bands[0]!.top).toBeGreaterThanOrEqual(heads.bottom)
        expect(await smallestText(page)).toBeGreaterThanOrEqual(20)
        await page.screenshot({ path: join(shots, `stage-view-${labels.length}-lifelines.png`) })
        await page.close()
      }
    },
  )
})
