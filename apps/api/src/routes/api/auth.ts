import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { AuthConfigSchema, WhoAmISchema } from '@skyline/schemas'
import type { AuthConfig, WhoAmI } from '@skyline/schemas'
import { canOperate } from '../../auth/principal.ts'

const auth: FastifyPluginAsyncZod = async (fastify) => {
  const { OIDC_ISSUER, OIDC_AUDIENCE, OIDC_WEB_CLIENT_ID, OIDC_WEB_SCOPE } = fastify.config
  const body: AuthConfig = {
    oidc:
      OIDC_ISSUER !== undefined && OIDC_AUDIENCE !== undefined && OIDC_WEB_CLIENT_ID !== undefined
        ? {
            issuer: OIDC_ISSUER,
            clientId: OIDC_WEB_CLIENT_ID,
            audience: OIDC_AUDIENCE,
            scope: OIDC_WEB_SCOPE,
          }
        : null,
  }
  // The map reads this before it has a token: public, and nothing in it is a secret (the
  // client is a public one; the issuer publishes the rest in its discovery document).
  fastify.get('/auth/config', {
    config: { access: 'public' },
    schema: {
      summary:
        'How the map signs in: the OpenID Connect issuer and its public client, or null (tokens only)',
      response: { 200: AuthConfigSchema },
    },
    handler: async () => body,
  })

  // The map asks what to offer (issue 18: drawing zones is for operators); any reader may.
  fastify.get('/auth/me', {
    schema: {
      summary: 'Who the token names: its role, its fleets, whether it operates them',
      response: { 200: WhoAmISchema },
    },
    handler: async (req): Promise<WhoAmI> => {
      const { sub, role, fleets } = req.principal
      return {
        sub,
        role,
        fleets: fleets === '*' ? '*' : [...fleets],
        operates: canOperate(req.principal),
      }
    },
  })
}

export default auth
