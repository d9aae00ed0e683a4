import { fileURLToPath } from 'node:url'
import { build } from 'vite'

/** Where the browser tests' api serves the page from: a fresh build of this app. */
export const WEB_DIST = fileURLToPath(new URL('../dist', import.meta.url))

/** vitest globalSetup: builds the page once before the browser tests. */
export default async function setup(): Promise<void> {
  await build({
    root: fileURLToPath(new URL('..', import.meta.url)),
    logLevel: 'warn',
  })
}
