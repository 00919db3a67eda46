// scenarios/stage/waiter.ts, the one way the stage, the tests' programs and the raw client wait: a
// wait ends on the arrival it names, and fails with its own message when the source ends first or
// the run hangs.
import { describe, expect, it } from 'vitest'
import { Waiter } from '../../scenarios/stage/waiter.ts'

describe('Waiter', () => {
  const failures = {
    timedOut: (ms: number) => new Error(`nothing within ${ms} ms`),
    ended: (how: string) => new Error(`the source ${how} first`),
  }

  it(
    'resolves with what arrived, whether it was there before the wait or comes ' + 'later',
    async () => {
      const lines: string[] = ['early']
      const waiter = new Waiter()
      const find = (text: string) => () => lines.find((line) => line === text)
      expect(await waiter.until(find('early'), failures)).toBe('early')
      const late = waiter.until(find('late'), failures)
      lines.push('late')
      waiter.arrived()
      expect(await late).toBe('late')
    },
  )

  it(
    'fails with its own message when the source ends first, and looks once more at the end when ' +
      'told nothing of ends',
    async () => {
      const waiter = new Waiter()
      let closed = false
      const failing = waiter.until(() => undefined, failures)
      const lastLook = waiter.until(() => (closed ? 'closed' : undefined), {
        timedOut: failures.timedOut,
      })
      closed = true
      waiter.end('exited with code 1')
      await expect(failing).rejects.toThrow('the source exited with code 1 first')
      expect(await lastLook).toBe('closed')
      expect(waiter.ended).toBe('exited with code 1')
    },
  )

  it('fails a hung wait with its own message', async () => {
    await expect(
      new Waiter().until(() => undefined, { ...failures, timeoutMs: 1 }),
    ).rejects.toThrow('nothing within 1 ms')
  })
})
