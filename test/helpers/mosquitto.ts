// A private Mosquitto for the tests: started on a free loopback port with a minimal config in a
// temp dir, ready once it says it is running and answers a CONNECT, and stopped (its temp dir
// removed) afterwards. Where Mosquitto is not installed, tests that need it are skipped under the
// title NOT_INSTALLED. Written with zx (through ./daemon.ts): it runs and waits on a program the
// way a shell session would.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import mqtt from 'mqtt'
import { $, retry, which } from 'zx'
import { HUNG_MS } from '../../scenarios/stage/waiter.ts'
import { startDaemon, type Daemon } from './daemon.ts'
import { freePort } from './processes.ts'
import { RawClient } from './raw-client.ts'

/** The title of a skipped suite where Mosquitto is missing: one line saying how to get it. */
export const NOT_INSTALLED = 'Mosquitto not installed: apt-get install mosquitto to run these'

/** PATH, and the sbin folders Debian puts daemons in, which a user's PATH may lack. */
const PATH_WITH_SBIN = [process.env.PATH, '/usr/local/sbin', '/usr/sbin', '/sbin']
  .filter(Boolean)
  .join(delimiter)

/** The first executable named `name` on PATH or in the sbin folders, or undefined. */
export function findProgram(name: string): string | undefined {
  return which.sync(name, { path: PATH_WITH_SBIN, nothrow: true }) ?? undefined
}

/** The path of the mosquitto binary, or undefined where it is not installed. */
export const mosquittoPath = findProgram('mosquitto')

/** "mosquitto version 2.0.11", as `mosquitto -h` says it, or undefined. */
export function mosquittoVersion(): string | undefined {
  if (!mosquittoPath) return undefined
  return $.sync({ nothrow: true, quiet: true })`${mosquittoPath} -h`.stdall.match(
    /mosquitto version \S+/,
  )?.[0]
}

export interface RunningMosquitto {
  /** mqtt://127.0.0.1:port */
  url: string
  port: number
  /** What Mosquitto logged so far (it logs to stderr). */
  log(): string
  close(): Promise<void>
}

/**
 * Start a Mosquitto that only this test run knows about; resolves once it has accepted a CONNECT.
 */
export async function startMosquitto(): Promise<RunningMosquitto> {
  if (!mosquittoPath) throw new Error(NOT_INSTALLED)
  // The free port can be taken by someone else before Mosquitto binds it: then try another one.
  return retry(3, async () => startOn(mosquittoPath, await freePort()))
}

async function startOn(binary: string, port: number): Promise<RunningMosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'mqtt-by-example-mosquitto-'))
  const config = join(dir, 'mosquitto.conf')
  writeFileSync(
    config,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'log_dest stderr',
      '',
    ].join('\n'),
  )
  const url = `mqtt://127.0.0.1:${port}`
  let mosquitto: Daemon
  try {
    // Mosquitto says it is running once its listener is open.
    mosquitto = (await startDaemon(`mosquitto on ${url}`, [binary, '-c', config], / running$/m))
      .daemon
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
  const close = async () => {
    await mosquitto.stop()
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    // One CONNECT proves it answers.
    ;(await RawClient.connected(url)).end()
  } catch (error) {
    await close()
    throw error
  }
  return { url, port, log: mosquitto.log, close }
}

/**
 * The topics under `filter` that hold a retained message. Mosquitto sends the retained messages of
 * a subscription right after its SUBACK, so a marker this client publishes afterwards comes after
 * them.
 */
export async function retainedUnder(
  url: string,
  filter: string,
  markerTopic: string,
): Promise<string[]> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: HUNG_MS })
  try {
    const topics: string[] = []
    const marker = new Promise<void>((resolve) =>
      client.on('message', (topic, _payload, packet) => {
        if (topic === markerTopic) resolve()
        else if (packet.retain) topics.push(topic)
      }),
    )
    await client.subscribeAsync(filter)
    await client.publishAsync(markerTopic, 'marker', { qos: 1 })
    await marker
    return topics
  } finally {
    await client.endAsync()
  }
}
