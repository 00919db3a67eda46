// A private Mosquitto for the tests: started on a free loopback port with a minimal config in a temp
// dir, ready once it answers a CONNECT, and stopped (its temp dir removed) afterwards. Where Mosquitto
// is not installed, tests that need it are skipped under the title NOT_INSTALLED.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { freePort } from './processes.ts'
import { RawClient } from './raw-client.ts'

/** The title of a skipped suite where Mosquitto is missing: one line saying how to get it. */
export const NOT_INSTALLED = 'Mosquitto not installed: apt-get install mosquitto to run these'

const READY_TIMEOUT_MS = 10_000

/** The first executable named `name` on PATH, or in the sbin folders Debian puts daemons in. */
export function findProgram(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin']
  for (const dir of dirs.filter(Boolean)) {
    try {
      accessSync(join(dir, name), constants.X_OK)
      return join(dir, name)
    } catch {
      // not in this folder
    }
  }
  return undefined
}

/** The path of the mosquitto binary, or undefined where it is not installed. */
export const mosquittoPath = findProgram('mosquitto')

/** "mosquitto version 2.0.11", as `mosquitto -h` says it, or undefined. */
export function mosquittoVersion(): string | undefined {
  if (!mosquittoPath) return undefined
  const help = spawnSync(mosquittoPath, ['-h'], { encoding: 'utf8' })
  return `${help.stdout}${help.stderr}`.match(/mosquitto version \S+/)?.[0]
}

export interface RunningMosquitto {
  /** mqtt://127.0.0.1:port */
  url: string
  port: number
  /** What Mosquitto logged so far (it logs to stderr). */
  log(): string
  close(): Promise<void>
}

/** Start a Mosquitto that only this test run knows about; resolves once it has accepted a CONNECT. */
export async function startMosquitto(): Promise<RunningMosquitto> {
  if (!mosquittoPath) throw new Error(NOT_INSTALLED)
  // The free port can be taken by someone else before Mosquitto binds it: then try another one.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(mosquittoPath, await freePort())
    } catch (error) {
      if (attempt === 3 || !(error instanceof PortTaken)) throw error
    }
  }
}

class PortTaken extends Error {}

async function startOn(binary: string, port: number): Promise<RunningMosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'mqtt-by-example-mosquitto-'))
  const config = join(dir, 'mosquitto.conf')
  writeFileSync(config, [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    'log_dest stderr',
    '',
  ].join('\n'))
  const child = spawn(binary, ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr!.on('data', (chunk) => (log += chunk))
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()))
  let running = true
  void exited.then(() => (running = false))
  // If the test worker dies before close(), take Mosquitto with it.
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)

  const close = async () => {
    process.removeListener('exit', killOnExit)
    if (running) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000)
      await exited
      clearTimeout(timer)
    }
    rmSync(dir, { recursive: true, force: true })
  }
  const url = `mqtt://127.0.0.1:${port}`
  try {
    await untilAccepting(url, child, () => running, () => log)
  } catch (error) {
    await close()
    throw error
  }
  return { url, port, log: () => log, close }
}

/** Connect (CONNECT, then CONNACK) until Mosquitto answers; fails if it exits or takes too long. */
async function untilAccepting(url: string, child: ChildProcess, running: () => boolean, log: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  for (;;) {
    try {
      const client = await RawClient.connected(url)
      client.end()
      return
    } catch {
      if (!running()) {
        const why = log().trim().split('\n').at(-1) ?? '(nothing logged)'
        if (/address already in use/i.test(log())) throw new PortTaken(why)
        throw new Error(`mosquitto (pid ${child.pid}) exited before accepting connections on ${url}: ${why}`)
      }
      if (Date.now() > deadline) {
        throw new Error(`mosquitto did not accept a connection on ${url} within ${READY_TIMEOUT_MS / 1000} s; its log: ${log()}`)
      }
      // Not listening yet: try again as soon as it may be.
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
}
