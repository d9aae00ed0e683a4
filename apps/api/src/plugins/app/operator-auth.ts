import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { verifyDeviceToken } from '@skyline/auth'
import { ApiError } from '../../errors.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler for operator endpoints: a `service` token as `Authorization: Bearer <token>`. */
    requireOperator: (req: FastifyRequest) => Promise<void>
  }
}

/**
 * Operator endpoints (the POSTs) take the same device tokens as MQTT, signed with
 * DEVICE_TOKEN_SECRET; only the `service` role may operate (`npm run token -- --role
 * service --id ops-alice`). ARCHITECTURE's roles are MQTT's; a narrower HTTP-only
 * operator role would be a contract change.
 */
export default fp(
  async (fastify) => {
    fastify.decorate('requireOperator', async (req: FastifyRequest) => {
      const header = req.headers.authorization
      const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined
      if (token === undefined || token === '') {
        throw new ApiError(
          401,
          'unauthorized',
          'send an operator token: Authorization: Bearer <token>',
        )
      }
      const who = await verifyDeviceToken(fastify.tokenSecret, token).catch(() => {
        throw new ApiError(401, 'unauthorized', 'the token does not verify')
      })
      if (who.role !== 'service')
        throw new ApiError(403, 'forbidden', `a ${who.role} token cannot operate`)
    })
  },
  { name: 'operator-auth' },
)
