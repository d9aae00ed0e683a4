// End to end: telemetry from publishing drones -> bundled broker -> api ingest ->
// database, the offered rate stepped up until the path no longer keeps up. Loss is
// judged from the rows: each step's messages are told apart by their `ts` (the
// publisher's clock at sending), counted, and checked per drone for seq gaps.
// Publish-to-commit latency comes from the api's skyline_ingest_commit_delay_seconds
// histogram: the api observes, right after each COMMIT returns, now - the message's own
// `ts`; publisher and api share this machine's clock, so no skew enters it.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Sql } from 'postgres'
import type { FleetProcess } from './fleet-process.ts'
import type { FleetStepResult } from './fleet-publish.ts'
import type { Stack } from './stack.ts'

export interface IngestStepResult extends FleetStepResult {
  database: 'postgres' | 'pglite'
  qos: 0 | 1
  offeredPerS: number
  /** Rows stored for the step's messages, once the ingest caught up (or gave up). */
  stored: number
  lost: number
  /** Missing seqs inside each drone's stored range, summed over drones. */
  seqGaps: number
  /** From the last message sent to the last one stored, s. */
  catchUpS: number
  p50Ms: number
  p99Ms: number
  keptUp: boolean
}

/** Longest wait after a step for its last rows, s: a backlog past this is not kept up with. */
const CATCH_UP_LIMIT_S = 15
/** The step kept up: everything stored, none later than this after the last was sent, s. */
const KEPT_UP_WITHIN_S = 2

/**
 * One step at `ratePerS`. `rows` reads the database directly (Postgres); without it
 * (PGlite, which only the api may open) the stored count is the number of telemetry
 * messages the api reports committed, and seq gaps are not checked.
 */
export async function ingestStep(
  stack: Stack,
  fleet: FleetProcess,
  rows: RowCounter | undefined,
  step: { database: 'postgres' | 'pglite'; ratePerS: number; seconds: number; qos: 0 | 1 },
): Promise<IngestStepResult> {
  const before = await commitDelays(stack.apiUrl)
  const committedBefore = committedIn(before)
  const sent = await fleet.run({ ratePerS: step.ratePerS, seconds: step.seconds, qos: step.qos })
  const count = async () =>
    rows !== undefined
      ? rows.count(sent.firstTs, sent.lastTs)
      : {
          stored: committedIn(await commitDelays(stack.apiUrl)) - committedBefore,
          seqGaps: 0,
        }
  // Wait until every message of the step is stored, or CATCH_UP_LIMIT_S have passed:
  // not sooner when nothing arrives for a while, as a subscriber cut off and sent its
  // session again stalls for seconds and then delivers late what was not lost.
  let counted = await count()
  const deadline = performance.now() + CATCH_UP_LIMIT_S * 1_000
  while (counted.stored < sent.sent && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100))
    counted = await count()
  }
  // When the poll saw the last row: within its 100 ms period of the commit.
  const complete = counted.stored >= sent.sent
  const catchUpS = complete ? Math.max(0, Date.now() - sent.lastTs) / 1_000 : NaN
  const after = await commitDelays(stack.apiUrl)
  const delays = after.map((b, i) => ({ le: b.le, count: b.count - (before[i]?.count ?? 0) }))
  const lost = sent.sent - counted.stored
  return {
    ...sent,
    database: step.database,
    qos: step.qos,
    offeredPerS: step.ratePerS,
    stored: counted.stored,
    lost,
    seqGaps: counted.seqGaps,
    catchUpS,
    p50Ms: quantile(delays, 0.5) * 1_000,
    p99Ms: quantile(delays, 0.99) * 1_000,
    keptUp:
      lost === 0 &&
      counted.seqGaps === 0 &&
      sent.sentPerS >= 0.95 * step.ratePerS &&
      catchUpS <= KEPT_UP_WITHIN_S,
  }
}

/**
 * Waits until the api has committed nothing new for `quietMs`: the backlog of a step
 * that was not kept up with must not spill into the next one (a QoS 0 step run on a
 * backed-up connection measures the backlog's drops, not its own). Resolves with
 * whether it drained within `maxS`.
 */
export async function ingestDrained(
  apiUrl: string,
  signal: AbortSignal,
  maxS = 120,
  quietMs = 2_000,
): Promise<boolean> {
  const committed = async () => committedIn(await commitDelays(apiUrl))
  const deadline = performance.now() + maxS * 1_000
  let last = await committed()
  let quietSince = performance.now()
  while (performance.now() < deadline) {
    await sleep(250, undefined, { signal }) // Ctrl-C ends the wait
    const now = await committed()
    if (now !== last) {
      last = now
      quietSince = performance.now()
    } else if (performance.now() - quietSince >= quietMs) return true
  }
  return false
}

/** Counts a step's rows, by the publisher's `ts`. */
export interface RowCounter {
  count(fromTs: number, toTs: number): Promise<{ stored: number; seqGaps: number }>
}

/** Reads the rows from Postgres directly. */
export function postgresRows(sql: Sql, fleet: string): RowCounter {
  return {
    async count(fromTs, toTs) {
      const [r] = await sql<{ stored: string | null; gaps: string | null }[]>`
        SELECT sum(n) AS stored, sum(hi - lo + 1 - n) AS gaps FROM (
          SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi
          FROM telemetry
          WHERE fleet_id = ${fleet} AND ts >= ${new Date(fromTs)} AND ts <= ${new Date(toTs)}
          GROUP BY drone_id) per_drone`
      return { stored: Number(r?.stored ?? 0), seqGaps: Number(r?.gaps ?? 0) }
    },
  }
}

/** Telemetry messages committed so far: the histogram's +Inf bucket. */
const committedIn = (buckets: { count: number }[]) => buckets.at(-1)?.count ?? 0

/** The cumulative buckets of skyline_ingest_commit_delay_seconds, from the api's /metrics. */
async function commitDelays(apiUrl: string): Promise<{ le: number; count: number }[]> {
  const text = await (await fetch(`${apiUrl}/metrics`)).text()
  const re = /^skyline_ingest_commit_delay_seconds_bucket\{le="([^"]+)"\} (\d+)/gm
  return [...text.matchAll(re)].map((m) => ({ le: Number(m[1]), count: Number(m[2]) }))
}

/** A quantile from cumulative buckets, linear within the bucket it falls in (Prometheus's way). */
export function quantile(buckets: { le: number; count: number }[], q: number): number {
  const total = buckets.at(-1)?.count ?? 0
  if (total === 0) return NaN
  const rank = q * total
  let lower = { le: 0, count: 0 }
  for (const b of buckets) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return lower.le
      return lower.le + ((b.le - lower.le) * (rank - lower.count)) / (b.count - lower.count)
    }
    lower = b
  }
  return NaN
}
