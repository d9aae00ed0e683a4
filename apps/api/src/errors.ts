/** A domain error with an HTTP status and a stable code: `{ error: { code, message } }`. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export const notFound = (what: string, id: string) =>
  new ApiError(404, 'not_found', `${what} ${id} not found`)

/** What a 503 asks the client to wait before trying again, s (`Retry-After`). */
export const RETRY_AFTER_S = 1
