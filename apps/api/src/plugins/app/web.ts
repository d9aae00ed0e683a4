import { existsSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import fastifyStatic from '@fastify/static'
import fp from 'fastify-plugin'
import { ApiError } from '../../errors.ts'

/**
 * The web map at `/`: the Vite build in WEB_DIR, and `/config.json`, the settings the
 * page reads at start (tile server). Vite's hashed assets are cached for good; the
 * page itself is revalidated so a new build shows at the next load.
 */
export default fp(
  async (fastify) => {
    const { MAP_TILE_URL, MAP_TILE_ATTRIBUTION } = fastify.config
    const WEB_DIR = resolve(fastify.config.WEB_DIR)
    fastify.get('/config.json', { schema: { hide: true } }, async () => ({
      tileUrl: MAP_TILE_URL === 'none' ? null : MAP_TILE_URL,
      tileAttribution: MAP_TILE_ATTRIBUTION,
    }))

    if (!existsSync(join(WEB_DIR, 'index.html'))) {
      fastify.log.warn({ WEB_DIR }, 'web map not built: run `npm run build`')
      fastify.get('/', { schema: { hide: true } }, async () => {
        throw new ApiError(
          503,
          'web_not_built',
          `the web map is not built in ${WEB_DIR}: run \`npm run build\` (or set WEB_DIR)`,
        )
      })
      return
    }
    await fastify.register(fastifyStatic, {
      root: WEB_DIR,
      schemaHide: true,
      // Our own header: @fastify/static's would overwrite what setHeaders sets.
      cacheControl: false,
      setHeaders: (res, path) => {
        res.setHeader(
          'cache-control',
          relative(WEB_DIR, path).startsWith('assets')
            ? 'public, max-age=31536000, immutable'
            : 'no-cache',
        )
      },
    })
  },
  { name: 'web', dependencies: [] },
)
