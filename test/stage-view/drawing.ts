// What the stage view's tests read of its page, and what they expect it to draw: the page's rows
// as lines of text (a band per step, an arrow per packet with the ticks beside it), the same lines
// made from a trace, the smallest text on screen, which a room must read from the back, and where
// the lifelines' names are, which must be whole, apart, and never under a step's band.
import { chromium, type Browser, type Page } from 'playwright-core'
import type { PacketEntry, TraceEntry } from '../../scenarios/stage/trace.ts'

export const CHROMIUM = '/usr/bin/chromium'

/**
 * Debian's Chromium with the flags the machine's notes ask for: no sandbox (root), no GPU, and no
 * background traffic to Google, which a closed network refuses.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
}

/** Errors thrown by the scripts of the pages that newPage() opened: none, in a passing run. */
export const pageErrors: string[] = []

/** A page at a projector's 1280×720 on `url`. */
export async function newPage(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } })
  page.on('pageerror', (error) => pageErrors.push(error.message))
  await page.goto(url)
  return page
}

/**
 * The diagram of the newest play, row by row: `step N: step N of S | title`, `packet SEQ: label`
 * (a refused connection's too), `tick after SEQ: ✓ text` beside an arrow, `tick: ✓ text` on a row
 * of its own, `result: text`.
 */
export function drawn(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const lines: string[] = []
    const text = (element: Element | null) => element?.textContent ?? ''
    const play = [...document.querySelectorAll('.play')].at(-1)
    for (const row of play?.querySelectorAll('.row') ?? []) {
      const { step, seq } = (row as HTMLElement).dataset
      if (step)
        lines.push(
          `step ${step}: ${text(row.querySelector('.step-count'))} | ` +
            text(row.querySelector('.step-title')),
        )
      else if (seq) {
        lines.push(`packet ${seq}: ${text(row.querySelector('.label'))}`)
        for (const tick of row.querySelectorAll('.tick'))
          lines.push(`tick after ${seq}: ${text(tick)}`)
      } else if (row.classList.contains('ticked')) lines.push(`tick: ${text(row)}`)
      else if (row.classList.contains('result')) lines.push(`result: ${text(row)}`)
    }
    return lines
  })
}

const ACTS = { will: 'Last Will', retained: 'retained copy', nobody: 'reaches no one' }
const PINGS = new Set(['pingreq', 'pingresp'])

/**
 * What drawn() should read for the newest play of `entries`: each packet once, as its last entry
 * with that seq says, keepalive pings one after the other between the same two folded into one.
 */
export function expectedOf(entries: TraceEntry[]): string[] {
  const start = entries.findLastIndex((e) => e.kind === 'play')
  const play = entries.slice(start)
  const steps = play[0]?.kind === 'play' ? play[0].steps : 0
  const last = new Map<number, PacketEntry>()
  for (const e of play) if (e.kind === 'packet') last.set(e.seq, e)
  /** Lines per drawn row, and the row each seq is drawn in. */
  const rows: string[][] = []
  const rowOf = new Map<number, { lines: string[]; seqs: number[]; pings?: Map<number, number> }>()
  let pingRow: { pair: string; row: NonNullable<ReturnType<typeof rowOf.get>> } | undefined
  let packets = false
  for (const e of play) {
    if (e.kind === 'packet') {
      packets = true
      if (rowOf.has(e.seq)) continue
      const entry = last.get(e.seq)!
      if (PINGS.has(entry.type)) {
        const pair = [entry.from, entry.to].sort().join(' ')
        if (pingRow?.pair !== pair) {
          const row = { lines: [''], seqs: [], pings: new Map() }
          rows.push(row.lines)
          pingRow = { pair, row }
        }
        const row = pingRow.row
        row.seqs.push(entry.seq)
        row.pings!.set(entry.seq * (entry.type === 'pingreq' ? 1 : -1), entry.count)
        rowOf.set(entry.seq, row)
        const counts = [...row.pings!]
        const requests = counts.filter(([s]) => s > 0).reduce((sum, [, n]) => sum + n, 0)
        const responses = counts.filter(([s]) => s < 0).reduce((sum, [, n]) => sum + n, 0)
        const rounds = Math.max(requests, responses)
        row.lines[0] =
          `packet ${row.seqs.join(' ')}: keepalive: PINGREQ, PINGRESP` +
          (rounds > 1 ? ` ×${rounds}` : '')
        continue
      }
      const act = entry.act ? ACTS[entry.act] : ''
      const label =
        entry.act === 'nobody' ? `${entry.text} ${act}` : act ? `${act} ${entry.text}` : entry.text
      const count = entry.count > 1 ? ` ×${entry.count}` : ''
      const row = { lines: [`packet ${entry.seq}: ${label}${count}`], seqs: [entry.seq] }
      rows.push(row.lines)
      rowOf.set(entry.seq, row)
    } else if (e.kind === 'refusal') {
      packets = true
      const row = { lines: [`packet ${e.seq}: refused ${e.reason}`], seqs: [e.seq] }
      rows.push(row.lines)
      rowOf.set(e.seq, row)
    } else if (e.kind === 'tick') {
      const row = e.after === undefined ? undefined : rowOf.get(e.after)
      if (row) {
        row.lines.push(`tick after ${row.seqs.join(' ')}: ✓ ${e.text}`)
        continue
      }
      rows.push([`tick: ✓ ${e.text}`])
    } else if (e.kind === 'step')
      rows.push([`step ${e.number}: step ${e.number} of ${steps} | ${e.title}`])
    else if (e.kind === 'result') rows.push([`result: ${e.ok ? '✓' : '✗'} ${e.text}`])
    else if (e.kind === 'lifeline' && !packets) continue
    else if (e.kind === 'play') continue
    pingRow = undefined
  }
  return rows.flat()
}

/** The size in px of the smallest text on screen. */
export function smallestText(page: Page): Promise<number> {
  return page.evaluate(() => {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT)
    let smallest = Number.POSITIVE_INFINITY
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const parent = node.parentElement
      if (!node.textContent?.trim() || !parent || parent.getClientRects().length === 0) continue
      smallest = Math.min(smallest, Number.parseFloat(getComputedStyle(parent).fontSize))
    }
    return smallest
  })
}

/** A box on screen, in CSS pixels from the top left corner of the viewport. */
export interface Box {
  left: number
  top: number
  right: number
  bottom: number
}

export const overlap = (a: Box, b: Box) =>
  a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom

/** A name of a lifeline in view, as lifelineNames() finds it. */
export interface Name {
  text: string
  box: Box
  /** Its text is all there, not cut short by an ellipsis. */
  whole: boolean
  /** Nothing is drawn over its middle: it is what the room sees there. */
  onTop: boolean
}

/**
 * The names of the lifelines of the newest play that are in view: the rows of names, and any
 * element in the diagram that says nothing but one of them; with the boxes of the rows of names and
 * of the step bands in view below them.
 */
export function lifelineNames(page: Page): Promise<{ names: Name[]; heads: Box; bands: Box[] }> {
  return page.evaluate(() => {
    const box = (element: Element) => {
      const { left, top, right, bottom } = element.getBoundingClientRect()
      return { left, top, right, bottom }
    }
    const inView = (b: ReturnType<typeof box>) =>
      b.bottom > 0 && b.top < innerHeight && b.right > b.left && b.bottom > b.top
    const play = [...document.querySelectorAll('.play')].at(-1)!
    const named = [...play.querySelectorAll('.heads .head')]
    const labels = new Set(named.map((head) => head.textContent))
    const said = [...play.querySelectorAll('.rows *')].filter(
      (e) => e.children.length === 0 && labels.has(e.textContent),
    )
    const names = [...named, ...said].flatMap((element) => {
      const b = box(element)
      if (!inView(b)) return []
      const hit = document.elementFromPoint((b.left + b.right) / 2, (b.top + b.bottom) / 2)
      return [
        {
          text: element.textContent ?? '',
          box: b,
          whole: element.scrollWidth <= element.clientWidth,
          onTop: hit !== null && element.contains(hit),
        },
      ]
    })
    // A band pushed out by the next one passes under the rows of names: what is seen of it.
    const heads = box(play.querySelector('.heads')!)
    const bands = [...play.querySelectorAll('.row.step')]
      .map((band) => ({ ...box(band), top: Math.max(box(band).top, heads.bottom) }))
      .filter(inView)
    return { names, heads, bands }
  })
}
