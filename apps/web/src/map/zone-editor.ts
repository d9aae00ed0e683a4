import L from 'leaflet'
import '@geoman-io/leaflet-geoman-free'
import '@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.css'
import type { GeofenceGeometry, GeofenceView, WhoAmI } from '@skyline/schemas'
import { createGeofence, deleteGeofence, updateGeofence } from '../api.ts'
import { errorText } from '../panel/zone-form.ts'
import type { ZoneForm } from '../panel/zone-form.ts'
import type { ZoneStore } from '../zones.ts'
import { ZONES_PANE } from './zone-layer.ts'
import type { ZoneLayer } from './zone-layer.ts'

// Loaded only for a token that operates its fleets (main.ts imports it on demand): a
// viewer's page carries none of Leaflet-Geoman.

// Geoman takes only the layers that ask for it (`pmIgnore: false`): the zones. Without
// this, its edit mode would make the stations' markers and the drones' tracks editable.
L.PM.setOptIn(true)

/** What a drawn or edited polygon is, as the api takes it ([lon, lat], rings closed). */
export function geometryOf(layer: L.Polygon): GeofenceGeometry {
  const geometry = layer.toGeoJSON().geometry as GeofenceGeometry
  // With worldCopyJump, a shape drawn on a copy of the world has longitudes past ±180:
  // the whole shape is moved back by whole turns (one drawn across the antimeridian still
  // spans it, and the api says so).
  const first =
    geometry.type === 'Polygon' ? geometry.coordinates[0]?.[0] : geometry.coordinates[0]?.[0]?.[0]
  const turns = first === undefined ? 0 : Math.round(first[0] / 360)
  if (turns === 0) return geometry
  const shift = (p: [number, number]): [number, number] => [p[0] - turns * 360, p[1]]
  return geometry.type === 'Polygon'
    ? { type: 'Polygon', coordinates: geometry.coordinates.map((ring) => ring.map(shift)) }
    : {
        type: 'MultiPolygon',
        coordinates: geometry.coordinates.map((poly) => poly.map((ring) => ring.map(shift))),
      }
}

/**
 * Drawing and editing zones with Leaflet-Geoman (issue 18), for an operator: its toolbar
 * draws a polygon or a rectangle (then the form asks name, kind, fleet and window, and
 * Save posts it), edits vertices and drags zones (each edit PATCHes the geometry), and
 * removes zones (DELETE). A click on a zone outside those modes opens the form to change
 * its fields or delete it. What the api refuses is shown (the form's error, or the map's
 * message), and a refused edit or removal puts the zone back as the api has it.
 */
export class ZoneEditor {
  /** A polygon drawn and not saved yet. */
  private draft: L.Polygon | undefined

  constructor(
    private readonly map: L.Map,
    private readonly zones: ZoneStore,
    private readonly layer: ZoneLayer,
    private readonly form: ZoneForm,
    private readonly me: WhoAmI,
    /** Fleets the page has seen (a token of every fleet names none). */
    private readonly seenFleets: () => string[],
    private readonly say: (message: string) => void,
  ) {
    // The map was made before Geoman loaded: it gets Geoman's tools now (reInitLayer takes
    // a map too, though its typings say a layer).
    map.options.pmIgnore = false
    L.PM.reInitLayer(map as unknown as L.Layer)
    const style = { renderer: layer.zoneRenderer, color: '#c1121f', weight: 2 }
    map.pm.setGlobalOptions({
      // Drawn where the zones are, under the drones, with their renderer.
      panes: { layerPane: ZONES_PANE },
      pathOptions: { ...style, fillOpacity: 0.15 },
      templineStyle: style,
      hintlineStyle: { ...style, dashArray: '5 5' },
      // The api refuses rings that cross (400 bad_geometry): Geoman does not draw them.
      allowSelfIntersection: false,
    })
    map.pm.addControls({
      position: 'topleft',
      drawPolygon: true,
      drawRectangle: true,
      editMode: true,
      dragMode: true,
      removalMode: true,
      drawMarker: false,
      drawCircleMarker: false,
      drawPolyline: false,
      drawCircle: false,
      drawText: false,
      cutPolygon: false,
      rotateMode: false,
    })
    map.on('pm:create', (e) => this.created(e.layer as L.Polygon))
    map.on('pm:remove', (e) => void this.removed(e.layer))
    layer.onLayer = (l, zone) => this.listen(l, zone.id)
    // The zones drawn so far: editable now.
    layer.setEditable(true)
  }

  /** The token's fleets, or for a token of every fleet those the page has seen. */
  private fleets(): string[] {
    return this.me.fleets === '*' ? this.seenFleets() : [...this.me.fleets].sort()
  }

  private created(polygon: L.Polygon): void {
    // Opening the form gives up one still open, and its drawing: then this one is the draft.
    this.form.open(
      { fleets: this.fleets() },
      {
        save: async (fields) => {
          const zone = await createGeofence({ ...fields, geometry: geometryOf(polygon) })
          this.drop(polygon)
          this.zones.put(zone)
        },
        cancel: () => this.drop(polygon),
      },
    )
    this.draft = polygon
  }

  /** A drawing saved (the zone takes its place) or given up. */
  private drop(polygon: L.Polygon): void {
    polygon.remove()
    if (this.draft === polygon) this.draft = undefined
  }

  /** A zone's polygon: its edits (vertices moved, dragged) are saved; a click opens its form. */
  private listen(polygon: L.Polygon, id: string): void {
    polygon.on('pm:edit', () => void this.edited(polygon, id))
    polygon.on('click', () => {
      const pm = this.map.pm
      if (pm.globalEditModeEnabled() || pm.globalDragModeEnabled()) return
      if (pm.globalRemovalModeEnabled() || pm.globalDrawModeEnabled()) return
      const zone = this.zones.zones.get(id)
      if (zone !== undefined) this.openZone(zone)
    })
  }

  private openZone(zone: GeofenceView): void {
    this.form.open(
      { zone },
      {
        save: async ({ name, kind, activeFrom, activeUntil }) => {
          this.zones.put(await updateGeofence(zone.id, { name, kind, activeFrom, activeUntil }))
        },
        cancel: () => undefined,
        remove: async () => {
          await deleteGeofence(zone.id)
          this.zones.remove(zone.id)
        },
      },
    )
  }

  private async edited(polygon: L.Polygon, id: string): Promise<void> {
    try {
      this.zones.put(await updateGeofence(id, { geometry: geometryOf(polygon) }))
      this.say('')
    } catch (err) {
      this.say(`The zone was not changed: ${errorText(err)}`)
      this.layer.restore(id)
    }
  }

  private async removed(removed: L.Layer): Promise<void> {
    if (removed === this.draft) {
      this.draft = undefined
      return this.form.close()
    }
    const zone = this.layer.zoneOf(removed)
    if (zone === undefined) return
    try {
      await deleteGeofence(zone.id)
      this.zones.remove(zone.id)
      this.say('')
    } catch (err) {
      this.say(`The zone was not deleted: ${errorText(err)}`)
      this.layer.restore(zone.id)
    }
  }
}
