import type {
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  FastifyServerOptions,
} from 'fastify'
import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod'
import { ErrorSchema } from '@skyline/schemas'
import type { Authenticate } from './auth/authenticate.ts'
import type { ApiConfig } from './config.ts'
import type { Database } from './db/client.ts'
import { isDatabaseUnavailable } from './db/errors.ts'
import { ApiError, RETRY_AFTER_S } from './errors.ts'
import databasePlugin from './plugins/external/database.ts'
import mqttPlugin from './plugins/external/mqtt.ts'
import alertsPlugin from './plugins/app/alerts.ts'
import deliveriesPlugin from './plugins/app/deliveries.ts'
import dispatcher from './plugins/app/dispatcher.ts'
import auth from './plugins/app/auth.ts'
import fleetRepository from './plugins/app/fleet-repository.ts'
import geofencesPlugin from './plugins/app/geofences.ts'
import housekeeping from './plugins/app/housekeeping.ts'
import ingestPlugin from './plugins/app/ingest.ts'
import limits from './plugins/app/limits.ts'
import live from './plugins/app/live.ts'
import metrics from './plugins/app/metrics.ts'
import security from './plugins/app/security.ts'
import web from './plugins/app/web.ts'
import leadership from './plugins/app/leadership.ts'
import changeFeed from './plugins/app/change-feed.ts'
import alertsRoutes from './routes/api/alerts.ts'
import authRoutes from './routes/api/auth.ts'
import deliveriesRoutes from './routes/api/deliveries.ts'
import drones from './routes/api/drones.ts'
import fleet from './routes/api/fleet.ts'
import geofencesRoutes from './routes/api/geofences.ts'
import health from './routes/api/health.ts'
import stations from './routes/api/stations.ts'
import stats from './routes/api/stats.ts'

declare module 'fastify' {
  interface FastifyInstance {
    config: ApiConfig
    tokenSecret: string
  }
}

export interface AppOptions {
  config: ApiConfig
  database: Database
  /** Secret that signs device tokens (the ingest's service token). */
  tokenSecret: string
  /**
   * Who a bearer token is. Default: Skyline's device tokens, signed with `tokenSecret`
   * (packages/auth's authenticator, OIDC beside them, goes here).
   */
  authenticate?: Authenticate
  /** The api's clock for the delivery lifecycle and the dispatcher. Default the system's. */
  now?: () => Date
}

/**
 * Options for the Fastify factory (server.ts, the tests): what fails before routing (a
 * malformed percent-escape, a path parameter past `maxParamLength`) never reaches the
 * app's error handler, so Fastify's own body would go out instead of the error shape.
 */
export const serverOptions = (config: ApiConfig) =>
  ({
    frameworkErrors: (err: FastifyError, _req: FastifyRequest, reply: FastifyReply) => {
      const code = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'uri_too_long' : 'bad_url'
      void reply.code(err.statusCode ?? 400).send({ error: { code, message: err.message } })
    },
    // A client's address (per-address limits, the live stream's cap) is the one the
    // proxies of TRUST_PROXY forward in X-Forwarded-For; without it, the peer's own.
    trustProxy: config.TRUST_PROXY.length > 0 ? config.TRUST_PROXY.join(',') : false,
  }) satisfies FastifyServerOptions

/**
 * The logger's options (server.ts, the tests). Fastify logs a request's method and URL,
 * never its headers; the Authorization header is redacted all the same, should a header
 * ever be logged (an error serialiser, a debug line): tokens never reach a log (issue 16).
 */
export const loggerOptions = (level: string) => ({
  level,
  redact: {
    paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization'],
    censor: '[redacted]',
  },
})

/**
 * The api as a Fastify plugin: everything it needs comes in as options. Not
 * encapsulated (fastify-plugin), so whoever registers it sees its decorators.
 */
export default fp(app, { name: 'skyline-api' })

async function app(fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  fastify.decorate('config', opts.config)
  fastify.decorate('tokenSecret', opts.tokenSecret)
  fastify.setValidatorCompiler(validatorCompiler)
  fastify.setSerializerCompiler(serializerCompiler)

  // One error shape, never a stack trace; 5xx text is hidden from the client.
  fastify.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof ApiError) {
      return reply.code(err.statusCode).send({ error: { code: err.code, message: err.message } })
    }
    // An outage is the database's, not the request's: 503, and the same request may
    // succeed in a moment (issue #14; it was a 500).
    if (isDatabaseUnavailable(err)) {
      req.log.warn({ err }, 'database unavailable')
      return reply
        .code(503)
        .header('retry-after', RETRY_AFTER_S)
        .send({
          error: {
            code: 'database_unavailable',
            message: 'the database cannot be reached: try again shortly',
          },
        })
    }
    if (err.code === 'FST_ERR_HANDLER_TIMEOUT') {
      req.log.warn({ err }, 'read timed out')
      return reply
        .code(503)
        .header('retry-after', RETRY_AFTER_S)
        .send({
          error: {
            code: 'timeout',
            message: `no answer within ${req.routeOptions.handlerTimeout} ms (the database is slow or unreachable): try again shortly`,
          },
        })
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      const message = err.validation
        .map(
          (v) =>
            `${err.validationContext ?? 'request'}${v.instancePath.replaceAll('/', '.')}: ${v.message}`,
        )
        .join('; ')
      return reply.code(400).send({ error: { code: 'bad_request', message } })
    }
    const status = err.statusCode ?? 500
    if (status >= 500) {
      req.log.error({ err }, 'request failed')
      return reply.code(status).send({ error: { code: 'internal', message: 'internal error' } })
    }
    return reply
      .code(status)
      .send({ error: { code: err.code?.toLowerCase() ?? 'bad_request', message: err.message } })
  })
  fastify.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url}` } }),
  )

  // Every REST read answers within REST_READ_TIMEOUT_MS, 503 `timeout` otherwise: no
  // driver timeout covers a server that stops answering on an open connection (Fastify's
  // handlerTimeout; the query runs on, its late result is dropped). Writes are left
  // alone: a 503 for a write that commits later would be a lie. Every route says in
  // OpenAPI that it may answer 400 and 503 in the error shape.
  fastify.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/api/') || route.websocket === true) return
    const methods = [route.method].flat()
    if (methods.every((m) => m === 'GET' || m === 'HEAD'))
      route.handlerTimeout ??= opts.config.REST_READ_TIMEOUT_MS
    const response = route.schema?.response as Record<number, unknown> | undefined
    if (response !== undefined) {
      response[400] ??= ErrorSchema
      response[503] ??= ErrorSchema
    }
    // Who may call it, in OpenAPI (the access matrix test reads it): a bearer token and
    // its 401/403, except for the public probes.
    if (route.config?.access === 'public' || route.schema === undefined) return
    route.schema.security ??= [{ bearer: [] }]
    if (response !== undefined) {
      response[401] ??= ErrorSchema
      response[403] ??= ErrorSchema
    }
  })

  await fastify.register(swagger, {
    openapi: {
      info: {
        title: 'Skyline API',
        version: '0.1.0',
        description: 'Drone fleet tracking: REST and live stream',
      },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description:
              'A Skyline token (`npm run token`): viewer, service or admin; reads see its fleets only',
          },
        },
      },
    },
    transform: jsonSchemaTransform,
  })
  await fastify.register(security)
  // The validator badge would load an image from validator.swagger.io (and send it the
  // document's address): off, and the CSP (security.ts) allows no such image anyway.
  await fastify.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { validatorUrl: null },
    // swagger-ui's bundle injects a <style> element: inline styles on its own routes only.
    // Scripts stay 'self' there too (apps/web/test/live-map.test.ts renders it in Chromium).
    transformStaticCSP: (header) =>
      header.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'"),
  })

  await fastify.register(metrics)
  // Before auth and the routes: auth counts failures in it; the write limit is added to
  // each write route as it is declared.
  await fastify.register(limits)
  await fastify.register(databasePlugin, { database: opts.database })
  await fastify.register(leadership)
  await fastify.register(mqttPlugin)
  await fastify.register(fleetRepository)
  await fastify.register(geofencesPlugin, { now: opts.now })
  await fastify.register(deliveriesPlugin, { now: opts.now })
  await fastify.register(alertsPlugin, { now: opts.now })
  await fastify.register(auth, { authenticate: opts.authenticate })
  await fastify.register(live)
  await fastify.register(changeFeed)
  await fastify.register(ingestPlugin)
  await fastify.register(dispatcher, { now: opts.now })
  await fastify.register(housekeeping)
  for (const routes of [
    health,
    authRoutes,
    fleet,
    drones,
    stations,
    deliveriesRoutes,
    geofencesRoutes,
    alertsRoutes,
    stats,
  ]) {
    await fastify.register(routes, { prefix: '/api' })
  }
  await fastify.register(web)
}
