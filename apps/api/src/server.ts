// Entry point of `npm run api`: builds the logger, opens the database, listens, and
// closes everything on SIGINT/SIGTERM. The app itself is ./app.ts.
import Fastify from 'fastify'
import { resolveTokenSecret } from '@skyline/auth'
import app, { loggerOptions, serverOptions } from './app.ts'
import { ConfigError, loadConfig } from './config.ts'
import { openDatabase } from './db/client.ts'

async function main(): Promise<void> {
  const config = loadConfig(process.env)
  const fastify = Fastify({
    ...serverOptions(config),
    logger: { ...loggerOptions(config.LOG_LEVEL), base: { app: 'api' } },
    forceCloseConnections: true,
  })
  const database = await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATA_DIR })
  fastify.log.info({ database: database.kind }, 'database ready')
  // onClose hooks run last-added first: added before the app, the database closes after
  // the app's own hooks, among them the ingest's last write of what it has buffered.
  fastify.addHook('onClose', () => database.close())
  await fastify.register(app, {
    config,
    database,
    tokenSecret: resolveTokenSecret(config.DEVICE_TOKEN_SECRET, config.DATA_DIR),
  })
  try {
    await fastify.listen({ host: config.HOST, port: config.HTTP_PORT })
  } catch (err) {
    await fastify.close()
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new ConfigError(
        `port ${config.HTTP_PORT} is already in use: set HTTP_PORT to a free port`,
      )
    }
    throw err
  }
  let stopping = false
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    fastify.log.info({ signal }, 'shutting down')
    fastify.close().then(
      () => process.exit(0),
      (err: unknown) => {
        fastify.log.error({ err }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) console.error(`api: ${err.message}`)
  else console.error('api: failed to start:', err)
  process.exit(1)
})
