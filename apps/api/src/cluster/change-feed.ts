import { z } from 'zod'
import type { IngestItem } from '../ingest/items.ts'

/** The channel the instances tell each other on (Postgres LISTEN/NOTIFY). */
export const CHANGES_CHANNEL = 'skyline_changes'
/** NOTIFY carries under 8,000 bytes: a notice is cut into payloads of at most this much. */
const MAX_PAYLOAD_BYTES = 7_000

/**
 * What one instance committed, for the live streams of the others: keys, never values
 * (those are read from the database, so every instance shows what was committed).
 */
export interface ChangeNotice {
  /** The instance that tells: it does not hear itself. */
  from: string
  /** `fleetId/id` of drones whose row changed. */
  drones: string[]
  /** `fleetId/id` of stations whose row changed. */
  stations: string[]
  /** Ids of deliveries that moved. */
  deliveries: string[]
  /** Fleets whose zones changed (geofence/service.ts): the others read them again. */
  geofences: string[]
  /** Ids of alerts opened, acknowledged or resolved (alerts/service.ts). */
  alerts: string[]
}

/**
 * Collects what changed and tells it in few NOTIFYs: `flush()` gives the payloads of
 * everything collected since the last one (none when nothing was).
 */
export class ChangeCollector {
  private drones = new Set<string>()
  private stations = new Set<string>()
  private deliveries = new Set<string>()
  private geofences = new Set<string>()
  private alerts = new Set<string>()

  constructor(private readonly from: string) {}

  /** The drones and stations a committed ingest batch wrote. */
  committed(items: readonly IngestItem[]): void {
    for (const item of items) {
      if (item.kind === 'telemetry' || item.kind === 'drone-status')
        this.drones.add(`${item.fleetId}/${item.droneId}`)
      else if (item.kind === 'station-status')
        this.stations.add(`${item.fleetId}/${item.stationId}`)
    }
  }

  drone(fleetId: string, id: string): void {
    this.drones.add(`${fleetId}/${id}`)
  }

  delivery(id: string): void {
    this.deliveries.add(id)
  }

  /** A fleet's zones changed. */
  geofence(fleetId: string): void {
    this.geofences.add(fleetId)
  }

  /** An alert changed. */
  alert(id: string): void {
    this.alerts.add(id)
  }

  flush(): string[] {
    const payloads: string[] = []
    let notice = this.empty()
    let bytes = JSON.stringify(notice).length
    const add = (
      field: 'drones' | 'stations' | 'deliveries' | 'geofences' | 'alerts',
      value: string,
    ) => {
      const size = value.length + 4 // quotes, comma, and room for an escaped character
      if (bytes + size > MAX_PAYLOAD_BYTES) {
        payloads.push(JSON.stringify(notice))
        notice = this.empty()
        bytes = JSON.stringify(notice).length
      }
      notice[field].push(value)
      bytes += size
    }
    for (const key of this.drones) add('drones', key)
    for (const key of this.stations) add('stations', key)
    for (const id of this.deliveries) add('deliveries', id)
    for (const fleetId of this.geofences) add('geofences', fleetId)
    for (const id of this.alerts) add('alerts', id)
    const { drones, stations, deliveries, geofences, alerts } = notice
    if (drones.length + stations.length + deliveries.length + geofences.length + alerts.length > 0)
      payloads.push(JSON.stringify(notice))
    this.drones = new Set()
    this.stations = new Set()
    this.deliveries = new Set()
    this.geofences = new Set()
    this.alerts = new Set()
    return payloads
  }

  private empty(): ChangeNotice {
    return {
      from: this.from,
      drones: [],
      stations: [],
      deliveries: [],
      geofences: [],
      alerts: [],
    }
  }
}

const ChangeNoticeSchema = z.object({
  from: z.string(),
  drones: z.array(z.string()),
  stations: z.array(z.string()),
  deliveries: z.array(z.string()),
  // Absent from an instance of a version before zones: none changed.
  geofences: z.array(z.string()).default([]),
  // Absent from an instance of a version before alerts: none changed.
  alerts: z.array(z.string()).default([]),
})

/** A notice from another instance, or undefined for one of ours or one that is not a notice. */
export function peerNotice(payload: string, self: string): ChangeNotice | undefined {
  let json: unknown
  try {
    json = JSON.parse(payload)
  } catch {
    return undefined
  }
  const notice = ChangeNoticeSchema.safeParse(json)
  return notice.success && notice.data.from !== self ? notice.data : undefined
}
