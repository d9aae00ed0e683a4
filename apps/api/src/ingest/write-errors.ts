import { serverError } from '../db/errors.ts'

/**
 * What a failed batch write means for its items (issue #4):
 * - `transient`: the database is away or busy (connection lost, SQLSTATE classes 08, 53,
 *   57, a serialization failure or deadlock, a closed client). The same rows will go in
 *   later: retry them with backoff.
 * - `permanent`: the rows themselves are refused (the same rows fail again, whatever the
 *   wait). Split the batch to find them; the rest commits.
 */
export type WriteFailure =
  | { kind: 'transient' }
  | {
      kind: 'permanent'
      /** SQLSTATE, e.g. `22003`. */
      code: string
      /** Names the SQL error, for the dead-letter table: `write_refused: 22003 ...`. */
      reason: string
    }

/**
 * SQLSTATE classes raised by the values of the rows written: 21 cardinality violation
 * (two rows of a batch colliding), 22 data exception (out of range, a NUL in text, a bad
 * date), 23 integrity constraint violation, 54 program limit exceeded (a row or a
 * statement too big). Every other error is retried as transient, on purpose: one that is
 * not about the rows (a missing table or privilege, a bug in the writer, a client error
 * with no SQLSTATE) would refuse every row alike, and splitting would send the whole
 * stream to the dead-letter table, where the excerpt keeps only its first bytes. Waiting,
 * unhealthy and logged, like during an outage, loses nothing.
 */
const PERMANENT_CLASSES: ReadonlySet<string> = new Set(['21', '22', '23', '54'])

export function classifyWriteError(err: unknown): WriteFailure {
  const server = serverError(err)
  if (server === undefined || !PERMANENT_CLASSES.has(server.code.slice(0, 2)))
    return { kind: 'transient' }
  return {
    kind: 'permanent',
    code: server.code,
    reason: `write_refused: ${server.code} ${server.message}`,
  }
}
