import { defineConfig } from 'vitest/config'

// One vitest run over every workspace: each package and app is its own project,
// configured by the vitest.config.ts in its folder; test/ holds the repository's own
// (the deployment files, `npm start` from a fresh clone); bench/ the benchmarks' quick checks.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'test', 'bench'],
  },
})
