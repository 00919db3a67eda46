// Beyond the article: a broker that keeps people out, configured as Mosquitto is. A tap shows a
// password crossing the wire in plain sight; the broker refuses clients with no name or a wrong
// password, keeps each user in a subtree of topics (an ACL), and then speaks TLS with certificates
// from a CA made on the spot: the tap sees nothing readable, a wrong host name is refused, and a
// client certificate can stand for a password. The broker is a process started from
// demos/security/mosquitto.conf: the bundled one, or Mosquitto with the same files
// (stage.options.mosquitto). Run directly (npm run demo:security) it is the show; test/ plays it as
// a check.
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { ROOT } from '../lib/build-cache.ts'
import { isMain } from '../lib/cli.ts'
import { show } from './stage/show.ts'
import type { Scenario, Stage } from './stage/stage.ts'
import type { Proc } from './stage/proc.ts'
import { freePort, missingProgram } from './stage/scenario.ts'

const publisher = 'demos/security/publisher.ts'
const subscriber = 'demos/security/subscriber.ts'
const anonymous = 'demos/basic-pubsub/publisher.ts'
const tap = 'demos/wire/tap.ts'

/** The users of the password file and their passwords, typed on the command line for the lesson. */
const PASSWORDS = { alice: 'wonderland', bob: 'builder' }

export const security: Scenario = {
  name: 'security',
  steps: 12,
  title:
    'passwords cross the wire in clear; a broker that refuses strangers, keeps each user in a ' +
    'subtree, and speaks TLS with certificates from a CA of our own',
  needs: {
    none: true,
    program: {
      command: 'openssl',
      missing: 'openssl is not installed: apt-get install openssl (or brew install openssl)',
    },
  },
  // Keys and certificates made, brokers started and restarted: twice the others' budget.
  budget: 240,
  async play(stage) {
    const missing = missingProgram(security)
    if (missing) throw stage.failure(missing)
    const mosquitto = stage.options.mosquitto
    if (mosquitto && spawnSync(mosquitto, ['-h']).error)
      throw stage.failure(
        `${mosquitto} is not installed, or not on PATH (Debian puts it in /usr/sbin): apt-get ` +
          'install mosquitto',
      )
    if (stage.options.url)
      stage.say(
        `this experiment configures a broker of its own, from demos/security/: not the one at ` +
          `${stage.options.url}`,
      )
    const dir = await stage.tempDir()
    const secret = (file: string) => join(dir, file)
    const ports = { plain: await freePort(), tls: await freePort(), certs: await freePort() }
    const plainUrl = `mqtt://127.0.0.1:${ports.plain}`
    const tlsUrl = `mqtts://localhost:${ports.tls}`
    const certsUrl = `mqtts://localhost:${ports.certs}`
    const as = (user: User) => ['--username', user, '--password', PASSWORDS[user]]
    const trust = ['--cafile', secret('ca.crt')]
    /** Run the security publisher with `args`; `code` 1 for one that is refused. */
    const publish = (label: string, args: string[], code = 0) =>
      stage.run(label, publisher, args, code)
    const refused = (why: string) =>
      new RegExp(`^error: (the broker at|cannot connect to) \\S+ .*${why}`)

    await stage.step(
      'Make a password file for alice and bob, and start the broker from ' +
        'demos/security/mosquitto.conf',
    )
    await passwd(stage, secret('passwords'), 'alice', true)
    await passwd(stage, secret('passwords'), 'bob', false)
    const hashes = readFileSync(secret('passwords'), 'utf8')
    if (Object.values(PASSWORDS).some((password) => hashes.includes(password)))
      throw stage.failure(`the password file holds a password as it is:\n${hashes}`)
    stage.ok({ says: 'the file holds each user name with a salted hash of its password' })
    let broker = await startBroker(stage, 'mosquitto.conf', dir, ports)
    stage.ok({ says: `the broker listens on ${plainUrl}, plain MQTT` })

    await stage.step('Put a tap in front of it: alice publishes through the tap, with her password')
    const plainTap = await startTap(stage, plainUrl)
    // QoS 0: no packet id, whose first value MQTT.js picks at random, so the tap prints the same
    // bytes every time.
    await publish('alice', ['--url', plainTap.url, ...as('alice'), '--qos', '0'])
    const sent = /^client 1 → broker {2}CONNECT /
    await plainTap.proc.until(sent)
    const connect = plainTap.proc.output.findLast((line) => sent.test(line.text))!.text
    await plainTap.proc.until('connection 1 closed')
    if (!connect.includes(`alice..${PASSWORDS.alice}`))
      throw stage.failure('the tap did not show the password in the CONNECT', plainTap.proc)
    stage.ok({
      says: `her CONNECT carries "alice" and "${PASSWORDS.alice}" in clear, for anyone on the way`,
    })
    await plainTap.proc.stop()

    await stage.step("The article's publisher, with no user name, is refused")
    const stranger = await stage.run('stranger', anonymous, ['--url', plainUrl], 1)
    await stranger.expectError(refused('not authorised; .* \\(return code 5\\)$'), {
      says: 'refused, return code 5: Mosquitto 2 lets nobody in anonymously unless told to',
    })

    await stage.step('A wrong password is refused the same way')
    const guess = ['--url', plainUrl, '--username', 'alice', '--password', 'guess']
    await (await publish('guesser', guess, 1)).expectError(
      refused('not authorised; .* \\(return code 5\\)$'),
      { says: 'the same answer: a guesser does not learn whether the user name exists' },
    )

    await stage.step(
      'The ACL gives each user users/<name>/: bob subscribes to his, alice to users/#',
    )
    const bobListens = stage.spawn('bob', subscriber, [
      '--url',
      plainUrl,
      ...as('bob'),
      '--topic',
      'users/bob/#',
    ])
    const aliceListens = stage.spawn('alice', subscriber, [
      '--url',
      plainUrl,
      ...as('alice'),
      '--topic',
      'users/#',
    ])
    await bobListens.expect('subscribed to users/bob/# (QoS 0)', { says: 'bob is subscribed' })
    await aliceListens.expect('subscribed to users/# (QoS 0)', {
      says: 'alice may subscribe to users/#: the ACL decides what it delivers to her',
    })

    await stage.step("alice writes in bob's subtree")
    await publish('alice-publisher', [
      '--url',
      plainUrl,
      ...as('alice'),
      '--topic',
      'users/bob/inbox',
      '--message',
      'hello bob',
    ])
    await stage.useBroker(plainUrl, { username: 'bob', password: PASSWORDS.bob })
    await stage.barrier('users/bob/inbox', [bobListens], {
      says: "alice's message to users/bob/inbox was acknowledged, and dropped: not hers to write",
    })

    await stage.step("bob writes in users/bob/: alice's users/# does not bring it to her")
    await publish('bob-publisher', [
      '--url',
      plainUrl,
      ...as('bob'),
      '--topic',
      'users/bob/diary',
      '--message',
      'dear diary',
    ])
    await bobListens.expect('users/bob/diary dear diary', { says: 'bob reads his own message' })
    await stage.useBroker(plainUrl, { username: 'alice', password: PASSWORDS.alice })
    await stage.barrier('users/alice/notes', [aliceListens], {
      says: "nothing of bob's reached alice, though users/# matches his topic: not hers to read",
    })
    await Promise.all([bobListens.stop(), aliceListens.stop()])

    await stage.step(
      'Make a CA and a certificate for localhost, and restart the broker from ' +
        'mosquitto-tls.conf',
    )
    await openssl(stage, ['-subj', '/CN=Our own CA', '-keyout', secret('ca.key')], secret('ca.crt'))
    await openssl(
      stage,
      [
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost',
        '-addext',
        'basicConstraints=CA:FALSE',
        '-CA',
        secret('ca.crt'),
        '-CAkey',
        secret('ca.key'),
        '-keyout',
        secret('server.key'),
      ],
      secret('server.crt'),
    )
    stage.ok({ says: 'our CA signed a certificate for the name localhost' })
    await broker.stop()
    broker = await startBroker(stage, 'mosquitto-tls.conf', dir, ports)
    stage.ok({ says: `the broker listens on ${tlsUrl} too, over TLS` })

    await stage.step('alice publishes over TLS through a tap, trusting our CA with --cafile')
    const tlsTap = await startTap(stage, tlsUrl)
    await publish('alice', ['--url', tlsTap.url, ...as('alice'), ...trust])
    const seen = await tlsTap.proc.until('connection 1 closed')
    if (seen.some((line) => line.includes(PASSWORDS.alice)) || !seen.some(isNotMqtt))
      throw stage.failure('the tap saw something else than TLS records', tlsTap.proc)
    stage.ok({ says: 'the tap sees TLS records only: no MQTT packet, no name, no password' })
    await tlsTap.proc.stop()

    await stage.step('Without our CA, by another name, or in plain MQTT: no way in')
    await (await publish('alice', ['--url', tlsUrl, ...as('alice')], 1)).expectError(
      refused('signed by a CA this client does not trust'),
      { says: 'without --cafile, the certificate is signed by nobody the client trusts' },
    )
    const byAddress = `mqtts://127.0.0.1:${ports.tls}`
    await (
      await publish('by-address', ['--url', byAddress, ...as('alice'), ...trust], 1)
    ).expectError(
      refused('the host name 127.0.0.1 does not match the certificate, which is for localhost'),
      { says: 'the certificate is for localhost, and 127.0.0.1 is another name' },
    )
    // Plain MQTT on the TLS port: the broker reads the CONNECT as a broken handshake, and hangs up.
    const plainOnTls = ['--url', `mqtt://127.0.0.1:${ports.tls}`, ...as('alice')]
    await (await publish('plain', plainOnTls, 1)).expectError(
      refused('closed the connection before accepting it; if that port speaks TLS, use mqtts://'),
      { says: 'and plain MQTT on the TLS port gets no answer at all' },
    )

    await stage.step('Make a certificate for alice, and subscribe with it, no password')
    await openssl(
      stage,
      [
        '-subj',
        '/CN=alice',
        '-CA',
        secret('ca.crt'),
        '-CAkey',
        secret('ca.key'),
        '-keyout',
        secret('alice.key'),
      ],
      secret('alice.crt'),
    )
    const herCertificate = ['--cert', secret('alice.crt'), '--key', secret('alice.key')]
    const listens = stage.spawn('alice', subscriber, [
      '--url',
      certsUrl,
      ...trust,
      ...herCertificate,
    ])
    await listens.expect('subscribed to users/alice/# (QoS 0)', {
      says: 'no password: on this port her certificate stands for it, and its CN is her user name',
    })

    await stage.step('Publish there with a password and no certificate, then with her certificate')
    await (
      await publish('no-certificate', ['--url', certsUrl, ...as('alice'), ...trust], 1)
    ).expectError(refused('the broker needs a client certificate'), {
      says: 'a password is not enough on this port: no certificate, no connection',
    })
    await publish('alice-publisher', ['--url', certsUrl, ...trust, ...herCertificate])
    await listens.expect('users/alice/notes on', {
      says: 'with her certificate, alice publishes under users/alice/, as the ACL lets alice',
    })
    await listens.stop()
    await broker.stop()
  },
}

type User = keyof typeof PASSWORDS

/** A line of the tap about bytes that are not MQTT (TLS records). */
const isNotMqtt = (line: string) => / {2}not MQTT /.test(line)

/**
 * Add `user` to the password file `file` (`create`: a new file), with the bundled broker's
 * npm run passwd or, for Mosquitto, mosquitto_passwd: the same options, the same file.
 */
async function passwd(stage: Stage, file: string, user: User, create: boolean): Promise<void> {
  const args = [...(create ? ['-c'] : []), '-b', file, user, PASSWORDS[user]]
  await finish(
    stage,
    stage.options.mosquitto
      ? stage.spawnCommand('passwd', 'mosquitto_passwd', args)
      : stage.spawnCommand('passwd', 'npm', ['run', '--silent', 'passwd', '--', ...args]),
  )
}

/**
 * `openssl req -x509`: a new P-256 key (`-keyout` in `args`) and its certificate, `certificate`,
 * valid for 30 days: signed by the CA that `-CA` and `-CAkey` name, or by itself (a CA).
 */
async function openssl(stage: Stage, args: string[], certificate: string): Promise<void> {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30']
  const command = ['req', '-x509', ...key, ...args, '-out', certificate]
  // It draws a line of dashes on stderr where it would ask for the certificate's fields (-subj
  // gave them): chatter, not an error, so the room sees it with --verbose only.
  await finish(stage, stage.spawnCommand('openssl', 'openssl', command, { chatter: /^-+$/ }))
}

/** Wait for a command started with spawnCommand to end, and fail unless it ends well. */
async function finish(stage: Stage, proc: Proc): Promise<void> {
  proc.ending = true
  const exit = await proc.finished()
  if (exit.code !== 0) throw stage.failure(`${proc.label} exited with code ${exit.code}`, proc)
}

/** Start a tap (demos/wire/tap.ts, with --text) in front of `url`; clients connect to its URL. */
async function startTap(stage: Stage, url: string): Promise<{ proc: Proc; url: string }> {
  const proc = stage.spawn('tap', tap, ['--listen-port', '0', '--to', url, '--text'])
  await proc.until(/^tap on \S+, passing every byte/)
  const line = proc.output.find((l) => l.text.startsWith('tap on '))!.text
  return { proc, url: line.match(/^tap on (\S+),/)![1] }
}

/**
 * Start the broker, bundled or Mosquitto, from `file` of demos/security/ as the stage writes it in
 * `dir`: the same lines, with the stage's free ports and the files of `dir`. Ready once every port
 * it listens on takes a connection (Mosquitto says nothing on stdout).
 */
async function startBroker(
  stage: Stage,
  file: string,
  dir: string,
  ports: { plain: number; tls: number; certs: number },
): Promise<Proc> {
  copyFileSync(join(ROOT, 'demos/security/acl'), join(dir, 'acl'))
  const config = readFileSync(join(ROOT, 'demos/security', file), 'utf8')
    .replace(/^listener 1883 /m, `listener ${ports.plain} `)
    .replace(/^listener 8883 /m, `listener ${ports.tls} `)
    .replace(/^listener 8884 /m, `listener ${ports.certs} `)
    .replace(/ secrets\//g, ` ${dir}/`)
    .replace(/ demos\/security\/acl$/m, ` ${join(dir, 'acl')}`)
  const path = join(dir, file)
  writeFileSync(path, config)
  const mosquitto = stage.options.mosquitto
  if (mosquitto) {
    // Mosquitto started as root reads the files as the user mosquitto, once it has dropped root.
    chmodSync(dir, 0o755)
    for (const name of readdirSync(dir)) chmodSync(join(dir, name), 0o644)
  }
  const proc = mosquitto
    ? stage.spawnCommand('broker', mosquitto, ['-c', path])
    : stage.spawn('broker', 'lib/broker/main.ts', ['-c', path])
  const listening = [...config.matchAll(/^listener (\d+)/gm)].map((m) => Number(m[1]))
  let ended = false
  void proc.exit.then(() => (ended = true))
  for (const port of listening) {
    const started = Date.now()
    while (!(await accepts(port))) {
      if (ended) throw stage.failure(`the broker ended before it listened on port ${port}`, proc)
      if (Date.now() - started > stage.waitMs)
        throw stage.failure(`the broker did not listen on port ${port}`, proc)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  return proc
}

/** Whether something on 127.0.0.1 accepts a TCP connection on `port`. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

if (isMain(import.meta.url)) await show(security)
