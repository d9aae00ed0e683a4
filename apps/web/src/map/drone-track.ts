import L from 'leaflet'
import type { DroneView } from '@skyline/schemas'
import { getTrack } from '../api.ts'

/** How far back the selected drone's track goes, ms (issue 18: "the last 10 minutes"). */
export const TRACK_WINDOW_MS = 10 * 60_000

/**
 * The selected drone's recent track on the map: the api's track of its last 10
 * minutes (on the drone's clock: a time-scaled simulator runs ahead of the wall
 * clock), then each new position the live stream brings, the oldest ones dropped as
 * they leave the window.
 */
export class DroneTrack {
  private readonly svg = L.svg()
  private line: L.Polyline | undefined
  private points: { at: number; latLng: L.LatLng }[] = []
  /** Which drone the track is of; a late answer for another one is dropped. */
  private key: string | null = null

  constructor(
    private readonly map: L.Map,
    private readonly onError: (message: string) => void,
  ) {}

  /** Shows the track of this drone (null: none). */
  async show(drone: DroneView | null): Promise<void> {
    this.clear()
    if (drone === null) return
    const key = `${drone.fleetId}/${drone.id}`
    this.key = key
    // SVG, unlike the drones' canvas: one element, drawn under the drones.
    this.line = L.polyline([], {
      color: '#f08c00',
      weight: 3,
      opacity: 0.8,
      renderer: this.svg,
      className: 'drone-track',
      interactive: false,
    }).addTo(this.map)
    if (drone.positionAt === null) return
    const to = new Date(drone.positionAt)
    try {
      const track = await getTrack(drone, new Date(to.getTime() - TRACK_WINDOW_MS), to)
      if (this.key !== key) return
      // Positions the live stream added while the track was on its way come after it.
      const later = this.points.filter((p) => p.at > to.getTime())
      this.points = [
        ...track.points.map((p) => ({ at: Date.parse(p.ts), latLng: L.latLng(p.lat, p.lon) })),
        ...later,
      ]
      this.redraw()
    } catch (err) {
      if (this.key === key) this.onError(`track: ${(err as Error).message}`)
    }
  }

  /** The drone moved: its new position joins the track. */
  moved(drone: DroneView): void {
    if (this.key !== `${drone.fleetId}/${drone.id}` || drone.position === null) return
    if (drone.positionAt === null) return
    const at = Date.parse(drone.positionAt)
    const last = this.points.at(-1)
    if (last !== undefined && last.at >= at) return
    this.points.push({ at, latLng: L.latLng(drone.position.lat, drone.position.lon) })
    const from = at - TRACK_WINDOW_MS
    if (this.points[0]!.at < from) this.points = this.points.filter((p) => p.at >= from)
    this.redraw()
  }

  clear(): void {
    this.key = null
    this.points = []
    this.line?.remove()
    this.line = undefined
  }

  private redraw(): void {
    this.line?.setLatLngs(this.points.map((p) => p.latLng))
  }
}
