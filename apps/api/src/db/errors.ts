// What a failed query says about the database, for whoever has to answer for it: the
// ingest (retry or refuse the rows, ingest/write-errors.ts) and REST (503, app.ts).

/**
 * The error the server sent, if any: postgres.js's PostgresError and PGlite's
 * DatabaseError carry the SQLSTATE in `code` and a `severity`; drizzle wraps either in a
 * DrizzleQueryError whose `cause` it is. Client-side errors (postgres.js's
 * CONNECTION_CLOSED, a socket's ECONNRESET, "PGlite is closed") have no severity.
 */
export function serverError(err: unknown): { code: string; message: string } | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const { code, severity } = e as Error & { code?: unknown; severity?: unknown }
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && typeof severity === 'string')
      return { code, message: e.message }
  }
  return undefined
}

/**
 * Client-side codes of a database that cannot be reached: postgres.js's own
 * (connection closed, ended or destroyed, connect timeout) and the socket's.
 */
const UNREACHABLE_CODES: ReadonlySet<string> = new Set([
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'EAI_AGAIN',
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EPIPE',
  'ETIMEDOUT',
])

/**
 * SQLSTATE classes of a server that is there but cannot serve: 08 connection exception,
 * 53 insufficient resources (too many connections, disk full, out of memory), 57 operator
 * intervention (shutting down, starting up, a statement cancelled).
 */
const UNAVAILABLE_CLASSES: ReadonlySet<string> = new Set(['08', '53', '57'])

/**
 * True when `err` says the database is away or cannot serve now, rather than that the
 * query or its values are wrong: the same request may succeed later (REST answers 503).
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const server = serverError(err)
  if (server !== undefined) return UNAVAILABLE_CLASSES.has(server.code.slice(0, 2))
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const { code } = e as Error & { code?: unknown }
    if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return true
    if (e.message === 'PGlite is closed') return true
    // A host name with several addresses (localhost: ::1 and 127.0.0.1) fails with one
    // error per address.
    if (
      e instanceof AggregateError &&
      (e.errors as unknown[]).some((x) => isDatabaseUnavailable(x))
    )
      return true
  }
  return false
}
