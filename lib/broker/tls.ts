// The TLS side of a configured listener (cafile, certfile, keyfile, require_certificate): the
// files read and checked before anything listens, so that a key that does not match its
// certificate, or a certificate that has expired, stops the broker with one line rather than
// failing each client's handshake later.
import { readFileSync } from 'node:fs'
import { createSecureContext, type TlsOptions } from 'node:tls'
import { X509Certificate } from 'node:crypto'
import { messageOf } from '../cli.ts'
import type { ListenerSettings } from './config.ts'

/** What node:tls's createServer takes for this listener; undefined for a plain listener. */
export function tlsOptions(listener: ListenerSettings): TlsOptions | undefined {
  const { where, cafile, certfile, keyfile } = listener
  if (certfile === undefined || keyfile === undefined) return undefined
  const read = (option: string, file: string) => {
    try {
      return readFileSync(file)
    } catch (error) {
      throw new Error(`${where}: cannot read ${option} ${file}: ${messageOf(error)}`)
    }
  }
  const cert = read('certfile', certfile)
  const key = read('keyfile', keyfile)
  const ca = cafile === undefined ? undefined : read('cafile', cafile)
  let certificate: X509Certificate
  try {
    certificate = new X509Certificate(cert)
  } catch {
    throw new Error(`${where}: certfile ${certfile} is not a PEM certificate`)
  }
  if (Date.parse(certificate.validTo) < Date.now())
    throw new Error(
      `${where}: certfile ${certfile} expired on ${certificate.validTo}; make a new certificate`,
    )
  if (ca !== undefined) {
    try {
      new X509Certificate(ca)
    } catch {
      throw new Error(`${where}: cafile ${cafile} is not a PEM certificate`)
    }
  }
  const options: TlsOptions = {
    cert,
    key,
    ca,
    // Mosquitto asks a client for a certificate only with require_certificate true. Node.js would
    // close the connection quietly on a certificate it does not trust, and MQTT.js would wait for a
    // CONNACK for ever: ./listeners.ts resets it instead, as it does any other refusal.
    requestCert: listener.requireCertificate,
    rejectUnauthorized: false,
  }
  try {
    createSecureContext(options)
  } catch (error) {
    const message = messageOf(error)
    throw new Error(
      /key values mismatch/.test(message)
        ? `${where}: keyfile ${keyfile} is not the key of certfile ${certfile}`
        : `${where}: cannot use certfile ${certfile} and keyfile ${keyfile}: ${message}`,
    )
  }
  return options
}

/** The CN of the client's certificate (use_identity_as_username), if it gave a trusted one. */
export function commonNameOf(peer: { getPeerCertificate?(): { subject?: { CN?: unknown } } }) {
  const cn = peer.getPeerCertificate?.()?.subject?.CN
  return typeof cn === 'string' && cn !== '' ? cn : undefined
}
