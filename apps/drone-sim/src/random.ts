/**
 * A small seeded generator (mulberry32), so that `--seed` reproduces a fleet: same
 * stations, same drones, same choices.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

/** An exponentially distributed wait with the given mean: the gaps of a Poisson process. */
export function exponential(mean: number, random: () => number): number {
  return -mean * Math.log(1 - random())
}
