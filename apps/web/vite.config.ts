import { defineConfig } from 'vite'

// `npm run dev -w @skyline/web` serves the page with hot reload and forwards the api's
// paths to a running api (API_ORIGIN, default http://localhost:3000).
const api = process.env.API_ORIGIN ?? 'http://localhost:3000'

export default defineConfig({
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 600 },
  server: {
    proxy: {
      '/api/live': { target: api.replace(/^http/, 'ws'), ws: true },
      '/api': api,
      '/config.json': api,
    },
  },
})
