// Before any test file runs: bring the bundles of every program up to date in one build, so that
// the tests start programs from them (scenarios/stage/bundle.ts) instead of racing to build them
// one by one.
import { buildBundles, isTlsUrl, programs } from '../../scenarios/stage/bundle.ts'

export default async function setup(): Promise<void> {
  // Every node process the tests start would read NODE_EXTRA_CA_CERTS, a fifth of what a start
  // costs (see programEnv() in scenarios/stage/bundle.ts); the workers start after this, without
  // it, and so do their children. Kept when the tests run against a broker over TLS
  // (MQTT_URL=mqtts://...).
  if (!isTlsUrl(process.env.MQTT_URL)) delete process.env.NODE_EXTRA_CA_CERTS
  await buildBundles(programs())
}
