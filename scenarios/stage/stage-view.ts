// The stage view's server: every show serves, on its dashboard port and on 127.0.0.1 only, the page
// that draws its play as a live sequence diagram (./stage-view/page.ts), and the feed of the play's
// trace (./trace.ts) as server-sent events. A page opened late gets every entry so far, then each
// new one as the stage makes it; the show adds entries with add() and links other pages it serves
// (the discovery show's device cards) with link().
import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { bundleForBrowser } from '../../lib/build-cache.ts'
import type { TraceEntry } from './trace.ts'

const here = join(dirname(fileURLToPath(import.meta.url)), 'stage-view')

/** A page of the show beside the stage view, named on it. */
export interface PageLink {
  title: string
  url: string
}

/** One message of the feed: an entry of the trace, or a page to link. */
export type FeedMessage = { entry: TraceEntry } | { link: PageLink }

const HEADERS = {
  'cache-control': 'no-store',
  // The page runs only its own script and reads only its own feed.
  'content-security-policy': "default-src 'self'; img-src 'self' data:",
  'x-content-type-options': 'nosniff',
}

export class StageView {
  /**
   * Everything sent so far, for a page that opens late: a packet sent again with the same seq
   * replaces its earlier entry, so a burst of a thousand costs one message, not a thousand.
   */
  private readonly sent: FeedMessage[] = []
  /** Where the packet of each seq of the current play is in `sent`. */
  private packetAt = new Map<number, number>()
  private readonly feeds = new Set<ServerResponse>()
  private readonly server
  private files: Record<string, { type: string; body: Buffer }> = {}

  private constructor() {
    this.server = createServer((req, res) => this.answer(req, res))
  }

  /**
   * Serve the stage view on 127.0.0.1:`port` (0: a free port). It fails with a sentence a show can
   * print when the port is in use.
   */
  static async open(port: number): Promise<StageView> {
    const view = new StageView()
    const [html, css, script] = await Promise.all([
      readFile(join(here, 'page.html')),
      readFile(join(here, 'page.css')),
      bundleForBrowser(join(here, 'page.ts'), 'stage-view'),
    ])
    view.files = {
      '/': { type: 'text/html; charset=utf-8', body: html },
      '/page.css': { type: 'text/css; charset=utf-8', body: css },
      '/page.js': { type: 'text/javascript; charset=utf-8', body: script },
    }
    await new Promise<void>((resolve, reject) => {
      view.server.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          new Error(
            error.code === 'EADDRINUSE'
              ? `--dashboard-port ${port}: that port is in use (another show, or npm run ` +
                  'dashboard?); stop it, or pass another port (0: a free one)'
              : `cannot serve the stage view on 127.0.0.1:${port}: ${error.message}`,
          ),
        ),
      )
      view.server.listen(port, '127.0.0.1', resolve)
    })
    return view
  }

  /** The page's address. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/`
  }

  get port(): number {
    return (this.server.address() as { port: number }).port
  }

  /** An entry of the trace, as the stage makes it: kept, and sent to every open page. */
  add(entry: TraceEntry): void {
    if (entry.kind === 'play') {
      this.packetAt = new Map()
      // The pages of the play before end with it.
      const links = this.sent.filter((m) => 'link' in m)
      for (const link of links) this.sent.splice(this.sent.indexOf(link), 1)
    }
    const message = { entry }
    const at = entry.kind === 'packet' ? this.packetAt.get(entry.seq) : undefined
    if (at !== undefined) this.sent[at] = message
    else {
      if (entry.kind === 'packet') this.packetAt.set(entry.seq, this.sent.length)
      this.sent.push(message)
    }
    this.send(message)
  }

  /** Name another page of the play on the stage view, with a link to it, until the next play. */
  link(title: string, url: string): void {
    const message = { link: { title, url } }
    this.sent.push(message)
    this.send(message)
  }

  /** Stop serving, and end every open feed: the pages say that the show has ended. */
  close(): Promise<void> {
    for (const feed of this.feeds) feed.end()
    this.server.closeAllConnections()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }

  private send(message: FeedMessage): void {
    const data = `data: ${JSON.stringify(message)}\n\n`
    for (const feed of this.feeds) feed.write(data)
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    // A name other than our own address is a web page elsewhere reaching in by DNS rebinding.
    const host = req.headers.host ?? ''
    if (host !== `127.0.0.1:${this.port}` && host !== `localhost:${this.port}`) {
      res.writeHead(421, { 'content-type': 'text/plain; charset=utf-8' })
      res.end(`open the stage view at ${this.url}\n`)
      return
    }
    const path = new URL(req.url ?? '/', this.url).pathname
    if (req.method === 'GET' && path === '/feed') {
      this.feed(res)
      return
    }
    const file = this.files[path]
    if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', ...HEADERS })
      res.end(`not found: the stage view is at ${this.url}\n`)
      return
    }
    res.writeHead(200, {
      'content-type': file.type,
      'content-length': file.body.length,
      ...HEADERS,
    })
    res.end(req.method === 'HEAD' ? undefined : file.body)
  }

  /**
   * The feed: "reset" first, so that a page that reconnects draws afresh, then everything sent so
   * far, then each message as it comes.
   */
  private feed(res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', ...HEADERS })
    const past = this.sent.map((m) => `data: ${JSON.stringify(m)}\n\n`).join('')
    res.write(`retry: 1000\nevent: reset\ndata: {}\n\n${past}`)
    this.feeds.add(res)
    res.on('close', () => this.feeds.delete(res))
  }
}
