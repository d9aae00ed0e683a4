import type {
  Alert,
  AuthConfig,
  DeliveryDetail,
  DeliveryStatus,
  DeliveryView,
  FleetView,
  GeofenceCreate,
  GeofencePatch,
  GeofenceView,
  TrackPointView,
  WhoAmI,
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
  // A 204 (a zone deleted) has no body.
  const body: unknown = res.status === 204 ? null : await res.json().catch(() => null)
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

/** Who the token names: its fleets, and whether it may draw zones (GET /api/auth/me). */
export const getMe = () => call<WhoAmI>('/api/auth/me')

/** The zones of the token's fleets (no-fly zones and areas). */
export const listGeofences = () =>
  call<{ geofences: GeofenceView[] }>('/api/geofences').then((r) => r.geofences)

const json = (method: string, body: unknown): RequestInit => ({
  method,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
})

/** The fields a form or a drawing gives, before the api's defaults. */
export type GeofenceInput = Omit<
  GeofenceCreate,
  'activeFrom' | 'activeUntil' | 'notifyOnEnterLeave'
> &
  Partial<Pick<GeofenceCreate, 'activeFrom' | 'activeUntil' | 'notifyOnEnterLeave'>>

export const createGeofence = (body: GeofenceInput) =>
  call<GeofenceView>('/api/geofences', json('POST', body))

export const updateGeofence = (id: string, patch: GeofencePatch) =>
  call<GeofenceView>(`/api/geofences/${encodeURIComponent(id)}`, json('PATCH', patch))

export const deleteGeofence = (id: string) =>
  call<null>(`/api/geofences/${encodeURIComponent(id)}`, { method: 'DELETE' })

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

/** An operator acknowledges an open alert (403 for a viewer, 409 once it is resolved). */
export const ackAlert = (id: string) =>
  call<Alert>(`/api/alerts/${encodeURIComponent(id)}/ack`, { method: 'POST' })

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
