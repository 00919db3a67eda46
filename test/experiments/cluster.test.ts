// The cluster experiment, played by the same scenario as `npm run demo:cluster`, in check mode: a
// Redis and two bundled brokers as real processes, one of them killed. Skipped in one line where
// redis-server is not installed, as the Mosquitto tests are.
import { beforeAll, describe, expect, it } from 'vitest'
import { cluster } from '../../scenarios/cluster.ts'
import { check } from '../../scenarios/stage/stage.ts'
import { claimsMet, type Event } from '../../scenarios/stage/scenario.ts'
import type { TraceEntry } from '../../scenarios/stage/trace.ts'
import { collect, quotingSuite, traceSuite } from './scenario-suite.ts'
import { printed } from '../docs/doc-blocks.ts'
import { isListening } from '../helpers/processes.ts'
import { REDIS_NOT_INSTALLED, redisServerPath } from '../helpers/redis-server.ts'

if (!redisServerPath)
  console.warn(
    `${REDIS_NOT_INSTALLED} (the cluster experiment, its docs blocks, the Redis tests and npm ` +
      `run bench -- --cluster)`,
  )

/** The ports of Redis and the brokers, from the commands and ready lines of a run. */
function ports(events: Event[]): number[] {
  return events.flatMap((e) =>
    e.kind === 'command' || e.kind === 'line'
      ? [...e.text.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]))
      : [],
  )
}

describe.skipIf(!redisServerPath)(
  redisServerPath ? 'scenario cluster' : REDIS_NOT_INSTALLED,
  () => {
    let first: Event[]
    const trace: TraceEntry[] = []
    // Given an MQTT_URL where nobody listens: the scenario runs a Redis and brokers of its own
    // whatever it is given. That nothing of them outlives the play (checked below) is what lets it
    // play again.
    beforeAll(async () => {
      first = await check(cluster, { url: 'mqtt://127.0.0.1:1', onTrace: collect(trace) })
    }, 120_000)

    traceSuite(cluster, () => first, trace)

    it(
      'C7, C11, S1: two brokers on one Redis share live messages, sessions and retained ' +
        'messages; a device that knows both moves to B when A is killed',
      async () => {
        expect(claimsMet(first)).toEqual(['C7', 'S1', 'C11'])
        const device = printed(first, 'device').split('\n')
        const moved = device.findIndex((line) =>
          line.startsWith('lost the connection to the broker at'),
        )
        expect(moved, 'the device lost A').toBeGreaterThan(0)
        expect(
          device.slice(moved + 1).filter((l) => l.startsWith('connected to')),
          'and connected to B once',
        ).toHaveLength(1)
        // B, not A, served everything after the kill. Lines A wrote just before it died may still
        // be read after it (a client it saw leave a moment before): none is about what came after
        // the kill.
        const killed = first.findIndex((e) => e.kind === 'say' && e.text.startsWith('kill -KILL'))
        const after = (label: string) =>
          first
            .slice(killed)
            .flatMap((e) => (e.kind === 'line' && e.label === label ? [e.text] : []))
        const servedAfterKill = [
          /^client device connected$/,
          /^client publisher published "OFF" to home\/kitchen\/light\/set$/,
        ]
        for (const line of servedAfterKill) {
          expect(
            after('broker-b').some((l) => line.test(l)),
            `broker B printed a line matching ${line}`,
          ).toBe(true)
          expect(
            after('broker-a').filter((l) => line.test(l)),
            'broker A, killed',
          ).toEqual([])
        }
        // Nothing outlives the scenario: neither broker nor Redis still listens.
        for (const port of new Set(ports(first)))
          expect(await isListening(port), `port ${port}`).toBe(false)
      },
    )

    quotingSuite(cluster, () => first)

    it('runs a Redis and brokers of its own even when given MQTT_URL, and says so', () => {
      expect(
        first.some(
          (e) =>
            e.kind === 'say' &&
            e.text.includes('it runs brokers of its own, not the one at mqtt://127.0.0.1:1'),
        ),
      ).toBe(true)
      const urls = first.flatMap((e) =>
        e.kind === 'command' ? [...e.text.matchAll(/--url (\S+)/g)].map((m) => m[1]) : [],
      )
      expect(urls.length).toBeGreaterThan(0)
      expect(
        urls.filter((url) => url.includes('127.0.0.1:1,') || url.endsWith('127.0.0.1:1')),
      ).toEqual([])
    })
  },
)
