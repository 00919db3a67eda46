// The stage view's feed as a test reads it, outside the browser: every message the server sends on
// /feed, in order, from a show running in another process, so that a test can hold the page to
// what the show sent and find the links it gave.
import type { FeedMessage } from '../../scenarios/stage/stage-view.ts'
import type { TraceEntry } from '../../scenarios/stage/trace.ts'
import { inSeconds, Waiter } from '../../scenarios/stage/waiter.ts'

export class Feed {
  readonly messages: FeedMessage[] = []
  private readonly arrivals = new Waiter()
  private readonly stop = new AbortController()

  /** Read the feed of the stage view at `page` until it ends or close() is called. */
  constructor(page: string) {
    void this.read(new URL('feed', page))
  }

  /** The trace's entries so far. */
  get entries(): TraceEntry[] {
    return this.messages.flatMap((m) => ('entry' in m ? [m.entry] : []))
  }

  /** Resolve with what `found` returns once it returns something; fails when the feed ends. */
  until<T>(what: string, found: () => T | undefined): Promise<T> {
    return this.arrivals.until(found, {
      timedOut: (ms) => new Error(`the feed sent no ${what} within ${inSeconds(ms)}`),
      ended: (how) => new Error(`${how} before sending ${what}`),
    })
  }

  /** Resolves once the server has ended the feed (the show is over). */
  async ended(): Promise<void> {
    await this.arrivals.until(() => this.arrivals.ended, {
      timedOut: (ms) => new Error(`the feed did not end within ${inSeconds(ms)}`),
    })
  }

  close(): void {
    this.stop.abort()
  }

  private async read(url: URL): Promise<void> {
    try {
      const response = await fetch(url, { signal: this.stop.signal })
      const decoder = new TextDecoder()
      let buffer = ''
      for await (const chunk of response.body!) {
        buffer += decoder.decode(chunk, { stream: true })
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const event = buffer.slice(0, end).split('\n')
          buffer = buffer.slice(end + 2)
          const data = event.find((line) => line.startsWith('data: '))
          if (data && !event.includes('event: reset'))
            this.messages.push(JSON.parse(data.slice('data: '.length)) as FeedMessage)
        }
        this.arrivals.arrived()
      }
      this.arrivals.end('the feed ended')
    } catch (error) {
      this.arrivals.end(`the feed failed (${(error as Error).message})`)
    }
  }
}
