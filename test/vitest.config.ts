import { defineProject } from 'vitest/config'

// The repository as a whole: the deployment files checked against the code, and
// `npm start` run from a fresh clone as a new user would.
export default defineProject({
  test: {
    name: 'repo',
    include: ['**/*.test.ts'],
    // `npm start` builds, then starts three processes; every wait inside has its own bound.
    testTimeout: 90_000,
    // The fresh clone's `npm install`.
    hookTimeout: 240_000,
  },
})
