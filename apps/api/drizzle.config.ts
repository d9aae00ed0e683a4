import { defineConfig } from 'drizzle-kit'

// `npm run db:generate -w @skyline/api` writes a migration for a schema change; the
// migrations in ./drizzle are committed and applied at start.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './drizzle',
})
