// Tests start real processes (from bundles: scenarios/bundle.ts, built once by test/global-setup.ts),
// so they get time to finish; no test asserts a duration. Most of a test's time is spent waiting on
// its child processes, so two workers run side by side even on two cores (vitest would use one here).
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    maxWorkers: 2,
  },
})
