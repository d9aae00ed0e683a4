import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import rateLimit, { normalizeIP } from '@fastify/rate-limit'
import fp from 'fastify-plugin'
import { ApiError } from '../../errors.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Failed sign-ins per remote address (a token that does not verify). */
    authFailures: AuthFailures
  }
}

/** The windows both limits count in, ms: one minute. */
const WINDOW_MS = 60_000

/**
 * A request's remote address, an IPv6 one by its /64 (what one host holds), as the
 * plugin's default key has it; that one throws on a request without an address (an
 * injected WebSocket), which would be a 500.
 */
function addressOf(req: FastifyRequest): string {
  const ip: string | undefined = req.ip
  return ip === undefined ? 'unknown' : normalizeIP(ip)
}

const rateLimited = (message: string) => new ApiError(429, 'rate_limited', message)

export interface AuthFailures {
  /**
   * Throws 429 `rate_limited` (and sets Retry-After on `reply`, when there is one) while
   * `req`'s address is over its failed sign-ins: every request of it that needs a token.
   */
  refuseIfBlocked(req: FastifyRequest, reply?: FastifyReply): Promise<void>
  /** Counts a token from `req`'s address that did not verify. */
  record(req: FastifyRequest): Promise<void>
}

/**
 * Request rates (issue 16), with @fastify/rate-limit's store (in memory, per api process):
 * - writes (every POST, PUT, PATCH and DELETE under `/api/`): RATE_LIMIT_WRITES_PER_MIN per
 *   principal (its `sub`; the remote address if none), so one client cannot flood the
 *   dispatcher, and cannot slow another client down either. Counted after sign-in, so a
 *   401 costs nothing here. Reads are not limited: the map polls them.
 * - failed sign-ins: past RATE_LIMIT_AUTH_FAILURES_PER_MIN tokens that do not verify from
 *   one address in a window, that address gets 429 on everything that needs a token (REST
 *   and the live stream) until the window ends: guessing tokens is slow. A request without
 *   a token is not a guess and is not counted.
 *
 * Both answer 429 `rate_limited` in the error shape with Retry-After (s), never a 5xx.
 * Registered before the routes: the write limit is added to each route as it is declared,
 * so a new write route cannot be left out.
 */
export default fp(
  async (fastify) => {
    const { config, metrics } = fastify
    await fastify.register(rateLimit, {
      global: false,
      errorResponseBuilder: (_req, ctx) => {
        metrics.rateLimited.inc({ limit: 'writes' })
        return rateLimited(
          `over ${config.RATE_LIMIT_WRITES_PER_MIN} writes a minute: retry in ${(ctx as { after?: string }).after ?? 'a minute'}`,
        )
      },
    })

    const writes = fastify.rateLimit({
      max: config.RATE_LIMIT_WRITES_PER_MIN,
      timeWindow: WINDOW_MS,
      // After the auth hook (onRequest): the principal is known, and a body that fails
      // validation (400) still counts.
      hook: 'preValidation',
      // The principal's kind with its sub: a device token's `sub` and an issuer's never
      // share a budget. `p:` and `ip:` keep the two kinds of key apart.
      keyGenerator: (req) =>
        (req.principal as typeof req.principal | null) === null
          ? `ip:${addressOf(req)}`
          : `p:${req.principal.kind}:${req.principal.sub}`,
    })
    fastify.addHook('onRoute', (route: RouteOptions) => {
      if (!route.url.startsWith('/api/')) return
      if ([route.method].flat().every((m) => ['GET', 'HEAD', 'OPTIONS'].includes(m))) return
      route.preValidation = [route.preValidation ?? []].flat().concat(writes)
    })

    const failures = fastify.createRateLimit({
      max: config.RATE_LIMIT_AUTH_FAILURES_PER_MIN,
      timeWindow: WINDOW_MS,
      keyGenerator: addressOf,
    })
    fastify.decorate('authFailures', {
      async refuseIfBlocked(req, reply) {
        const state = await failures(req, { increment: false })
        if (state.isAllowed || !state.isExceeded) return
        metrics.rateLimited.inc({ limit: 'auth_failures' })
        reply?.header('retry-after', String(Math.max(1, state.ttlInSeconds)))
        throw rateLimited(
          `over ${state.max} tokens that do not verify from ${req.ip} this minute: retry in ${Math.max(1, state.ttlInSeconds)} s`,
        )
      },
      async record(req) {
        await failures(req)
      },
    } satisfies AuthFailures)
  },
  { name: 'limits', dependencies: ['metrics'] },
)
