// Sections 2 and 3 of issue #7 on one stack per database (the fleet connects once):
// the ingest stepped up at QoS 1 (and QoS 0 on Postgres), the COPY ceiling of the same
// rows, and the live stream's latency with the fleet at 1 Hz.
import postgres from 'postgres'
import { spawnFleet } from './fleet-process.ts'
import { ingestDrained, ingestStep, postgresRows } from './ingest.ts'
import type { IngestStepResult } from './ingest.ts'
import { measureLive } from './live.ts'
import type { LiveResult } from './live.ts'
import { clockTicksPerS, cpuTicks, waitForQuiet } from './proc.ts'
import { startStack } from './stack.ts'
import { copyTelemetry, ensurePartitions } from './telemetry-copy.ts'
import type { CopyRow } from './telemetry-copy.ts'
import { writerCeiling } from './writer-ceiling.ts'
import type { WriterCeiling } from './writer-ceiling.ts'
import { geofenceWriter, geofenceWriterRow } from './geofence-writer.ts'
import type { GeofenceWriterResult } from './geofence-writer.ts'

export interface EndToEndSettings {
  drones: number
  /** Offered rates, msg/s, stepped up until one is not kept up with. */
  postgresSteps: number[]
  /** QoS 0 into Postgres, for comparison. */
  qos0Steps: number[]
  pgliteSteps: number[]
  stepS: number
  liveS: number
  copyRows: number
  /** Rows through the api's writer alone (writer-ceiling.ts). */
  writerRows: number
}

export const endToEndSettingsFor = (quick: boolean): EndToEndSettings =>
  quick
    ? {
        drones: 1_000,
        postgresSteps: [2_000, 5_000],
        qos0Steps: [2_000],
        pgliteSteps: [2_000],
        stepS: 3,
        liveS: 3,
        copyRows: 100_000,
        writerRows: 20_000,
      }
    : {
        drones: 10_000,
        postgresSteps: [5_000, 10_000, 20_000, 30_000, 40_000],
        qos0Steps: [5_000, 10_000, 20_000, 30_000, 40_000],
        pgliteSteps: [2_500, 5_000, 10_000, 20_000],
        stepS: 10,
        liveS: 20,
        copyRows: 1_000_000,
        writerRows: 200_000,
      }

export interface StepWithCpu extends IngestStepResult {
  /** % of one core over the step, publishing and catching up. */
  cpuPct: { api: number; broker: number; fleet: number }
}

export interface EndToEndResult extends EndToEndSettings {
  steps: StepWithCpu[]
  copyRowsPerS: number
  writer: WriterCeiling | undefined
  /** The writer with the geofence check, 1,000 zones against none (geofence-writer.ts). */
  zones: GeofenceWriterResult | undefined
  live: LiveResult | undefined
}

const FLEET = 'bench'
/** The machine counts as quiet below this much of one core busy, %. */
const QUIET_PCT = 25

export async function benchEndToEnd(
  s: EndToEndSettings,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<EndToEndResult> {
  const result: EndToEndResult = {
    ...s,
    steps: [],
    copyRowsPerS: NaN,
    writer: undefined,
    zones: undefined,
    live: undefined,
  }
  for (const database of ['postgres', 'pglite'] as const) {
    if (database === 'pglite' && s.pgliteSteps.length === 0) continue
    const stack = await startStack({ database, signal, log })
    const sql = stack.databaseUrl ? postgres(stack.databaseUrl, { onnotice: () => {} }) : undefined
    try {
      if (stack.databaseUrl !== undefined) {
        // On the fresh database, before the fleet: the writer's figure is not to depend
        // on what the steps left behind (a table grown by millions of rows, a checkpoint
        // or autovacuum under way).
        await waitForQuiet(QUIET_PCT, 30_000, signal)
        const w = (result.writer = await writerCeiling(stack.databaseUrl, s.writerRows, s.drones))
        log(
          `e2e writer alone: ${w.rowsPerS.toFixed(0)} rows/s, Postgres backend ` +
            `${w.postgresUsPerRow.toFixed(1)} µs/row, writer ${w.writerUsPerRow.toFixed(1)} µs/row`,
        )
        await waitForQuiet(QUIET_PCT, 30_000, signal)
        const z = (result.zones = await geofenceWriter(stack.databaseUrl, s.writerRows, s.drones))
        log(
          `e2e writer with ${z.zones} zones: ${z.rowsPerSWith.toFixed(0)} rows/s against ` +
            `${z.rowsPerSWithout.toFixed(0)} without (${(z.ratio * 100).toFixed(1)}%), ` +
            `breachesIn ${z.lookupUsPerItem.toFixed(2)} µs/item`,
        )
      }
      const fleet = await spawnFleet(stack.broker.ports.mqtt, FLEET, s.drones, signal)
      log(`e2e ${database}: ${s.drones} drones connected in ${fleet.connectS.toFixed(1)} s`)
      try {
        const rows = sql && postgresRows(sql, FLEET)
        // Warm-up: partitions created, code paths compiled.
        await fleet.run({ ratePerS: 1_000, seconds: 2, qos: 1 })
        const plan =
          database === 'postgres'
            ? [
                { qos: 1 as const, rates: s.postgresSteps },
                { qos: 0 as const, rates: s.qos0Steps },
              ]
            : [{ qos: 1 as const, rates: s.pgliteSteps }]
        for (const { qos, rates } of plan) {
          for (const ratePerS of rates) {
            signal.throwIfAborted()
            if (!(await ingestDrained(stack.apiUrl, signal)))
              log(`e2e ${database}: backlog not drained`)
            const pids = { api: stack.api.pid!, broker: stack.broker.child.pid!, fleet: fleet.pid }
            const ticks0 = Object.values(pids).map(cpuTicks)
            const t0 = performance.now()
            const step = { database, ratePerS, seconds: s.stepS, qos }
            const r = await ingestStep(stack, fleet, rows, step)
            const seconds = (performance.now() - t0) / 1_000
            const pct = (i: number, pid: number) =>
              ((cpuTicks(pid) - ticks0[i]!) / clockTicksPerS() / seconds) * 100
            const cpuPct = {
              api: pct(0, pids.api),
              broker: pct(1, pids.broker),
              fleet: pct(2, pids.fleet),
            }
            result.steps.push({ ...r, cpuPct })
            log(
              `e2e ${database} QoS ${qos} @${ratePerS}/s: sent ${r.sentPerS.toFixed(0)}/s, lost ${r.lost}, ` +
                `gaps ${r.seqGaps}, caught up ${r.catchUpS.toFixed(1)} s, p50 ${r.p50Ms.toFixed(0)} ms, ` +
                `p99 ${r.p99Ms.toFixed(0)} ms, CPU api ${cpuPct.api.toFixed(0)}% broker ${cpuPct.broker.toFixed(0)}%`,
            )
            if (!r.keptUp) break
          }
        }
        if (database === 'postgres') {
          await new Promise((r) => setTimeout(r, 2_000))
          result.live = await measureLive(stack, fleet, s.drones, s.liveS)
          log(`e2e live: p50 ${result.live.p50Ms} ms, p99 ${result.live.p99Ms} ms`)
        }
      } finally {
        await fleet.stop()
      }
      if (sql !== undefined) {
        result.copyRowsPerS = await copyCeiling(sql, s.copyRows, s.drones)
        log(`e2e COPY ceiling: ${result.copyRowsPerS.toFixed(0)} rows/s`)
      }
    } finally {
      await sql?.end()
      await stack.stop()
    }
  }
  return result
}

/** COPY of `n` rows shaped like the ingest's (`drones` drones, 1 Hz each, from now). */
async function copyCeiling(sql: postgres.Sql, n: number, drones: number): Promise<number> {
  const from = Date.now()
  await ensurePartitions(sql, from, from + Math.ceil(n / drones) * 1_000 + 1)
  function* rows(): Generator<CopyRow> {
    for (let i = 0; i < n; i++) {
      const seq = Math.floor(i / drones)
      yield { fleetId: 'copy', droneId: `d${i % drones}`, tsMs: from + seq * 1_000, seq }
    }
  }
  return n / ((await copyTelemetry(sql, rows())) / 1_000)
}

export function endToEndTable(r: EndToEndResult): string {
  const f = (x: number, d = 0) =>
    Number.isNaN(x)
      ? 'n/a'
      : x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
  const rows = r.steps.map(
    (x) =>
      `| ${x.database} | ${x.qos} | ${f(x.offeredPerS)} | ${f(x.sentPerS)} | ${f(x.stored)} | ` +
      `${f(x.lost)} | ${x.database === 'postgres' ? f(x.seqGaps) : 'n/a'} | ${Number.isNaN(x.catchUpS) ? 'never' : `${f(x.catchUpS, 1)} s`} | ` +
      `${f(x.p50Ms)} / ${f(x.p99Ms)} ms | ${f(x.cpuPct.api)} / ${f(x.cpuPct.broker)} / ${f(x.cpuPct.fleet)} | ` +
      `${x.keptUp ? 'yes' : 'no'} |`,
  )
  const best = (database: string, qos: number) =>
    Math.max(
      0,
      ...r.steps
        .filter((x) => x.database === database && x.qos === qos && x.keptUp)
        .map((x) => x.offeredPerS),
    )
  return [
    `End to end: ${f(r.drones)} publishing drones -> bundled broker -> api ingest -> database, ${r.stepS} s per step`,
    '| database | QoS | offered msg/s | sent msg/s | stored | not stored 15 s after | seq gaps | last stored after last sent | publish-to-commit p50 / p99 | CPU % api / broker / publishers | kept up |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    `| highest rate kept up (msg/s) | Postgres QoS 1: ${f(best('postgres', 1))}, QoS 0: ${f(best('postgres', 0))}; PGlite QoS 1: ${f(best('pglite', 1))} | | | | | | | | | |`,
    `| COPY ceiling, same rows into the same partitioned table | ${f(r.copyRowsPerS)} rows/s (${f(r.copyRows)} rows, one COPY) | | | | | | | | | |`,
    ...(r.writer === undefined
      ? []
      : [
          `| the ingest's writer alone, same rows, no MQTT, on the fresh database | ${f(r.writer.rowsPerS)} rows/s (${f(r.writer.batchRows)}-row batches one after another); CPU per row: Postgres backend ${f(r.writer.postgresUsPerRow, 1)} µs, writer ${f(r.writer.writerUsPerRow, 1)} µs | | | | | | | | | |`,
        ]),
    ...(r.zones === undefined ? [] : [geofenceWriterRow(r.zones) + ' | | | | | | | | | |']),
    `Kept up: every message stored, no seq gap, ≥ 95% of the offered rate sent, and the last row ` +
      `stored ≤ 2 s after the last message was sent. Rows are counted in Postgres by the publisher's ts; ` +
      `on PGlite from the api's count of committed telemetry. Publish-to-commit from the api's ` +
      `skyline_ingest_commit_delay_seconds histogram (commit time minus the message's ts, same clock), ` +
      `interpolated within buckets. Target: ≥ 30,000 msg/s into Postgres, zero loss at QoS 1, p99 < 0.5 s.`,
  ].join('\n')
}
