import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    include: ['test/**/*.test.ts'],
    // Several tests start a broker process; every wait inside has its own bound.
    testTimeout: 30_000,
  },
})
