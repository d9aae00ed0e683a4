/** Measures kept in the performance timeline at most, per name: the page stays open all day. */
const KEEP = 500
const counts = new Map<string, number>()

/**
 * A User Timing measure from `start` (performance.now()) to now, named `skyline:…`:
 * DevTools shows them, and the benchmark (bench/web.ts) observes them. The timeline
 * is trimmed so a day of frames does not pile up in memory.
 */
export function measure(name: string, start: number): void {
  performance.measure(name, { start })
  const n = (counts.get(name) ?? 0) + 1
  counts.set(name, n % KEEP)
  if (n === KEEP) performance.clearMeasures(name)
}
