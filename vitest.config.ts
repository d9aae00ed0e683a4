import { defineConfig } from 'vitest/config'

// One vitest run over every workspace: each package and app is its own project,
// configured by the vitest.config.ts in its folder.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*'],
  },
})
