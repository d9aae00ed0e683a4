import type { DeliveryView, DroneView } from '@skyline/schemas'

// What the page shows as text (ARCHITECTURE.md "What the web page shows as text").
// Clock times are the browser's local time, hh:mm:ss.

const pad = (n: number) => String(n).padStart(2, '0')

/** hh:mm:ss in the browser's time zone, whatever its locale's digits and separators. */
export function clockTime(iso: string | null): string {
  if (iso === null) return '—'
  const d = new Date(iso)
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

/** Statuses in which a delivery has an ETA worth showing: it is flying to its drop-off or pick-up. */
const FLYING = new Set(['assigned', 'to_pickup', 'picked_up', 'en_route'])

/**
 * The ETA as a clock time and the minutes left. Minutes are counted on the drone's
 * clock (its last position's time), the clock the ETA is computed in: a time-scaled
 * simulator runs ahead of the wall clock.
 */
export function etaText(delivery: DeliveryView | undefined, drone: DroneView): string {
  if (delivery?.etaAt == null || !FLYING.has(delivery.status)) return ''
  const now = drone.positionAt !== null ? Date.parse(drone.positionAt) : Date.now()
  const minutes = Math.max(0, Math.round((Date.parse(delivery.etaAt) - now) / 60_000))
  return `${clockTime(delivery.etaAt)} (${minutes} min)`
}

/**
 * Whether the api has lost the drone's signal: its last will came (`online` false,
 * `offline`) or it has been silent past STALE_AFTER_S (`stale`). Its ETA is then
 * the last one computed, not a live one (issue 15).
 */
export const signalLost = (drone: DroneView): boolean =>
  !drone.online || drone.state === 'offline' || drone.state === 'stale'

/**
 * What the page shows for a drone's delivery ETA (issue 15): the live ETA while the
 * api hears the drone; once it has lost the signal, when the drone was last heard
 * (`lostAt`, hh:mm:ss, null when unknown) and the last ETA's clock time, greyed
 * (`lastEta`, null when there was none). No minutes left then: they would count
 * down from a clock that has stopped. Undefined without a delivery in flight.
 */
export type EtaShown =
  { kind: 'live'; eta: string } | { kind: 'lost'; lostAt: string | null; lastEta: string | null }

export function etaShown(
  delivery: DeliveryView | undefined,
  drone: DroneView,
): EtaShown | undefined {
  if (delivery === undefined || !FLYING.has(delivery.status)) return undefined
  if (signalLost(drone)) {
    return {
      kind: 'lost',
      lostAt: drone.lastSeenAt === null ? null : clockTime(drone.lastSeenAt),
      lastEta: delivery.etaAt === null ? null : clockTime(delivery.etaAt),
    }
  }
  const eta = etaText(delivery, drone)
  return eta === '' ? undefined : { kind: 'live', eta }
}

/** `signal lost hh:mm:ss`, or `signal lost` when the drone was never heard. */
export const lostText = (lostAt: string | null): string =>
  lostAt === null ? 'signal lost' : `signal lost ${lostAt}`

/** `offline since hh:mm:ss` for an offline drone, else its state. */
export function stateText(drone: DroneView): string {
  if (drone.state !== 'offline') return drone.state
  return drone.onlineChangedAt === null
    ? 'offline'
    : `offline since ${clockTime(drone.onlineChangedAt)}`
}

export const batteryText = (pct: number | null): string =>
  pct === null ? '—' : `${Math.round(pct)}%`

export const speedText = (mps: number | null): string =>
  mps === null ? '—' : `${mps.toFixed(0)} m/s`

/** Colour of a drone on the map and in the list, by state. */
export const STATE_COLOURS: Record<DroneView['state'], string> = {
  idle: '#2b8a3e',
  charging: '#5c940d',
  to_pickup: '#1971c2',
  en_route: '#5f3dc4',
  landing: '#0c8599',
  returning: '#e67700',
  fault: '#c92a2a',
  offline: '#868e96',
  stale: '#adb5bd',
}
