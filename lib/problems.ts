// What can go wrong between a demo and its broker, each said in one line: reportProblems(client,
// url) listens to an MQTT.js client that the demo made itself, and ends the program with one line
// and exit code 1 when the connection is refused, cannot be made, is lost, or a subscription is
// refused, or, in MQTT 5, a message is refused; an MQTT 5 broker says why, with a reason code, and
// so does the line. MQTT.js alone retries forever when the broker is down, which on stage looks
// like a hang. A client made with a reconnectPeriod (a device, a listener) rides out a lost
// connection instead, as real ones do, and, given several brokers (MQTT.js's servers), tries the
// next one.
import mqtt, { type MqttClient } from 'mqtt'
import { fail, messageOf } from './cli.ts'
import { reason, reasonWithString } from './mqtt5-print.ts'
import { CONNECT_TIMEOUT_MS } from './demo-flags.ts'

/** Turn every failure of `client`, connected to `url`, into one line (see the top of this file). */
export function reportProblems(client: MqttClient, url: string): void {
  const reconnectPeriod = client.options.reconnectPeriod ?? 0
  const at = () => brokerUrl(client, url)
  let connectedOnce = false
  let lost = false
  // Of a list of brokers (--url a,b), each is tried once before the first connection; the last
  // failure is the one that ends the program.
  let untried = (client.options.servers?.length ?? 1) - 1
  let attemptFailed = false
  const attemptFailure = (problem: string) => {
    if (attemptFailed) return
    attemptFailed = true
    if (untried-- === 0) fail(problem)
    console.log(`${problem.split(';')[0]}; trying the next one`)
  }
  client.on('reconnect', () => (attemptFailed = false))
  // MQTT 5: a broker that ends a connection may say why first, in a DISCONNECT (§3.14.2.1).
  let disconnect: { reasonCode?: number; properties?: { reasonString?: string } } | undefined
  client.on('connect', () => {
    connectedOnce = true
    lost = false
    disconnect = undefined
  })
  client.on('disconnect', (packet) => (disconnect = packet))
  client.on('error', (error) => {
    // Ending: a QoS 1 message that arrives meanwhile has its PUBACK written after the end.
    if (client.disconnecting) return
    if (!connectedOnce) attemptFailure(connectionProblem(at(), error, client))
    else if (reconnectPeriod === 0) fail(connectionProblem(at(), error, client))
  })
  client.on('close', () => {
    // The program ended the connection itself (client.end()), or it already said the connection was
    // lost.
    if (client.disconnecting || lost) return
    if (!connectedOnce) return attemptFailure(closedBeforeConnack(at(), client))
    const why =
      disconnect?.reasonCode === undefined
        ? ''
        : `: ${reasonWithString(disconnect.reasonCode, disconnect.properties)}`
    if (reconnectPeriod === 0)
      return void (why
        ? fail(disconnected(at(), why, disconnect!.reasonCode!, client))
        : lostConnection(client, url))
    lost = true
    const next = client.options.servers ? 'the next one' : 'again'
    console.log(
      `lost the connection to the broker at ${at()}${why}; trying ${next} every ` +
        `${reconnectPeriod / 1000} s`,
    )
  })
  // A SUBACK carries no topic, nor a PUBACK: remember what each SUBSCRIBE and PUBLISH asked for, to
  // name a refused one.
  const asked = new Map<number, string[]>()
  const published = new Map<number, string>()
  client.on('packetsend', (packet) => {
    if (packet.cmd === 'subscribe')
      asked.set(
        packet.messageId!,
        packet.subscriptions.map((s) => s.topic),
      )
    if (packet.cmd === 'publish' && packet.qos > 0) published.set(packet.messageId!, packet.topic)
  })
  client.on('packetreceive', (packet) => {
    // MQTT 5 §3.4.2.1, §3.5.2.1: a code of 0x80 or more refuses the message, and says why.
    if ((packet.cmd === 'puback' || packet.cmd === 'pubrec') && packet.messageId !== undefined) {
      const topic = published.get(packet.messageId)
      published.delete(packet.messageId)
      if (packet.reasonCode !== undefined && packet.reasonCode >= 0x80) {
        fail(
          `the broker refused the message to ${topic}: ` +
            `${reasonWithString(packet.reasonCode, packet.properties)}`,
        )
      }
    }
    if (packet.cmd !== 'suback') return
    // MQTT 3.1.1 refuses with 0x80 alone; MQTT 5 (§3.9.3) with a code of 0x80 or more that names
    // the reason.
    const filters = asked.get(packet.messageId!) ?? []
    asked.delete(packet.messageId!)
    const granted = packet.granted as number[]
    const refused = filters.flatMap((filter, i) =>
      granted[i] >= 0x80 ? [{ filter, code: granted[i] }] : [],
    )
    if (refused.length === 0) return
    if (client.options.protocolVersion !== 5) {
      fail(
        `the broker refused the subscription to ${refused.map((r) => r.filter).join(', ')}; ` +
          'check its access rules',
      )
    }
    fail(
      `the broker refused the subscription to ${refused
        .map((r) => `${r.filter}: ${reasonWithString(r.code, packet.properties)}`)
        .join(', ')}`,
    )
  })
}

/** The broker ended the connection with a DISCONNECT that says `why` (MQTT 5). */
function disconnected(url: string, why: string, code: number, client: MqttClient): string {
  const id = client.options.clientId ?? ''
  const hints: Record<number, string> = {
    0x8e:
      `another client connected with the same client id, ${id}, and took its session over; ` +
      `give each a different --id`,
    0x8b: 'the broker is stopping; start it again, or pass --url',
  }
  return `the broker at ${url} closed this connection${why}${hints[code] ? `; ${hints[code]}` : ''}`
}

/**
 * The broker `client` is connected to, or trying: `url`, or of a list (--url a,b), the one MQTT.js
 * is at.
 */
export function brokerUrl(client: MqttClient, url: string): string {
  if (!client.options.servers) return url
  const { protocol, hostname, port } = client.options
  return `${protocol}://${hostname}:${port}`
}

/**
 * The connection was accepted, then closed by the other side. Either the broker stopped, or it is
 * running and ended this connection: in MQTT 3.1.1 most often because another client connected with
 * the same client id, which takes the session over (§3.1.4). A new connection tells the two apart.
 */
async function lostConnection(client: MqttClient, url: string): Promise<never> {
  const id = client.options.clientId ?? ''
  const probe = await mqtt
    .connectAsync(url, {
      ...client.options,
      clientId: undefined,
      clean: true,
      will: undefined,
      reconnectPeriod: 0,
      connectTimeout: 2000,
    })
    .catch(() => undefined)
  if (!probe)
    fail(
      `lost the connection to the broker at ${url}; is it still running? (start one with npm run ` +
        `broker)`,
    )
  await probe.endAsync()
  // MQTT.js's made-up ids (mqttjs_ and 8 hex digits) are not shared by chance.
  if (/^mqttjs_[0-9a-f]{8}$/.test(id))
    fail(`the broker at ${url} is running but closed this connection; check its log`)
  fail(
    `the broker at ${url} closed this connection: another client connected with the same client ` +
      `id, ${id}, and took its session over; a broker keeps one connection per client id, so ` +
      `give each a different --id`,
  )
}

/**
 * What went wrong in a TLS handshake, by OpenSSL's and Node.js's codes, in the words of the flag
 * that puts it right.
 */
function tlsProblem(url: string, error: Error & { code?: unknown }): string | undefined {
  const refused = `cannot connect to ${url} over TLS:`
  switch (error.code) {
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'UNABLE_TO_GET_ISSUER_CERT':
      return (
        `${refused} its certificate is signed by a CA this client does not trust; pass --cafile ` +
        `with the CA that signed it (without --cafile, only the system's CAs are trusted)`
      )
    case 'CERT_HAS_EXPIRED':
      return `${refused} its certificate has expired; the broker needs a new one`
    case 'ERR_TLS_CERT_ALTNAME_INVALID': {
      // Node.js names the host asked for and hands over the certificate, with its names.
      const { host, cert } = error as { host?: string; cert?: { subjectaltname?: string } }
      const names = cert?.subjectaltname?.replace(/\b(DNS|IP Address):/g, '') ?? 'other names'
      return (
        `${refused} the host name ${host} does not match the certificate, which is for ` +
        `${names}; connect with a name it was made for`
      )
    }
    case 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED':
    case 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE':
      return needsCertificate(url)
    case 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE':
    case 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA':
      return `${refused} the broker does not trust --cert; give one signed by a CA it trusts`
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
    case 'ERR_SSL_PACKET_LENGTH_TOO_LONG':
      return `${refused} the port does not speak TLS; for plain MQTT use ${plainUrl(url)}`
  }
  return undefined
}

function needsCertificate(url: string): string {
  return (
    `cannot connect to ${url} over TLS: the broker needs a client certificate; pass --cert and ` +
    '--key'
  )
}

/** `url` as a plain connection: mqtt:// for mqtts://, ws:// for wss://. */
function plainUrl(url: string): string {
  return url.replace(/^mqtts:|^ssl:/, 'mqtt:').replace(/^wss:/, 'ws:')
}

/** The broker closed the connection of `client` before its CONNACK. */
function closedBeforeConnack(url: string, client: MqttClient): string {
  // A TLS handshake that went well, and then the end: over TLS 1.3 the broker asks for a client
  // certificate after the handshake, and its alert can be lost when it resets the connection.
  const shaken = (client.stream as { authorized?: boolean } | undefined)?.authorized === true
  if (shaken && !client.options.cert) return needsCertificate(url)
  // Plain MQTT on a TLS port: the broker reads the CONNECT as a broken handshake, and hangs up.
  if (/^(mqtt|tcp):/.test(url)) {
    const secure = url.replace(/^(mqtt|tcp):/, 'mqtts:')
    return (
      `the broker at ${url} closed the connection before accepting it; if that port speaks TLS, ` +
      `use ${secure} with --cafile, else check its log`
    )
  }
  // TLS on a plain port: the broker reads the handshake as a broken CONNECT, and hangs up.
  if (/^(mqtts|ssl):/.test(url)) {
    return (
      `the broker at ${url} closed the connection during the TLS handshake; if that port speaks ` +
      `plain MQTT, use ${plainUrl(url)}, else check its log`
    )
  }
  if (/^wss?:/.test(url)) {
    const plain = `mqtt:${url.replace(/^wss?:/, '')}`
    return (
      `${url} is not a WebSocket port: the server there closed the connection during the ` +
      `WebSocket handshake; for a plain MQTT port use ${plain} (the bundled broker serves ` +
      `WebSocket only on its --ws-port)`
    )
  }
  return `the broker at ${url} closed the connection before accepting it; check its log`
}

function connectionProblem(
  url: string,
  error: Error & { code?: unknown },
  client: MqttClient,
): string {
  const connected = client.connected
  const mqtt5 = client.options.protocolVersion === 5
  const version = mqtt5
    ? 'MQTT 5; leave out -V 5 to speak MQTT 3.1.1'
    : 'this protocol version (MQTT 3.1.1)'
  const refusals: Record<number, string> = {
    // A broker that speaks 3.1.1 only answers an MQTT 5 CONNECT this way too.
    1: `it does not speak ${version}`,
    2: 'it rejected the client id; pass another --id',
    3: 'the server is unavailable',
    4:
      'bad user name or password; pass --username and --password (or set MQTT_USERNAME and ' +
      'MQTT_PASSWORD)',
    // Mosquitto answers 5 to a wrong password too, and so does the bundled broker read from its
    // configuration file: it tells a guesser nothing.
    5:
      'not authorised; give a --username and --password it knows (or the client certificate it ' +
      'asks for)',
  }
  switch (error.code) {
    case 'ECONNREFUSED':
      return (
        `cannot reach the broker at ${url} (connection refused); start one with npm run ` +
        `broker, or pass --url`
      )
    case 'ENOENT':
      return (
        `no broker socket at ${url}; start one with npm run broker -- --unix PATH, or check ` +
        `--url`
      )
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot find the host of ${url}; check --url or MQTT_URL`
    case 'ECONNRESET':
    case 'EPIPE':
      return connected
        ? `the broker at ${url} closed the connection; check its log`
        : closedBeforeConnack(url, client)
  }
  const tls = tlsProblem(url, error)
  if (tls) return tls
  if (typeof error.code === 'number' && refusals[error.code]) {
    return (
      `the broker at ${url} refused the connection: ${refusals[error.code]} (return code ` +
      `${error.code})`
    )
  }
  // MQTT 5 §3.2.2.2: a CONNACK reason code of 0x80 or more refuses the connection, and names the
  // reason.
  if (mqtt5 && typeof error.code === 'number' && error.code >= 0x80) {
    const hints: Record<number, string> = {
      0x84: `it does not speak ${version}`,
      0x85: 'pass another --id',
      0x86: 'pass --username and --password (or set MQTT_USERNAME and MQTT_PASSWORD)',
      0x8c: 'leave out --auth-method',
    }
    const hint = hints[error.code] ? `; ${hints[error.code]}` : ''
    return `the broker at ${url} refused the connection: ${reason(error.code)}${hint}`
  }
  if (error.message === 'connack timeout') {
    return (
      `no answer from ${url} within ${CONNECT_TIMEOUT_MS / 1000} s; is an MQTT broker ` +
      `listening there? check --url`
    )
  }
  if (!connected && /^wss?:/.test(url)) return closedBeforeConnack(url, client)
  if (!connected)
    return (
      `cannot talk MQTT with ${url} (${error.message}); is an MQTT broker listening there? ` +
      `check --url`
    )
  return `the connection to ${url} failed: ${messageOf(error)}`
}
