import L from 'leaflet'
import type { StationView } from '@skyline/schemas'
import { clockTime } from '../format.ts'
import type { FleetStore } from '../store.ts'

/**
 * Landing stations as DOM markers (a fleet has tens of them, not thousands): a
 * square that is green when online and grey when offline, its name beside it, and
 * a tooltip with its docked drones.
 */
export class StationLayer {
  private readonly markers = new Map<string, L.Marker>()
  private readonly group = L.layerGroup()

  constructor(
    map: L.Map,
    private readonly store: FleetStore,
  ) {
    this.group.addTo(map)
  }

  update(): void {
    for (const [key, station] of this.store.stations) {
      const marker = this.markers.get(key)
      const icon = stationIcon(station)
      if (marker === undefined) {
        const m = L.marker([station.lat, station.lon], { icon, keyboard: false })
        m.bindTooltip(() => tooltip(this.store.stations.get(key) ?? station), { direction: 'top' })
        this.markers.set(key, m.addTo(this.group))
      } else {
        marker.setLatLng([station.lat, station.lon])
        marker.setIcon(icon)
      }
    }
    for (const [key, marker] of this.markers) {
      if (!this.store.stations.has(key)) {
        marker.remove()
        this.markers.delete(key)
      }
    }
  }
}

function stationIcon(s: StationView): L.DivIcon {
  const html = document.createElement('div')
  html.className = `station ${s.online ? 'online' : 'offline'}`
  const name = document.createElement('span')
  name.className = 'station-name'
  name.textContent = s.docked.length > 0 ? `${s.name} · ${s.docked.length} docked` : s.name
  html.append(name)
  return L.divIcon({ html, className: 'station-icon', iconSize: [16, 16], iconAnchor: [8, 8] })
}

function tooltip(s: StationView): HTMLElement {
  const el = document.createElement('div')
  const lines = [
    `${s.name} (${s.id})`,
    s.online ? 'online' : `offline since ${clockTime(s.onlineChangedAt)}`,
    `docked ${s.docked.length}/${s.capacity}: ${s.docked.join(', ') || 'none'}`,
  ]
  for (const line of lines) {
    const p = document.createElement('div')
    p.textContent = line
    el.append(p)
  }
  return el
}
