import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import {
  ALERT_KINDS,
  ALERT_STATES,
  AlertSchema,
  ErrorSchema,
  IdSchema,
  WebhookDeadLetterSchema,
} from '@skyline/schemas'
import type { WebhookDeadLetter } from '@skyline/schemas'
import { scopeOf } from '../../auth/principal.ts'
import { alertOf } from '../../alerts/repository.ts'
import type { OutboxRow } from '../../alerts/repository.ts'
import { notFound } from '../../errors.ts'
import { CursorQuery, encodeCursor } from './query.ts'

const Params = z.object({ id: IdSchema })

/** A dead letters' cursor: the time and the outbox row's id (digits) of the last one shown. */
const DeadLetterCursor = CursorQuery.refine((c) => /^[1-9][0-9]{0,14}$/.test(c.id), {
  message: 'is not a cursor this api returned',
}).transform((c) => ({ at: c.at, id: Number(c.id) }))

const deadLetterOf = (row: OutboxRow): WebhookDeadLetter => ({
  id: row.id,
  alertId: row.alertId,
  fleetId: row.fleetId,
  attempts: row.attempts,
  lastError: row.lastError,
  createdAt: row.createdAt.toISOString(),
  deadAt: row.deadAt!.toISOString(),
  alert: AlertSchema.parse(JSON.parse(row.body)),
})

/** Alerts (docs/architecture.md "Alerts"): read by the fleets' readers, acknowledged by operators. */
const routes: FastifyPluginAsyncZod = async (fastify) => {
  const { service } = fastify.alerts

  fastify.get('/alerts', {
    schema: {
      summary: "Alerts of the reader's fleets, newest first (by opening), a page at a time",
      querystring: z.object({
        fleet: IdSchema.optional(),
        state: z.enum(ALERT_STATES).optional(),
        kind: z.enum(ALERT_KINDS).optional(),
        limit: z.coerce.number().int().min(1).max(200).default(50),
        cursor: CursorQuery.optional().describe('nextCursor of the previous page'),
      }),
      response: {
        200: z.object({ alerts: z.array(AlertSchema), nextCursor: z.string().nullable() }),
        400: ErrorSchema,
      },
    },
    handler: async (req) => {
      const { fleet, cursor, ...filter } = req.query
      const page = await service.repository.list({
        ...filter,
        fleets: scopeOf(req.principal, fleet),
        after: cursor,
      })
      return {
        alerts: page.alerts.map(alertOf),
        nextCursor: page.next !== null ? encodeCursor(page.next) : null,
      }
    },
  })

  fastify.get('/alerts/:id', {
    schema: {
      summary: 'One alert',
      params: Params,
      response: { 200: AlertSchema, 400: ErrorSchema, 404: ErrorSchema },
    },
    handler: async (req) => {
      const row = await service.repository.get(req.params.id, req.principal.fleets)
      if (row === undefined) throw notFound('alert', req.params.id)
      return alertOf(row)
    },
  })

  fastify.get('/alerts/webhook/dead-letters', {
    // What the webhook gave up on is an operator's to look into (and its errors may name
    // the receiver's internals): not for viewers.
    config: { access: 'operate' },
    schema: {
      summary:
        "Alert changes the webhook gave up on, of the token's fleets (service or admin), the latest first",
      querystring: z.object({
        fleet: IdSchema.optional(),
        limit: z.coerce.number().int().min(1).max(200).default(50),
        cursor: DeadLetterCursor.optional().describe('nextCursor of the previous page'),
      }),
      response: {
        200: z.object({
          deadLetters: z.array(WebhookDeadLetterSchema),
          nextCursor: z.string().nullable(),
        }),
        400: ErrorSchema,
      },
    },
    handler: async (req) => {
      const { fleet, cursor, limit } = req.query
      const page = await service.repository.deadLetters({
        fleets: scopeOf(req.principal, fleet),
        limit,
        after: cursor,
      })
      return {
        deadLetters: page.rows.map(deadLetterOf),
        nextCursor:
          page.next !== null ? encodeCursor({ at: page.next.at, id: String(page.next.id) }) : null,
      }
    },
  })

  fastify.post('/alerts/:id/ack', {
    config: { access: 'operate' },
    schema: {
      summary:
        "Acknowledge an open alert of the token's fleets (service or admin); again changes nothing",
      params: Params,
      response: { 200: AlertSchema, 400: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema },
    },
    handler: async (req) =>
      service.acknowledge(req.params.id, req.principal.sub, req.principal.fleets),
  })
}

export default routes
