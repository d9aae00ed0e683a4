// The live stream under clients that never read (issue 14, item 5): bench/live-flood.ts,
// summed up as one row of the chaos table.
import { liveFlood } from '../live-flood.ts'
import type { Attack } from './report.ts'

export const liveNonReaders: Attack = {
  name: 'live-non-readers',
  async run(parts, { quick, signal }) {
    const o = quick
      ? { drones: 500, nonReaders: 100, seconds: 10 }
      : { drones: 2_000, nonReaders: 500, seconds: 30 }
    const r = await liveFlood({
      ...o,
      root: parts.root,
      signal,
      log: (l) => console.error(`  ${l}`),
    })
    const grew = r.rssMiB.peak - r.rssMiB.before
    return {
      attack: `the live stream: ${o.nonReaders} clients that never read, fleet of ${o.drones.toLocaleString('en-US')}, ${o.seconds} s`,
      expected:
        'api grows < 100 MB; a reading client waits < 1 s for a frame; non-readers dropped within seconds',
      happened: `api +${Math.round(grew)} MiB (peak ${Math.round(r.rssMiB.peak)}); longest frame gap ${Math.round(r.healthy.maxGapMs)} ms; non-readers ${r.allDroppedAfterS === undefined ? 'not all dropped' : `all dropped after ${r.allDroppedAfterS.toFixed(1)} s`}`,
      lost: 0,
    }
  },
}
