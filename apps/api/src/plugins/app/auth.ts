import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { TokenError, oidcOptions } from '@skyline/auth'
import { tokenAuthenticator } from '../../auth/authenticate.ts'
import type { Authenticate } from '../../auth/authenticate.ts'
import { canOperate, canRead } from '../../auth/principal.ts'
import type { Principal } from '../../auth/principal.ts'
import { ApiError } from '../../errors.ts'

/**
 * What a route under `/api/` asks of its caller (route `config.access`, default `read`):
 * - `public`: nobody in particular (`/api/health`, `/api/ready`: probes carry no token);
 * - `read`: a token of a reading role (viewer, service, admin), whose fleets scope the read;
 * - `operate`: a token of an operating role (service, admin), in the fleets it names;
 * - `in-band`: the route signs its client in itself (`/api/live`, in its first message).
 */
export type Access = 'public' | 'read' | 'operate' | 'in-band'

declare module 'fastify' {
  interface FastifyInstance {
    /** Bearer token → principal; rejects a token that does not verify. */
    authenticate: Authenticate
    /**
     * A token as a principal allowed to read (the live stream signs in with this); a token
     * that does not verify counts against `from`'s address (limits.ts).
     */
    readerOf: (token: string | undefined, from: FastifyRequest) => Promise<Principal>
  }
  interface FastifyRequest {
    /** Who calls: set on every `/api/` route that is not `public` or `in-band`. */
    principal: Principal
  }
  interface FastifyContextConfig {
    access?: Access
  }
}

/** A Bearer token from an Authorization header (RFC 6750 §2.1; the scheme is case-insensitive). */
function bearer(header: string | undefined): string | undefined {
  const m = header === undefined ? null : /^Bearer +(\S+) *$/i.exec(header)
  return m?.[1]
}

const unauthorized = (message: string) => new ApiError(401, 'unauthorized', message)

/**
 * Every reader is someone (issue 16): each `/api/` route but the `public` ones needs
 * `Authorization: Bearer <token>`: a Skyline device token or, with OIDC_ISSUER, the
 * issuer's access token (packages/auth, through `authenticate`). 401 without a token or with one
 * that does not verify, 403 for a role the route is not for. The principal then scopes
 * every read to its fleets (the repositories take a FleetScope).
 *
 * Checked onRequest, before the query and body are parsed: a stranger learns nothing
 * about a route's parameters. Nothing here logs a token (Fastify logs method and URL,
 * never headers; the server's logger redacts the header anyway).
 */
export default fp<{ authenticate?: Authenticate }>(
  async (fastify, opts) => {
    const authenticate =
      opts.authenticate ?? tokenAuthenticator(fastify.tokenSecret, oidcOptions(fastify.config))
    fastify.decorate('authenticate', authenticate)
    fastify.decorateRequest('principal', null as unknown as Principal)

    const principalOf = async (
      token: string | undefined,
      from: FastifyRequest,
    ): Promise<Principal> => {
      if (token === undefined) throw unauthorized('send a token: Authorization: Bearer <token>')
      return authenticate(token).catch(async (err: unknown) => {
        // The issuer's keys cannot be fetched: the token may be good, try again shortly.
        if (err instanceof TokenError && err.code === 'issuer_unavailable')
          throw new ApiError(503, 'issuer_unavailable', err.message)
        await fastify.authFailures.record(from) // a guess, or a stale token: either counts
        throw unauthorized('the token does not verify')
      })
    }
    fastify.decorate('readerOf', async (token: string | undefined, from: FastifyRequest) => {
      const p = await principalOf(token, from)
      if (!canRead(p)) throw new ApiError(403, 'forbidden', `a ${p.role} token cannot read`)
      return p
    })

    fastify.addHook('onRequest', async (req: FastifyRequest, reply) => {
      const url = req.routeOptions.url
      if (url === undefined || !url.startsWith('/api/')) return // the map, /metrics, /docs, 404s
      const access = req.routeOptions.config.access ?? 'read'
      if (access === 'public' || access === 'in-band') return
      // An address that sent too many tokens that do not verify waits, whatever it sends.
      await fastify.authFailures.refuseIfBlocked(req, reply)
      // RFC 6750 §3: a 401 names the scheme it wants.
      reply.header('www-authenticate', 'Bearer')
      const p = await principalOf(bearer(req.headers.authorization), req)
      reply.removeHeader('www-authenticate')
      if (access === 'operate' && !canOperate(p))
        throw new ApiError(403, 'forbidden', `a ${p.role} token cannot operate`)
      if (!canRead(p)) throw new ApiError(403, 'forbidden', `a ${p.role} token cannot read`)
      req.principal = p
    })
  },
  { name: 'auth', dependencies: ['limits'] },
)
