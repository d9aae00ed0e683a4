import type { IngestItem } from './items.ts'

/** How far a device's clock may be from the api's, for its times to be taken. */
export interface DeviceClockRule {
  /** Largest lead of a payload's `ts` over the time the api received it, ms. */
  aheadMaxMs: number
  /** Largest lag of a telemetry point's `ts` behind the time received, ms (the retention). */
  telemetryBehindMaxMs: number
}

/**
 * Why an item's device time is refused, or undefined when it is taken (issue 14, item 3).
 *
 * A payload's `ts` is the device's clock, and telemetry is partitioned by it: one drone
 * sending points each on another far-future day made 3,000 partitions and stalled the
 * writer for every fleet, and one point dated 9999 froze that drone's position. So no
 * payload may be more than `aheadMaxMs` ahead of the time received, and telemetry no
 * older than the retention (its day would be dropped within the hour anyway): the only
 * partitions ever created are the days from the retention's start to tomorrow. A status
 * may be old (a last will carries the time of its CONNECT), and so may an event a drone
 * kept through an outage. Refused items go to the dead letters with this reason;
 * `lastSeenAt` is the api's clock whatever the device says.
 */
export function deviceClockRefusal(
  item: Exclude<IngestItem, { kind: 'rejected' }>,
  rule: DeviceClockRule,
): string | undefined {
  const receivedMs = item.receivedAt.getTime()
  const aheadMs = item.msg.ts - receivedMs
  if (aheadMs > rule.aheadMaxMs)
    return `clock_skew: ts ${iso(item.msg.ts)} is ${seconds(aheadMs)} s ahead of the time received (at most ${seconds(rule.aheadMaxMs)} s)`
  if (item.kind === 'telemetry' && -aheadMs > rule.telemetryBehindMaxMs)
    return `clock_skew: ts ${iso(item.msg.ts)} is ${seconds(-aheadMs)} s behind the time received, older than the telemetry kept (${seconds(rule.telemetryBehindMaxMs)} s)`
  return undefined
}

const iso = (ms: number) => new Date(ms).toISOString()
const seconds = (ms: number) => Math.round(ms / 1000)
