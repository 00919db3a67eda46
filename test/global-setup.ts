// Before any test file runs: bring the bundles of every program up to date in one build, so that the
// tests start programs from them (scenarios/bundle.ts) instead of racing to build them one by one.
import { buildBundles, programs } from '../scenarios/bundle.ts'

export default async function setup(): Promise<void> {
  await buildBundles(programs())
}
