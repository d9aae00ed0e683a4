import type { z } from 'zod'
import { AlertSchema, type Alert } from './alerts.ts'
import {
  DeliveryRequestSchema,
  DroneCommandSchema,
  DroneEventSchema,
  DroneStatusSchema,
  StationStatusSchema,
  TelemetrySchema,
  type DeliveryRequest,
  type DroneCommand,
  type DroneEvent,
  type DroneStatus,
  type StationStatus,
  type Telemetry,
} from './payloads.ts'
import type { TopicKind } from './topics.ts'

/** The payload type carried by each kind of topic. */
export type PayloadByKind = {
  'drone/telemetry': Telemetry
  'drone/status': DroneStatus
  'drone/events': DroneEvent
  'drone/commands': DroneCommand
  'station/status': StationStatus
  'station/requests': DeliveryRequest
  'fleet/alerts': Alert
}

// Keyed by TopicKind, so a kind without a schema (or a schema of the wrong type) fails to compile.
export const PAYLOAD_SCHEMAS: { readonly [K in TopicKind]: z.ZodType<PayloadByKind[K]> } = {
  'drone/telemetry': TelemetrySchema,
  'drone/status': DroneStatusSchema,
  'drone/events': DroneEventSchema,
  'drone/commands': DroneCommandSchema,
  'station/status': StationStatusSchema,
  'station/requests': DeliveryRequestSchema,
  'fleet/alerts': AlertSchema,
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; reason: string }

// Enough to tell a publisher what is wrong without flooding the dead-letter table.
const MAX_ISSUES = 3

// `fatal` turns malformed bytes into an error instead of silently writing U+FFFD.
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Decodes an MQTT payload for a topic kind: strict UTF-8, then JSON, then the kind's schema.
 * Never throws: a bad message is a value with a reason, so ingest can dead-letter it and go on.
 */
export function decodePayload<K extends TopicKind>(
  kind: K,
  payload: Uint8Array | string,
): DecodeResult<PayloadByKind[K]> {
  let text: string
  if (typeof payload === 'string') {
    text = payload
  } else {
    try {
      text = utf8.decode(payload)
    } catch {
      return { ok: false, reason: 'invalid_utf8: payload is not valid UTF-8' }
    }
  }

  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    return { ok: false, reason: `invalid_json: ${(error as Error).message}` }
  }

  const schema: z.ZodType<PayloadByKind[K]> = PAYLOAD_SCHEMAS[kind]
  const result = schema.safeParse(json)
  if (result.success) return { ok: true, value: result.data }
  return { ok: false, reason: `invalid_payload: ${formatIssues(result.error.issues)}` }
}

function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  const shown = issues
    .slice(0, MAX_ISSUES)
    .map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`)
  const more = issues.length - shown.length
  return shown.join('; ') + (more > 0 ? ` (+${more} more)` : '')
}
