import { z } from 'zod'
import { ALERT_KINDS, ALERT_SEVERITIES, ALERT_STATES } from './constants.ts'
import { IdSchema } from './ids.ts'
import { MAX_TS, SCHEMA_VERSION } from './payloads.ts'

// Alerts (docs/architecture.md "Alerts"): one object, the same on REST, on the live stream,
// on MQTT (`fleet/{f}/alerts`) and in the webhook's body. Its times are ISO 8601 (UTC) as
// REST's are, since REST and the map read it most; `ts` says when this version was made,
// in epoch ms as every payload's.

const iso = z.iso.datetime()

/**
 * What an alert is about: the ids that name its subject (a drone, and the zone it is in;
 * a drone and its delivery; a station; a delivery). One open alert per kind and subject.
 */
export const AlertSubjectSchema = z
  .object({
    droneId: IdSchema.optional(),
    stationId: IdSchema.optional(),
    deliveryId: IdSchema.optional(),
    zoneId: IdSchema.optional(),
  })
  .refine((s) => Object.values(s).some((v) => v !== undefined), 'names at least one id')
export type AlertSubject = z.infer<typeof AlertSubjectSchema>

export const AlertSchema = z.object({
  v: z.literal(SCHEMA_VERSION),
  /** When this version of the alert was made (opened, acknowledged, resolved), epoch ms. */
  ts: z.int().nonnegative().max(MAX_TS),
  id: IdSchema,
  fleetId: IdSchema,
  kind: z.enum(ALERT_KINDS),
  severity: z.enum(ALERT_SEVERITIES),
  state: z.enum(ALERT_STATES),
  subject: AlertSubjectSchema,
  openedAt: iso,
  acknowledgedAt: iso.nullable(),
  /** The `sub` of the operator's token. */
  acknowledgedBy: z.string().max(255).nullable(),
  resolvedAt: iso.nullable(),
  /** The facts behind it, by kind (docs/architecture.md "Alerts"): values, units in names. */
  facts: z.record(z.string(), z.unknown()),
})
export type Alert = z.infer<typeof AlertSchema>

/**
 * A change the webhook gave up on (docs/architecture.md "Alerts", "The webhook"): after
 * ALERT_WEBHOOK_MAX_ATTEMPTS it stays in the outbox, shown to operators on REST.
 */
export const WebhookDeadLetterSchema = z.object({
  /** The outbox row's id: the `Skyline-Delivery` header every attempt carried. */
  id: z.int().positive(),
  alertId: IdSchema,
  fleetId: IdSchema,
  attempts: z.int().nonnegative(),
  /** Why the last attempt failed (`HTTP 503`, a timeout, a refused connection...). */
  lastError: z.string().nullable(),
  createdAt: iso,
  deadAt: iso,
  /** The body as it was signed and sent. */
  alert: AlertSchema,
})
export type WebhookDeadLetter = z.infer<typeof WebhookDeadLetterSchema>
