import { z } from 'zod'
import { IdSchema, MAX_TS } from '@skyline/schemas'
import type { DeliveryPosition } from '../../delivery/repository.ts'

// Query values that reach the database, checked where they are parsed (issue #14): a value
// Postgres cannot take (year 0, a NUL, a date past year 294276) must be a 400 here, not a
// failed query there.

/**
 * Instants REST accepts: 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z, the range of
 * a payload's `ts` (MAX_TS), so every stored time can be asked for. Outside it Postgres
 * refuses some (no year 0; nothing before 4713 BC) and JavaScript's Date others (past
 * ±8.64e15 ms), and no drone has flown there.
 */
export const EARLIEST = new Date(0)
export const LATEST = new Date(MAX_TS)
const RANGE = `must lie between ${EARLIEST.toISOString()} and ${LATEST.toISOString()}`
const inRange = (d: Date) => d >= EARLIEST && d <= LATEST

/** An ISO 8601 date-time with an offset, within EARLIEST..LATEST once in UTC; gives a Date. */
export const DateTimeQuery = z.iso
  .datetime({ offset: true })
  .transform((s) => new Date(s))
  .refine(inRange, RANGE)

/** Where the next page of deliveries starts, opaque to clients: base64url of `<ISO time>|<id>`. */
export function encodeCursor(c: DeliveryPosition): string {
  return Buffer.from(`${c.at.toISOString()}|${c.id}`).toString('base64url')
}

const CursorParts = z.tuple([
  z.iso
    .datetime()
    .transform((s) => new Date(s))
    .refine(inRange),
  IdSchema,
])

/**
 * A cursor as the api wrote it, or a 400: decoding is strict (base64url only, exactly a
 * time and an id, the time in range, the id an id), so junk, a NUL or a year out of
 * range never reaches a query.
 */
export const CursorQuery = z
  .string()
  .max(200)
  .transform((s, ctx): DeliveryPosition => {
    const parts = /^[A-Za-z0-9_-]+$/.test(s)
      ? CursorParts.safeParse(Buffer.from(s, 'base64url').toString('utf8').split('|'))
      : undefined
    if (parts?.success !== true) {
      ctx.addIssue({ code: 'custom', message: 'is not a cursor this api returned' })
      return z.NEVER
    }
    const [at, id] = parts.data
    return { at, id }
  })
