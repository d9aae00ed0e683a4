import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    include: ['test/**/*.test.ts'],
    // Whole deliveries at a high time scale take a few seconds; every wait has its own bound.
    testTimeout: 30_000,
  },
})
