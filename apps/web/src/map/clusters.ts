import type L from 'leaflet'
import Supercluster from 'supercluster'
import type { PointFeature } from 'supercluster'
import type { DroneView } from '@skyline/schemas'

/** Fleets of at least this many drones are grouped at low zoom (issue 18: "thousands"). */
export const CLUSTER_MIN_DRONES = 1_000
/** Drones are grouped up to this zoom; from the next one on each is drawn. */
export const CLUSTER_MAX_ZOOM = 13
/** Drones within this distance of each other on screen form a group, CSS px. */
const RADIUS_PX = 60
/**
 * How often the groups follow the drones, ms. Building the index of 10,000 drones takes
 * a few ms: on every live frame it would be most of the page's budget, and a group's
 * place and count need not move faster than this.
 */
export const REBUILD_MS = 1_000

/** A group of drones on the map: where it is in the container, how many, and its id. */
export interface DroneCluster {
  id: number
  count: number
  x: number
  y: number
  lat: number
  lon: number
}

/**
 * Groups the drones of a big fleet at low zoom (supercluster): what to draw in the
 * view is then each group as a count and each drone alone as itself. The index is
 * built from the drones' positions at most every REBUILD_MS; the drones alone are
 * drawn where they are now.
 */
export class DroneClusters {
  private index = new Supercluster<{ key: string }>({
    radius: RADIUS_PX,
    maxZoom: CLUSTER_MAX_ZOOM,
    minPoints: 3,
  })
  private builtAt = -Infinity
  private dirty = true

  /** Whether to group at this zoom, with this many drones. */
  static applies(zoom: number, drones: number): boolean {
    return drones >= CLUSTER_MIN_DRONES && zoom <= CLUSTER_MAX_ZOOM
  }

  /** Whether the drones moved since the groups were made. */
  get pending(): boolean {
    return this.dirty
  }

  /** The drones moved (or came or went): the next query may rebuild. */
  changed(): void {
    this.dirty = true
  }

  /**
   * The groups in the map's view, in container px, and the keys of the drones that are
   * in no group. `drones` are those that may be grouped (the docked ones are counted at
   * their stations instead).
   */
  query(
    map: L.Map,
    drones: () => Iterable<[string, DroneView]>,
    now: number,
  ): { clusters: DroneCluster[]; alone: Set<string> } {
    if (this.dirty && now - this.builtAt >= REBUILD_MS) {
      const points: PointFeature<{ key: string }>[] = []
      for (const [key, d] of drones()) {
        if (d.position === null) continue
        points.push({
          type: 'Feature',
          properties: { key },
          geometry: { type: 'Point', coordinates: [d.position.lon, d.position.lat] },
        })
      }
      this.index.load(points)
      this.builtAt = now
      this.dirty = false
    }
    const b = map.getBounds().pad(0.1)
    const west = Math.max(-180, b.getWest())
    const east = Math.min(180, b.getEast())
    const bbox: [number, number, number, number] = [
      east - west >= 360 ? -180 : west,
      Math.max(-85, b.getSouth()),
      east - west >= 360 ? 180 : east,
      Math.min(85, b.getNorth()),
    ]
    const clusters: DroneCluster[] = []
    const alone = new Set<string>()
    for (const f of this.index.getClusters(bbox, Math.floor(map.getZoom()))) {
      const [lon, lat] = f.geometry.coordinates as [number, number]
      const p = f.properties
      if ('cluster' in p && p.cluster) {
        const c = map.latLngToContainerPoint([lat, lon])
        clusters.push({ id: p.cluster_id, count: p.point_count, x: c.x, y: c.y, lat, lon })
      } else alone.add((p as { key: string }).key)
    }
    return { clusters, alone }
  }

  /** The zoom at which a group splits. */
  expansionZoom(id: number): number {
    return this.index.getClusterExpansionZoom(id)
  }
}
