import L from 'leaflet'
import type { DeliveryDetail } from '@skyline/schemas'

/**
 * A delivery's flown track on the map, with a marker that a time slider moves
 * along it: the track, the point at the slider's time, and play/pause.
 */
export class TrackReplay {
  private line: L.Polyline | undefined
  private marker: L.CircleMarker | undefined
  private track: DeliveryDetail['track'] = []
  private timer: ReturnType<typeof setInterval> | undefined
  private readonly svg = L.svg()

  constructor(
    private readonly map: L.Map,
    private readonly onMove: (index: number, point: DeliveryDetail['track'][number]) => void,
  ) {}

  show(delivery: DeliveryDetail): void {
    this.clear()
    this.track = delivery.track
    if (this.track.length === 0) return
    const points = this.track.map((p) => L.latLng(p.lat, p.lon))
    // SVG, unlike the map's canvas: the track is one element, and it is interactive.
    this.line = L.polyline(points, {
      color: '#e8590c',
      weight: 3,
      opacity: 0.85,
      renderer: this.svg,
      className: 'replay-track',
    }).addTo(this.map)
    this.marker = L.circleMarker(points[0]!, {
      radius: 7,
      color: '#fff',
      weight: 2,
      fillColor: '#e8590c',
      fillOpacity: 1,
    }).addTo(this.map)
    this.map.fitBounds(this.line.getBounds(), { padding: [40, 40], maxZoom: 16 })
    this.seek(0)
  }

  get length(): number {
    return this.track.length
  }

  seek(index: number): void {
    const point = this.track[Math.max(0, Math.min(index, this.track.length - 1))]
    if (point === undefined) return
    this.marker?.setLatLng([point.lat, point.lon])
    this.onMove(index, point)
  }

  /** Plays the track in about ten seconds, whatever its length. */
  play(from: number, onEnd: () => void): void {
    this.pause()
    let i = from >= this.track.length - 1 ? 0 : from
    const step = Math.max(1, Math.ceil(this.track.length / 200))
    this.timer = setInterval(() => {
      i = Math.min(this.track.length - 1, i + step)
      this.seek(i)
      if (i >= this.track.length - 1) {
        this.pause()
        onEnd()
      }
    }, 50)
  }

  pause(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  clear(): void {
    this.pause()
    this.line?.remove()
    this.marker?.remove()
    this.line = undefined
    this.marker = undefined
    this.track = []
  }
}
