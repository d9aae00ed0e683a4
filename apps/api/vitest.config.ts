import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    include: ['test/**/*.test.ts'],
    // The migrated databases each test's fresh one is copied from, made once for the run.
    globalSetup: ['test/database-templates.ts'],
    // Whole deliveries at a high time scale take a few seconds; every wait has its own bound.
    testTimeout: 30_000,
    // Hooks start a broker, open PGlite and build the api, whose own wait for the SUBACK
    // is 10 s: vitest's default hook bound (10 s) was shorter than what it holds.
    hookTimeout: 30_000,
  },
})
