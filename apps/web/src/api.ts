import type {
  AuthConfig,
  DeliveryDetail,
  DeliveryStatus,
  DeliveryView,
  FleetView,
  TrackPointView,
} from '@skyline/schemas'
import { refuse, token } from './session.ts'

// The REST calls the page makes (ARCHITECTURE.md "REST"), each with the page's token.
// A failure throws an ApiError with the server's code and message; a 401 also tells the
// page to ask for another token.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

async function call<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers)
  const t = token()
  if (t !== null && path.startsWith('/api/')) headers.set('authorization', `Bearer ${t}`)
  const res = await fetch(path, { ...init, headers })
  const body: unknown = await res.json().catch(() => null)
  if (!res.ok) {
    const error = (body as { error?: { code?: string; message?: string } } | null)?.error
    const message = error?.message ?? res.statusText
    if (res.status === 401) refuse(message)
    throw new ApiError(res.status, error?.code ?? 'http_error', message)
  }
  return body as T
}

export interface PageConfig {
  tileUrl: string | null
  tileAttribution: string
}

export const getConfig = () => call<PageConfig>('/config.json')

/** Where the page signs in (public: read before there is a token). */
export const getAuthConfig = () => call<AuthConfig>('/api/auth/config')

export const getFleet = () => call<FleetView>('/api/fleet')

export function listDeliveries(q: {
  status?: DeliveryStatus | ''
  cursor?: string
  limit: number
}) {
  const params = new URLSearchParams({ limit: String(q.limit) })
  if (q.status) params.set('status', q.status)
  if (q.cursor !== undefined) params.set('cursor', q.cursor)
  return call<{ deliveries: DeliveryView[]; nextCursor: string | null }>(
    `/api/deliveries?${params.toString()}`,
  )
}

export const getDelivery = (id: string) =>
  call<DeliveryDetail>(`/api/deliveries/${encodeURIComponent(id)}`)

export function createDelivery(body: {
  fleet: string
  pickupStationId: string
  dropoffStationId: string
  payloadKg: number
}) {
  return call<DeliveryView>('/api/deliveries', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
}

/** A drone's positions between two times, oldest first (GET /api/drones/{id}/track). */
export function getTrack(drone: { fleetId: string; id: string }, from: Date, to: Date) {
  const params = new URLSearchParams({
    fleet: drone.fleetId,
    from: from.toISOString(),
    to: to.toISOString(),
  })
  return call<{ droneId: string; fleetId: string; points: TrackPointView[] }>(
    `/api/drones/${encodeURIComponent(drone.id)}/track?${params.toString()}`,
  )
}
