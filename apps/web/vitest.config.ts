import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    include: ['test/**/*.test.ts'],
    // The browser tests build the page once, then drive Chromium against a real stack.
    globalSetup: ['test/build-page.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
})
