// Live: publish -> /api/live frame latency, drones at 1 Hz. A WebSocket client in the
// bench process takes the snapshot, then reads every 'changes' frame: each drone in it
// carries `positionAt`, the `ts` its publisher wrote at sending, so the frame's arrival
// minus that is the whole path (broker, ingest, commit, the hub's FRAME_MS batching,
// serialisation, WebSocket) for that position. Same machine, same clock.
import { once } from 'node:events'
import WebSocket from 'ws'
import type { FleetProcess } from './fleet-process.ts'
import { median } from './report.ts'
import { liveAuth } from './stack.ts'
import type { Stack } from './stack.ts'

export interface LiveResult {
  drones: number
  seconds: number
  sent: number
  sentPerS: number
  /** Positions seen in frames; a drone that moved twice within a frame shows once. */
  positionsSeen: number
  frames: number
  meanFrameKiB: number
  p50Ms: number
  p99Ms: number
  maxMs: number
}

interface ChangesFrame {
  type: string
  drones?: { positionAt?: string }[]
}

export async function measureLive(
  stack: Stack,
  fleet: FleetProcess,
  drones: number,
  seconds: number,
): Promise<LiveResult> {
  const ws = new WebSocket(`${stack.apiUrl.replace(/^http/, 'ws')}/api/live`)
  const latencies: number[] = []
  let frames = 0
  let frameBytes = 0
  let since = Infinity
  ws.on('message', (data: Buffer) => {
    const at = Date.now()
    const frame = JSON.parse(data.toString()) as ChangesFrame
    if (frame.type !== 'changes') return
    frames++
    frameBytes += data.length
    for (const d of frame.drones ?? []) {
      const ts = d.positionAt !== undefined ? Date.parse(d.positionAt) : NaN
      if (ts >= since) latencies.push(at - ts)
    }
  })
  const snapshot = new Promise<void>((resolve) =>
    ws.on('message', (data: Buffer) => {
      if ((JSON.parse(data.toString()) as ChangesFrame).type === 'snapshot') resolve()
    }),
  )
  await once(ws, 'open')
  ws.send(await liveAuth())
  await snapshot
  try {
    since = Date.now()
    const sent = await fleet.run({ ratePerS: drones, seconds, qos: 0 })
    await new Promise((r) => setTimeout(r, 2_000)) // the last frames
    const sorted = latencies.sort((a, b) => a - b)
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
    return {
      drones,
      seconds,
      sent: sent.sent,
      sentPerS: sent.sentPerS,
      positionsSeen: sorted.length,
      frames,
      meanFrameKiB: frames > 0 ? frameBytes / frames / 1024 : NaN,
      p50Ms: median(sorted),
      p99Ms: at(0.99) ?? NaN,
      maxMs: sorted.at(-1) ?? NaN,
    }
  } finally {
    ws.close()
  }
}

export function liveTable(r: LiveResult): string {
  const f = (x: number, d = 0) =>
    x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
  return [
    `Live: publish -> /api/live frame latency, ${f(r.drones)} drones at 1 Hz (QoS 0) for ${r.seconds} s, api on Postgres, one WebSocket client`,
    '| measure | value |',
    '| --- | --- |',
    `| latency p50 / p99 / max | ${f(r.p50Ms)} / ${f(r.p99Ms)} / ${f(r.maxMs)} ms |`,
    `| positions published / seen in frames | ${f(r.sent)} (${f(r.sentPerS)}/s) / ${f(r.positionsSeen)} |`,
    `| frames, mean size | ${f(r.frames)}, ${f(r.meanFrameKiB)} KiB |`,
    'Frames go out at most every 250 ms (FRAME_MS), so ~125 ms of the median is the batching by design.',
  ].join('\n')
}
