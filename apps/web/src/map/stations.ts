import L from 'leaflet'
import type { StationView } from '@skyline/schemas'
import { clockTime } from '../format.ts'
import type { Box } from './label-placement.ts'
import type { FleetStore } from '../store.ts'

/** A station's square, CSS px (with its white border). */
const SQUARE_PX = 20
/** Between a station's centre and its name, px: half the square and a gap. */
export const STATION_LABEL_GAP_PX = SQUARE_PX / 2 + 3
/** The docked count's height and its width per digit, px (styles.css `.station-docked`). */
const BADGE_H_PX = 16
const BADGE_DIGIT_PX = 7

/**
 * Where a station's square and its docked count are, around its centre (container px):
 * the labels keep clear of them.
 */
export function stationBoxes(x: number, y: number, docked: number): Box[] {
  const half = SQUARE_PX / 2
  const boxes = [{ minX: x - half, minY: y - half, maxX: x + half, maxY: y + half }]
  if (docked > 0) {
    // Over the square's top-right corner (`.station-docked`: left 10px, top -10px of the 16 px icon).
    const left = x + 2
    boxes.push({
      minX: left,
      minY: y - 18,
      maxX: left + 8 + BADGE_DIGIT_PX * String(docked).length,
      maxY: y - 18 + BADGE_H_PX,
    })
  }
  return boxes
}

/**
 * Landing stations as DOM markers (a fleet has tens of them, not thousands): a
 * square that is green when online and grey when offline, with the number of drones
 * docked there on it (issue 18: docked drones hid under the square). A click on a
 * station with docked drones lists them; a click on one selects it. The names are map
 * labels (map-labels.ts), placed with the drones'.
 */
export class StationLayer {
  private readonly markers = new Map<string, L.Marker>()
  private readonly group = L.layerGroup()
  private readonly popup = L.popup({ className: 'docked-popup', autoPan: true, minWidth: 120 })
  /** The station whose docked drones the popup lists. */
  private listed: string | null = null

  constructor(
    private readonly map: L.Map,
    private readonly store: FleetStore,
    private readonly onSelect: (droneKey: string) => void,
  ) {
    this.group.addTo(map)
    this.popup.on('remove', () => (this.listed = null))
  }

  update(): void {
    for (const [key, station] of this.store.stations) {
      const marker = this.markers.get(key)
      const icon = stationIcon(station)
      if (marker === undefined) {
        const m = L.marker([station.lat, station.lon], { icon, keyboard: false })
        m.bindTooltip(() => tooltip(this.store.stations.get(key) ?? station), { direction: 'top' })
        m.on('click', () => this.list(key))
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
    if (this.listed !== null) this.list(this.listed)
  }

  /** Opens (or refreshes) the list of the drones docked at a station; closes it when there are none. */
  private list(key: string): void {
    const station = this.store.stations.get(key)
    const marker = this.markers.get(key)
    if (station === undefined || marker === undefined || station.docked.length === 0) {
      if (this.listed === key) this.popup.close()
      return
    }
    this.listed = key
    this.popup.setLatLng(marker.getLatLng()).setContent(dockedList(station, this.onSelect))
    if (!this.popup.isOpen()) this.popup.openOn(this.map)
  }
}

function dockedList(s: StationView, onSelect: (droneKey: string) => void): HTMLElement {
  const el = document.createElement('div')
  el.className = 'docked-list'
  el.dataset.station = `${s.fleetId}/${s.id}`
  const title = document.createElement('strong')
  title.textContent = `${s.name}: ${s.docked.length} docked`
  const list = document.createElement('ul')
  for (const id of [...s.docked].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))) {
    const item = document.createElement('li')
    const button = document.createElement('button')
    button.type = 'button'
    button.dataset.docked = `${s.fleetId}/${id}`
    button.textContent = id
    button.addEventListener('click', () => onSelect(`${s.fleetId}/${id}`))
    item.append(button)
    list.append(item)
  }
  el.append(title, list)
  return el
}

function stationIcon(s: StationView): L.DivIcon {
  const html = document.createElement('div')
  html.className = `station ${s.online ? 'online' : 'offline'}`
  html.dataset.station = `${s.fleetId}/${s.id}`
  if (s.docked.length > 0) {
    const count = document.createElement('span')
    count.className = 'station-docked'
    count.textContent = String(s.docked.length)
    count.title = `${s.docked.length} docked: click for the list`
    html.append(count)
  }
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
