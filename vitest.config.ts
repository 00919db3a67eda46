// Tests start real processes (from bundles: scenarios/stage/bundle.ts, built once by
// test/helpers/global-setup.ts). Every wait in them names what it awaits and fails a hung run after
// scenarios/stage/waiter.ts's HUNG_MS, and a scenario's play fails past its budget
// (scenarios/stage/stage.ts); the timeouts here are only the last resort behind those, and no test
// asserts a duration. Most of a test's time is spent waiting on its child processes, so two workers
// run side by side even on two cores (vitest would use one here), and they keep the modules they
// loaded from one file to the next (isolate: false): every file starts its own brokers and
// processes, and leaves nothing behind for the next.
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    maxWorkers: 3,
    isolate: false,
    // The conformance rules that let seconds pass run side by side, all of them
    // (test/broker/conformance-probe.ts).
    maxConcurrency: 32,
  },
})
