// C19 says the broker is light enough for a Raspberry Pi 1 model B (512 MB of memory, one 700 MHz
// core). No Pi here, so this measures what can be measured: the bundled broker's peak memory while
// it relays a burst of messages, read from /proc, against half of a Pi 1 B's memory. Measured here:
// about 120 MB, most of it Node.js and the TypeScript loader (an idle broker peaks at about 90 MB).
import { readFileSync } from 'node:fs'
import mqtt from 'mqtt'
import { expect, it } from 'vitest'
import { start } from '../helpers/processes.ts'

const MESSAGES = 10_000
const BOUND_MB = 256

it.skipIf(process.platform !== 'linux')(
  `C19: the bundled broker relays ${MESSAGES} messages with a peak memory under ${BOUND_MB} MB`,
  async () => {
    const broker = start('lib/broker/main.ts', ['--port', '0', '--quiet'])
    try {
      const url = (await broker.waitForLine('broker ready on')).match(/mqtt:\/\/\S+?(?=;)/)![0]
      const subscriber = await mqtt.connectAsync(url, { reconnectPeriod: 0 })
      let received = 0
      const all = new Promise<void>((resolve) =>
        subscriber.on('message', () => ++received === MESSAGES && resolve()),
      )
      await subscriber.subscribeAsync('sensor/temperature')
      const publisher = await mqtt.connectAsync(url, { reconnectPeriod: 0 })
      for (let i = 0; i < MESSAGES; i++)
        await publisher.publishAsync('sensor/temperature', `${20 + (i % 10) / 10}`)
      await all
      const peakKb = Number(
        readFileSync(`/proc/${broker.pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/)![1],
      )
      expect(peakKb / 1024).toBeLessThan(BOUND_MB)
      await Promise.all([subscriber.endAsync(), publisher.endAsync()])
    } finally {
      broker.child.kill('SIGTERM')
      await broker.finish()
    }
  },
)
