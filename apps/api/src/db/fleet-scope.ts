import { inArray, sql } from 'drizzle-orm'
import type { AnyColumn, SQL } from 'drizzle-orm'
import type { FleetScope } from '../auth/principal.ts'

/**
 * The condition that keeps a read to `scope`'s fleets (issue 16): none for every fleet,
 * `false` for none (`IN ()` is not SQL), else `IN (…)`. Every repository read that a
 * reader's request reaches takes one, so no route can forget it.
 */
export function fleetIn(column: AnyColumn, scope: FleetScope): SQL | undefined {
  if (scope === '*') return undefined
  if (scope.length === 0) return sql`false`
  return inArray(column, [...scope])
}
