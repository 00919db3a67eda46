// npm run pictures: the pictures README.md opens with, made from a real play, so that they are made
// again when the shows change rather than drawn by hand. It plays a show with --step in tmux at 80
// columns, answers its prompts up to a step, and takes the same moment twice at 1280×720: the stage
// view in the tests' Chromium, and the terminal (tmux capture-pane -e, drawn as HTML).
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { $ } from 'zx'
import { ROOT } from '../../lib/build-cache.ts'
import { fail } from '../../lib/cli.ts'
import { parseFlags } from '../../lib/parse-flags.ts'
import { inSeconds } from '../../scenarios/stage/waiter.ts'
import { Feed } from './feed.ts'
import { launchChromium } from './drawing.ts'

const IMAGES = join(ROOT, 'docs', 'images')
/** One wait: past the minute a show itself waits for anything before it fails. */
const WAIT_MS = 90_000

/** The 16 colours of a terminal, as ours are painted on a projector: bright on black. */
const COLOURS = [
  '#000000',
  '#ff7b72',
  '#7ee787',
  '#ffd866',
  '#79c0ff',
  '#d2a8ff',
  '#56d4dd',
  '#e6e6e6',
  '#8b949e',
  '#ff7b72',
  '#7ee787',
  '#ffd866',
  '#79c0ff',
  '#d2a8ff',
  '#56d4dd',
  '#ffffff',
]

const { values } = parseFlags(
  {
    invocation: 'npm run pictures --',
    description:
      'Play a show in tmux and take the stage view and the terminal at the same moment, as PNGs ' +
      'in docs/images/.',
  },
  {
    show: { type: 'string', arg: 'NAME', help: 'the show to play (default retained)' },
    step: {
      type: 'string',
      arg: 'N',
      help: 'take the pictures once step N has played (default 5)',
    },
  },
)
const show = values.show ?? 'retained'
const step = Number(values.step ?? '5')
if (!/^[a-z0-9-]+$/.test(show)) fail(`--show must name a show, like retained, not ${show}`)
if (!Number.isInteger(step) || step < 1) fail(`--step must be a step number from 1 on`)

$.quiet = true
// A tmux server of our own, so that the speaker's sessions are neither seen nor touched.
const tmux = (args: string[]) => $`tmux -L ${`mqtt-by-example-pictures-${process.pid}`} ${args}`
const pane = async () => (await tmux(['capture-pane', '-p', '-e', '-t', 'show'])).stdout

/** Look at the pane until `found` returns something; fails after WAIT_MS. */
async function waitInPane<T>(what: string, found: (text: string) => T | undefined): Promise<T> {
  const until = performance.now() + WAIT_MS
  for (;;) {
    const text = await pane().catch(() => '')
    const result = found(text.replace(/\x1b\[[\d;]*m/g, ''))
    if (result !== undefined) return result
    if (performance.now() > until)
      fail(`the show did not show ${what} within ${inSeconds(WAIT_MS)}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

const browser = await launchChromium()
try {
  await tmux([
    'new-session',
    '-d',
    '-s',
    'show',
    '-x',
    '80',
    '-y',
    '24',
    '-c',
    ROOT,
    `NO_COLOR= npm run --silent demo:${show} -- --step --dashboard-port 0`,
  ])
  const url = await waitInPane('its stage view', (text) =>
    text.match(/Stage view: (http:\/\/127\.0\.0\.1:\d+\/)/)?.at(1),
  )
  const feed = new Feed(url)
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } })
  await page.goto(url)
  for (let answered = 1; answered <= step; answered++) {
    await waitInPane(`the prompt of step ${answered}`, (text) =>
      text.includes(`Enter: step ${answered},`) ? true : undefined,
    )
    await tmux(['send-keys', '-t', 'show', 'Enter'])
  }
  await waitInPane(`the end of step ${step}`, (text) =>
    /Enter: (step \d+,|end)/.test(text) && !text.includes(`Enter: step ${step},`)
      ? true
      : undefined,
  )
  const packets = feed.entries.filter((e) => e.kind === 'packet').length
  // A diagram without arrows is no picture of the show: keep the pictures there are.
  if (packets === 0)
    fail(
      `the stage sent its stage view no packet by step ${step} of ${show} ` +
        '(StageOptions.onTrace), so its picture would be an empty diagram; docs/images/ is left ' +
        'as it was',
    )
  await page.locator('#now').waitFor()
  await mkdir(IMAGES, { recursive: true })
  await page.screenshot({ path: join(IMAGES, `stage-view-${show}.png`) })
  const terminal = await browser.newPage({ viewport: { width: 1280, height: 720 } })
  await terminal.setContent(asHtml(await pane()))
  await terminal.screenshot({ path: join(IMAGES, `terminal-${show}.png`) })
  feed.close()
  console.log(
    `docs/images/stage-view-${show}.png and terminal-${show}.png: ${show} after step ${step}, ` +
      `${packets} packets in the stage view`,
  )
} finally {
  await tmux(['kill-server']).catch(() => undefined)
  await browser.close()
}

/** A terminal's screen with its colours (SGR codes: bold, the 16 colours), as an HTML page. */
function asHtml(screen: string): string {
  let bold = false
  let colour: string | undefined
  let html = ''
  for (const token of screen.match(/\x1b\[[\d;]*m|[^\x1b]+/g) ?? []) {
    if (!token.startsWith('\x1b')) {
      const text = token.replace(/&/g, '&amp;').replace(/</g, '&lt;')
      const style = `${bold ? 'font-weight:700;' : ''}${colour ? `color:${colour}` : ''}`
      html += style ? `<span style="${style}">${text}</span>` : text
      continue
    }
    for (const code of (token.slice(2, -1) || '0').split(';').map(Number)) {
      if (code === 0) [bold, colour] = [false, undefined]
      else if (code === 1) bold = true
      else if (code === 22) bold = false
      else if (code === 39) colour = undefined
      else if (code >= 30 && code <= 37) colour = COLOURS[code - 30]
      else if (code >= 90 && code <= 97) colour = COLOURS[code - 90 + 8]
    }
  }
  return (
    '<!doctype html><meta charset="utf-8"><style>body{margin:0;background:#0b0e14;' +
    'display:flex;justify-content:center;align-items:center;height:100vh}pre{margin:0;' +
    'font:24px/1.2 "DejaVu Sans Mono",monospace;color:#e6e6e6}</style>' +
    `<pre>${html}</pre>`
  )
}
