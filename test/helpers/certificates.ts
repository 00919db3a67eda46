// A local certificate authority and the certificates the security tests need, made on the spot
// with the openssl command a learner types: a server certificate for 127.0.0.1 and localhost, one
// for another host name, one that has expired, and a client certificate whose CN is a user name.
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface Certificates {
  /** The CA's certificate: what clients and brokers trust. */
  ca: string
  /** For 127.0.0.1 and localhost. */
  server: { cert: string; key: string }
  /** For wrong.example only: a client that checks host names refuses it on 127.0.0.1. */
  wrongHost: { cert: string; key: string }
  /** For localhost, expired yesterday. */
  expired: { cert: string; key: string }
  /** A client certificate whose CN is `clientName`. */
  client: { cert: string; key: string }
  /** A client certificate made by a CA nobody trusts. */
  stranger: { cert: string; key: string }
  clientName: string
}

/** Make everything in `dir` (it must exist); takes well under a second with EC keys. */
export function makeCertificates(dir: string, clientName = 'carol'): Certificates {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  const authority = (name: string) =>
    openssl(
      'req',
      '-x509',
      ...key,
      '-subj',
      `/CN=${name}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      '2',
    )
  const signed = (name: string, cn: string, days: number, alt?: string, by = 'ca') => {
    openssl('req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`)
    writeFileSync(join(dir, `${name}.ext`), alt ? `subjectAltName=${alt}\n` : '')
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${by}.crt`,
      '-CAkey',
      `${by}.key`,
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      String(days),
      '-extfile',
      `${name}.ext`,
    )
    return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) }
  }
  authority('ca')
  authority('other-ca')
  return {
    ca: join(dir, 'ca.crt'),
    server: signed('server', 'localhost', 2, 'IP:127.0.0.1,DNS:localhost'),
    wrongHost: signed('wrong-host', 'wrong.example', 2, 'DNS:wrong.example'),
    // A negative number of days: it ended before it began, so it has expired.
    expired: signed('expired', 'localhost', -1, 'IP:127.0.0.1,DNS:localhost'),
    client: signed('client', clientName, 2),
    stranger: signed('stranger', clientName, 2, undefined, 'other-ca'),
    clientName,
  }
}
