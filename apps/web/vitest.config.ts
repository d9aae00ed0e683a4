import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    include: ['test/**/*.test.ts'],
    // The browser tests build the page once, then drive Chromium against a real stack,
    // whose database is a copy of the api's migrated template (made once for the run).
    globalSetup: ['test/build-page.ts', '../api/test/database-templates.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
})
