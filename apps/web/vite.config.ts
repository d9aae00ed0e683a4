import { defineConfig } from 'vite'

// `npm run dev -w @skyline/web` serves the page with hot reload and forwards the api's
// paths to a running api (API_ORIGIN, default http://localhost:3000).
const api = process.env.API_ORIGIN ?? 'http://localhost:3000'

export default defineConfig({
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 600 },
  server: {
    proxy: {
      '/api/live': {
        target: api.replace(/^http/, 'ws'),
        ws: true,
        // The api admits browser pages of its own origins only (PUBLIC_ORIGIN): the dev
        // server's page passes as the api's. Only a page of this server (its Origin names
        // the Host, which Vite's allowedHosts keeps to this machine's names): any other
        // keeps its Origin, and the api refuses it.
        configure: (proxy) =>
          proxy.on('proxyReqWs', (proxyReq, req) => {
            const origin = req.headers.origin
            if (
              origin !== undefined &&
              URL.canParse(origin) &&
              new URL(origin).host === req.headers.host
            )
              proxyReq.setHeader('origin', new URL(api).origin)
          }),
      },
      '/api': api,
      '/config.json': api,
    },
  },
})
