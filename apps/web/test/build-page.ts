import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import fastifyStatic from '@fastify/static'
import type { FleetView } from '@skyline/schemas'
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

/**
 * The built page on a loopback port, with `fleet` as the api's /api/fleet, no map tiles
 * and no identity server: for tests that play the live stream themselves (page.routeWebSocket).
 * `routes` adds the api's other answers a test needs (e.g. a drone's track).
 */
export async function servePage(
  fleet: FleetView,
  routes: (server: FastifyInstance) => void = () => undefined,
): Promise<{ base: string; close(): Promise<void> }> {
  const server = Fastify()
  routes(server)
  // A drone selected on the map asks for its recent track: none here, unless the test says.
  if (!server.hasRoute({ method: 'GET', url: '/api/drones/:id/track' }))
    server.get<{ Params: { id: string }; Querystring: { fleet?: string } }>(
      '/api/drones/:id/track',
      async (req) => ({ droneId: req.params.id, fleetId: req.query.fleet ?? '', points: [] }),
    )
  await server.register(fastifyStatic, { root: WEB_DIST })
  server.get('/config.json', async () => ({ tileUrl: null, tileAttribution: '' }))
  server.get('/api/auth/config', async () => ({ oidc: null }))
  server.get('/api/fleet', async () => fleet)
  // A viewer of the fleet's fleets, with no zones, unless the test says otherwise.
  if (!server.hasRoute({ method: 'GET', url: '/api/auth/me' }))
    server.get('/api/auth/me', async () => ({
      sub: 'watcher',
      role: 'viewer',
      fleets: [...new Set(fleet.drones.map((d) => d.fleetId))],
      operates: false,
    }))
  if (!server.hasRoute({ method: 'GET', url: '/api/geofences' }))
    server.get('/api/geofences', async () => ({ geofences: [] }))
  await server.listen({ host: '127.0.0.1', port: 0 })
  const address = server.server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening')
  return { base: `http://127.0.0.1:${address.port}`, close: () => server.close() }
}
