import { createHash } from 'node:crypto'
import { buildTopic } from '@skyline/schemas'
import type { IngestItem } from './items.ts'

export type DeadLetter = Extract<IngestItem, { kind: 'rejected' }>

/** Bytes of a rejected payload kept for a person to read. */
const EXCERPT_BYTES = 200

/** A message that did not decode, as its row in the dead-letter table. */
export function rejectedItem(
  topic: string,
  payload: Buffer,
  reason: string,
  receivedAt: Date,
): DeadLetter {
  return {
    kind: 'rejected',
    topic: printable(topic),
    sizeBytes: payload.length,
    // Lossy on purpose: the excerpt is for reading, the reason says what was wrong.
    excerpt: printable(payload.subarray(0, EXCERPT_BYTES).toString('utf8')),
    reason: printable(reason),
    digest: digestOf(topic, payload),
    receivedAt,
  }
}

/**
 * A message that decoded but whose rows the database refused. Its payload is no longer at
 * hand, so the decoded message, serialised again, stands in for it: a redelivery decodes
 * to the same value, hence to the same digest. An item that was a dead letter already
 * keeps its row and gains the reason.
 */
export function refusedItem(item: IngestItem, reason: string): DeadLetter {
  if (item.kind === 'rejected') return { ...item, reason: printable(`${item.reason}; ${reason}`) }
  return rejectedItem(topicOf(item), Buffer.from(JSON.stringify(item.msg)), reason, item.receivedAt)
}

/**
 * The dead-letter table's key: SHA-256 of topic and payload, hex. A QoS 1 message whose
 * PUBACK was lost (the api stopped between the commit and the ack) is redelivered with the
 * same bytes, and `ON CONFLICT DO NOTHING` on this key stores it once. The packet id
 * cannot serve: the broker reuses it as soon as it is acknowledged, and it numbers the
 * api's session, not the device's message. The trade-off: a device sending the very same
 * bytes twice on one topic is stored once too. Every payload carries its `ts` (and events
 * an id), so identical bytes are the same message to a reader, and the metric
 * skyline_ingest_rejected_total still counts every arrival.
 */
function digestOf(topic: string, payload: Buffer): string {
  // NUL parts topic from payload: a topic name cannot contain it [MQTT-4.7.3-2].
  return createHash('sha256').update(topic).update('\u0000').update(payload).digest('hex')
}

/** Postgres text cannot hold U+0000 (SQLSTATE 22021): a dead letter must always store. */
function printable(s: string): string {
  return s.replaceAll('\u0000', '')
}

function topicOf(item: Exclude<IngestItem, DeadLetter>): string {
  const { fleetId } = item
  switch (item.kind) {
    case 'telemetry':
      return buildTopic({ kind: 'drone', fleetId, droneId: item.droneId, channel: 'telemetry' })
    case 'drone-status':
      return buildTopic({ kind: 'drone', fleetId, droneId: item.droneId, channel: 'status' })
    case 'drone-event':
      return buildTopic({ kind: 'drone', fleetId, droneId: item.droneId, channel: 'events' })
    case 'station-status':
      return buildTopic({ kind: 'station', fleetId, stationId: item.stationId, channel: 'status' })
    case 'delivery-request':
      return buildTopic({
        kind: 'station',
        fleetId,
        stationId: item.stationId,
        channel: 'requests',
      })
    default: {
      const unhandled: never = item
      return String(unhandled)
    }
  }
}
