// What the same telemetry would weigh in denser encodings. Sizes are computed by the
// rules of each format (no encoder library in the repo, and the contract stays JSON):
// enough to judge whether changing the payload would be worth it.
import type { Telemetry } from '@skyline/schemas'

type Flat = Record<string, string | number | boolean | undefined>

/** Bytes of a UTF-8 string. */
const utf8 = (s: string) => Buffer.byteLength(s)

/** MessagePack (spec.md): fixmap, fixstr/str8, the smallest int, float64 for fractions. */
export function msgpackBytes(o: Flat): number {
  const entries = Object.entries(o).filter(([, v]) => v !== undefined)
  const str = (s: string) => {
    const n = utf8(s)
    return (n < 32 ? 1 : n < 256 ? 2 : 3) + n
  }
  const num = (x: number) => {
    if (!Number.isInteger(x)) return 9
    if (x >= 0) return x < 128 ? 1 : x < 2 ** 8 ? 2 : x < 2 ** 16 ? 3 : x < 2 ** 32 ? 5 : 9
    return x >= -32 ? 1 : x >= -(2 ** 7) ? 2 : x >= -(2 ** 15) ? 3 : x >= -(2 ** 31) ? 5 : 9
  }
  let bytes = entries.length < 16 ? 1 : 3
  for (const [k, v] of entries)
    bytes += str(k) + (typeof v === 'string' ? str(v) : typeof v === 'number' ? num(v) : 1)
  return bytes
}

/** CBOR (RFC 8949), as cbor-x writes it: the shortest float that holds the value exactly. */
export function cborBytes(o: Flat): number {
  const entries = Object.entries(o).filter(([, v]) => v !== undefined)
  const head = (n: number) => (n < 24 ? 1 : n < 256 ? 2 : n < 65_536 ? 3 : n < 2 ** 32 ? 5 : 9)
  const num = (x: number) => {
    if (Number.isInteger(x)) return head(Math.abs(x))
    if (isHalf(x)) return 3
    return Math.fround(x) === x ? 5 : 9
  }
  let bytes = head(entries.length)
  for (const [k, v] of entries) {
    bytes += head(utf8(k)) + utf8(k)
    if (typeof v === 'string') bytes += head(utf8(v)) + utf8(v)
    else bytes += typeof v === 'number' ? num(v) : 1
  }
  return bytes
}

/** A float16 holds x exactly: 11 significant bits, exponent within [-14, 15]. */
function isHalf(x: number): boolean {
  const a = Math.abs(x)
  if (a === 0 || a > 65_504) return a === 0
  const e = Math.max(-14, Math.floor(Math.log2(a)))
  return Number.isInteger(a * 2 ** (10 - e))
}

/**
 * A fixed binary struct at the simulator's precision (it rounds to 6 decimals of a
 * degree and 0.1 of everything else): v u8, ts u64 ms, seq u32, lat and lon i32 µdeg,
 * altM i32 dm, speedMps, headingDeg and batteryPct u16 tenths, state u8, and a length-
 * prefixed deliveryId when there is one.
 */
export function packedBytes(t: Telemetry): number {
  return 1 + 8 + 4 + 4 + 4 + 4 + 2 + 2 + 2 + 1 + (t.deliveryId ? 1 + utf8(t.deliveryId) : 0)
}

export function encodedSizes(t: Telemetry): { encoding: string; bytes: number }[] {
  return [
    { encoding: 'JSON (the contract)', bytes: utf8(JSON.stringify(t)) },
    { encoding: 'MessagePack', bytes: msgpackBytes(t) },
    { encoding: 'CBOR', bytes: cborBytes(t) },
    { encoding: 'packed struct', bytes: packedBytes(t) },
  ]
}
