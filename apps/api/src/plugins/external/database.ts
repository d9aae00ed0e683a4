import fp from 'fastify-plugin'
import type { Database } from '../../db/client.ts'

declare module 'fastify' {
  interface FastifyInstance {
    database: Database
  }
}

/** The database the app was given. Whoever opened it closes it, after the app. */
export default fp<{ database: Database }>(
  async (fastify, { database }) => {
    fastify.decorate('database', database)
  },
  { name: 'database' },
)
