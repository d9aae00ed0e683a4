import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import {
  DELIVERY_STATUSES,
  DeliveryDetailSchema,
  DeliveryViewSchema as DeliverySchema,
  ErrorSchema,
  IdSchema,
} from '@skyline/schemas'
import { hasFleet, scopeOf } from '../../auth/principal.ts'
import type { DeliveryEventRow } from '../../delivery/repository.ts'
import { ApiError } from '../../errors.ts'
import { deliveryView } from '../../views.ts'
import { CursorQuery, DateTimeQuery, encodeCursor } from './query.ts'

const eventView = (e: DeliveryEventRow) => ({
  status: e.status,
  at: e.at.toISOString(),
  detail: e.detail,
})

const routes: FastifyPluginAsyncZod = async (fastify) => {
  fastify.get('/deliveries', {
    schema: {
      summary: 'Deliveries, newest first, a page at a time',
      querystring: z.object({
        fleet: IdSchema.optional(),
        status: z.enum(DELIVERY_STATUSES).optional(),
        droneId: IdSchema.optional(),
        stationId: IdSchema.optional().describe('pick-up or drop-off'),
        from: DateTimeQuery.optional().describe('requested at or after'),
        to: DateTimeQuery.optional().describe('requested at or before'),
        limit: z.coerce.number().int().min(1).max(200).default(50),
        cursor: CursorQuery.optional().describe('nextCursor of the previous page'),
      }),
      response: {
        200: z.object({ deliveries: z.array(DeliverySchema), nextCursor: z.string().nullable() }),
        400: ErrorSchema,
      },
    },
    handler: async (req) => {
      const q = req.query
      if (q.from !== undefined && q.to !== undefined && q.from > q.to)
        throw new ApiError(400, 'bad_range', '`from` must not be after `to`')
      const { cursor, fleet, ...filter } = q
      const fleets = scopeOf(req.principal, fleet)
      const page = await fastify.deliveries.list({ ...filter, fleets, after: cursor })
      return {
        deliveries: page.deliveries.map(deliveryView),
        nextCursor: page.next !== null ? encodeCursor(page.next) : null,
      }
    },
  })

  fastify.get('/deliveries/:id', {
    schema: {
      summary: 'One delivery with its events and flown track',
      params: z.object({ id: IdSchema }),
      response: {
        200: DeliveryDetailSchema,
        400: ErrorSchema,
        404: ErrorSchema,
      },
    },
    handler: async (req) => {
      const { delivery, events } = await fastify.deliveries.get(req.params.id, req.principal.fleets)
      const track = await fastify.deliveries.flownTrack(delivery)
      return {
        ...deliveryView(delivery),
        events: events.map(eventView),
        track: track.map((p) => ({ ...p, ts: p.ts.toISOString() })),
      }
    },
  })

  fastify.post('/deliveries', {
    config: { access: 'operate' },
    schema: {
      summary: "Request a delivery in one of the token's fleets (service or admin token)",
      body: z.object({
        fleet: IdSchema,
        pickupStationId: IdSchema,
        dropoffStationId: IdSchema,
        // A gram at least: `payload_kg` is a 4-byte float, which refuses what would round
        // to zero (5e-324 was a 500, issue #14).
        payloadKg: z.number().min(0.001).max(50).describe('kilograms'),
      }),
      response: { 201: DeliverySchema, 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema },
    },
    handler: async (req, reply) => {
      const { fleet, ...rest } = req.body
      // 403 whether or not the fleet exists: the answer says nothing of other fleets.
      if (!hasFleet(req.principal, fleet))
        throw new ApiError(403, 'forbidden', `this token does not operate fleet ${fleet}`)
      const row = await fastify.lifecycle.request({ fleetId: fleet, ...rest })
      return reply.code(201).send(deliveryView(row))
    },
  })

  fastify.post('/deliveries/:id/cancel', {
    config: { access: 'operate' },
    schema: {
      summary:
        "Cancel a delivery of the token's fleets that is not finished (service or admin token)",
      params: z.object({ id: IdSchema }),
      response: {
        200: DeliverySchema,
        401: ErrorSchema,
        403: ErrorSchema,
        404: ErrorSchema,
        409: ErrorSchema,
      },
    },
    handler: async (req) => {
      return deliveryView(await fastify.lifecycle.cancel(req.params.id, req.principal.fleets))
    },
  })
}

export default routes
