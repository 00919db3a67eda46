// Waiting for something that arrives piece by piece: a line a program prints, a packet a broker
// sends. One waiter for the stage's processes, the tests' programs and the raw MQTT client: a wait
// ends as soon as what it names has arrived, and fails naming it if its source ends first or if its
// timeout runs out. The timeout is there to fail a hung run with a clear message, not to bound a
// slow one.

/**
 * How long one wait may last before the run counts as hung. The longest single wait of the suite
 * measured on the project's 2-core development machine (December 2026), with other test suites
 * running beside it (load 15 to 18), was 6.4 s: five subscribers starting at once, or the dashboard
 * bundling its page. This leaves room for more.
 */
export const HUNG_MS = 30_000

interface WaitFailures {
  /** Default HUNG_MS. */
  timeoutMs?: number
  /** The error when the timeout runs out. */
  timedOut: (ms: number) => Error
  /**
   * The error when the source ends first, given how it ended; without it, an end is one more look.
   */
  ended?: (how: string) => Error
}

export class Waiter {
  private readonly looks = new Set<() => void>()
  private how?: string

  /** Something arrived: every wait looks again. */
  arrived(): void {
    for (const look of [...this.looks]) look()
  }

  /** Nothing more will arrive, because of `how` ("exited with code 1", say). */
  end(how: string): void {
    this.how = how
    this.arrived()
  }

  /** How the source ended, or undefined while it may still deliver. */
  get ended(): string | undefined {
    return this.how
  }

  /**
   * Resolve with what `found` returns once it returns something: now, or at a later arrival or end.
   */
  until<T>(found: () => T | undefined, failures: WaitFailures): Promise<T> {
    const timeoutMs = failures.timeoutMs ?? HUNG_MS
    return new Promise((resolve, reject) => {
      const look = () => {
        const result = found()
        if (result !== undefined) settle(() => resolve(result))
        else if (this.how !== undefined && failures.ended)
          settle(() => reject(failures.ended!(this.how!)))
      }
      const timer = setTimeout(() => settle(() => reject(failures.timedOut(timeoutMs))), timeoutMs)
      const settle = (how: () => void) => {
        clearTimeout(timer)
        this.looks.delete(look)
        how()
      }
      this.looks.add(look)
      look()
    })
  }
}

/** "30 s" for 30000: a timeout as an error message gives it. */
export function inSeconds(ms: number): string {
  return `${ms / 1000} s`
}
