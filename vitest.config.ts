// Tests start real processes (node with tsx takes about half a second each), so they get time to
// finish; no test asserts a duration.
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
  },
})
