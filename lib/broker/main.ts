// `npm run broker`: the bundled broker (./broker.ts) as a program, with its command line. It prints
// one ready line, then a line per client event; Ctrl-C or SIGTERM closes every connection and exits
// 0. With --record, it writes its packet record (./record.ts) as JSON lines.
import { fstatSync, openSync, writeSync } from 'node:fs'
import { Socket } from 'node:net'
import { createInterface } from 'node:readline'
import { fail, LIFELINE, messageOf, startProgram, writePidFile } from '../cli.ts'
import { parseFlags } from '../parse-flags.ts'
import { configured } from './configured.ts'
import {
  DEFAULT_MAX_PACKET_SIZE,
  isLoopback,
  readyLine,
  startBroker,
  type RunningBroker,
} from './broker.ts'

async function main(): Promise<void> {
  startProgram()
  const { values } = parseCli()
  const username = values.username ?? process.env.MQTT_USERNAME
  const password = values.password ?? process.env.MQTT_PASSWORD
  if ((username === undefined) !== (password === undefined)) {
    fail(
      'give both a user name and a password (--username and --password, or MQTT_USERNAME and ' +
        'MQTT_PASSWORD), or neither',
    )
  }
  const host = values.host ?? '127.0.0.1'
  // -c: Mosquitto's configuration file; the flags given beside it win where both say something.
  const config =
    values.config === undefined
      ? undefined
      : tryOrFail(() =>
          configured(values.config as string, {
            whereFlags: ['port', 'host', 'ws-port', 'unix'].filter((flag) => flag in values),
            credentials:
              username !== undefined && password !== undefined ? { username, password } : undefined,
          }),
        )
  for (const warning of config?.warnings ?? []) process.stderr.write(`warning: ${warning}\n`)
  const persist = values.persist ?? config?.persist
  const redis = values.redis ?? process.env.REDIS_URL
  if (redis !== undefined && persist !== undefined)
    fail(
      'give --persist or --redis, not both: with --redis, Redis keeps retained messages and ' +
        'sessions',
    )
  const broker = await startBroker({
    host,
    port: portFlag('--port', values.port) ?? 1883,
    wsPort: portFlag('--ws-port', values['ws-port']),
    unixPath: values.unix,
    persist,
    redis,
    listeners: config?.listeners,
    security: config?.security,
    maxPacketSize: sizeFlag(values['max-packet-size']),
    credentials:
      username !== undefined && password !== undefined && config === undefined
        ? { username, password }
        : undefined,
    log: values.quiet ? undefined : (line) => console.log(line),
    // With --quiet, what the broker says of Redis is still printed: it is not a client event.
    say: values.quiet ? (line) => console.log(line) : undefined,
  }).catch((error: unknown) => fail(messageOf(error)))
  const stop = () => {
    const timer = setTimeout(() => process.exit(0), 1000)
    timer.unref()
    void broker.close().then(() => process.exit(0))
  }
  // Before the ready line: whoever reads it may stop us at once, and must not find node's default
  // handlers.
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  if (!isLoopback(host) && username === undefined && !config?.listeners) {
    process.stderr.write(
      `warning: listening on ${host} without a password: anyone who can reach this machine can ` +
        `publish and subscribe; add --username and --password\n`,
    )
  }
  if (values['pid-file'] !== undefined) writePidFile(values['pid-file'])
  if (values.record !== undefined) record(broker, values.record)
  if (persist !== undefined) console.log(`keeping retained messages and sessions in ${persist}`)
  if (redis !== undefined)
    console.log(
      'sharing messages, retained messages and sessions with every broker on ' +
        (await import('./redis.ts')).redactedRedisUrl(redis),
    )
  console.log(readyLine(broker))
}

function parseCli() {
  return parseFlags(
    {
      invocation: 'npm run broker --',
      description: 'Start the bundled MQTT broker (aedes) and print what its clients do.',
    },
    {
      config: {
        type: 'string',
        short: 'c',
        arg: 'FILE',
        help:
          "read Mosquitto's configuration file: listeners, TLS, passwords, ACL " +
          '(docs/conformance.md: its options, and the flags beside it)',
      },
      port: {
        type: 'string',
        arg: 'N',
        help: 'TCP port to listen on (default 1883; 0 picks a free port)',
      },
      host: {
        type: 'string',
        arg: 'ADDR',
        help: 'interface to listen on (default 127.0.0.1: this machine only)',
      },
      'ws-port': {
        type: 'string',
        arg: 'N',
        help: 'also serve MQTT over WebSocket on this port (off by default)',
      },
      unix: {
        type: 'string',
        arg: 'PATH',
        help: 'also serve MQTT on a Unix domain socket at PATH (clients use mqtt+unix://PATH)',
      },
      persist: {
        type: 'string',
        arg: 'DIR',
        help:
          'keep retained messages and sessions on disk in DIR, across restarts (default: in ' +
          'memory)',
      },
      redis: {
        type: 'string',
        arg: 'URL',
        help:
          'share messages, retained messages and sessions with the brokers on this Redis ' +
          '(default $REDIS_URL)',
      },
      'max-packet-size': {
        type: 'string',
        arg: 'BYTES',
        help: `cut off a client that sends a larger packet (default ${DEFAULT_MAX_PACKET_SIZE})`,
      },
      username: {
        type: 'string',
        arg: 'NAME',
        help:
          'accept only clients that give this user name and --password (default ' +
          '$MQTT_USERNAME)',
      },
      password: {
        type: 'string',
        arg: 'SECRET',
        help:
          'the password that goes with --username (default $MQTT_PASSWORD); without them ' +
          'anyone may connect',
      },
      quiet: { type: 'boolean', help: 'print only the ready line, not every client event' },
      record: {
        type: 'string',
        arg: 'FILE',
        help:
          'append every MQTT packet read and written to FILE, as JSON lines (/dev/fd/N: to file ' +
          'descriptor N)',
      },
      'pid-file': {
        type: 'string',
        arg: 'FILE',
        help: 'write the process id to FILE, to stop this broker alone with kill "$(cat FILE)"',
      },
    },
  )
}

/** What `run` returns, or its error as one line and exit 1. */
function tryOrFail<T>(run: () => T): T {
  try {
    return run()
  } catch (error) {
    return fail(messageOf(error))
  }
}

/**
 * Write the broker's packet record to `file`, as lines of JSON (RunningBroker.onPacketLines). A
 * pipe or socket (a show's /dev/fd/3) is written as a stream, a file or device with a plain write:
 * what costs the broker least (a write handed to Node's thread pool, as a file stream's is, cost
 * ten times the CPU of either here).
 */
function record(broker: RunningBroker, file: string): void {
  const stop = (error: Error) => {
    stopRecording()
    process.stderr.write(`--record ${file}: ${error.message}; the broker goes on without it\n`)
  }
  let write: (lines: string) => void
  try {
    const given = file.match(/^\/dev\/fd\/(\d+)$/)?.[1]
    const fd = given === undefined ? openSync(file, 'a') : Number(given)
    const stat = fstatSync(fd)
    if (stat.isFIFO() || stat.isSocket()) {
      const stream = new Socket({ fd, readable: false, writable: true })
      stream.on('error', stop)
      write = (lines) => void stream.write(lines)
    } else
      write = (lines) => {
        try {
          writeSync(fd, lines)
        } catch (error) {
          stop(error as Error)
        }
      }
  } catch (error) {
    process.stderr.write(`--record ${file}: ${messageOf(error)}; the broker goes on without it\n`)
    return
  }
  const lines = broker.onPacketLines(write)
  const stopRecording = lines.stop
  // The stage, at each step, asks its broker processes on their standard input to write what they
  // have recorded so far and a mark after it (`sync N` and `{"sync":N}`): every packet the broker
  // had handled when it was asked is then drawn before the step begins.
  if (process.env[LIFELINE] === '1')
    createInterface({ input: process.stdin }).on('line', (line) => {
      const sync = /^sync (\d+)$/.exec(line)?.[1]
      if (sync) lines.flush(`{"sync":${sync}}\n`)
    })
}

function sizeFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) < 2)
    fail(`--max-packet-size must be a number of bytes of at least 2, not ${JSON.stringify(value)}`)
  return Number(value)
}

function portFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const port = Number(value)
  if (!/^\d+$/.test(value) || port > 65535)
    fail(`${flag} must be a port number from 0 to 65535, not ${JSON.stringify(value)}`)
  return port
}

await main()
