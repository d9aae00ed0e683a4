import L from 'leaflet'
import type { DroneView } from '@skyline/schemas'
import { STATE_COLOURS, etaShown, lostText, signalLost, stateText } from '../format.ts'
import type { FleetStore } from '../store.ts'
import { measure } from '../timing.ts'
import { ClusterBubbles } from './cluster-bubbles.ts'
import { DroneClusters, REBUILD_MS } from './clusters.ts'
import type { DroneCluster } from './clusters.ts'
import type { Box } from './label-placement.ts'
import { LABEL_PRIORITY, MapLabels } from './map-labels.ts'
import type { MapLabel } from './map-labels.ts'
import { STATION_LABEL_GAP_PX, stationBoxes } from './stations.ts'

/** Half the length of a drone's arrow, CSS px. */
const SIZE_PX = 7
/** Drones closer than this to a click are hit, CSS px. */
const HIT_PX = 12
const BEFORE_PICKUP = new Set(['requested', 'assigned', 'to_pickup'])

/** More drones than this in view are drawn as dots, not arrows. */
const MAX_ARROWS = 3_000
/** At most this many labels are offered for placement, the most important first. */
const MAX_LABELS = 150
/** Labels keep clear of the drones themselves while at most this many are in view. */
const MAX_DRONE_OBSTACLES = 1_000
/** A route whose drone is heard: dashed, in the en-route violet. */
const LIVE_ROUTE = { dash: [6, 5], colour: 'rgba(95, 61, 196, 0.7)' }
/** A route whose drone's signal is lost (issue 15): dotted, dark grey, so it does not look live. */
const LOST_ROUTE = { dash: [2, 5], colour: 'rgba(73, 80, 87, 0.75)' }

interface Shown {
  key: string
  d: DroneView
  x: number
  y: number
}

/**
 * Every drone on one canvas, redrawn at most once per animation frame: 10,000
 * drones are 10,000 arrows on a canvas, not 10,000 DOM markers. Each drone is an
 * arrow turned to its heading and coloured by state; a drone in flight also gets a
 * dashed line to its drop-off station and its ETA (a dotted grey line and `signal
 * lost hh:mm:ss` with the last ETA greyed once its signal is lost). Drones docked at a
 * station are not drawn: the station shows their count (stations.ts). A big fleet at
 * low zoom is drawn as groups with a count (clusters.ts). The labels are page
 * elements over the canvas, placed so that none overlaps another (map-labels.ts).
 * Hidden during zoom animations (`leaflet-zoom-hide`) and redrawn when the map settles.
 */
export class DroneLayer extends L.Layer {
  private canvas: HTMLCanvasElement | undefined
  private labels: MapLabels | undefined
  private bubbles: ClusterBubbles | undefined
  private readonly clusters = new DroneClusters()
  private frame = 0
  private later: ReturnType<typeof setTimeout> | undefined
  private selectedKey: string | null = null
  /** The drones drawn last, where they were drawn: what a click can hit. */
  private drawn: Shown[] = []
  /** Arrow sprites by colour and heading, drawn on first use. */
  private readonly sprites = new Map<string, HTMLCanvasElement>()

  constructor(private readonly store: FleetStore) {
    super()
  }

  override onAdd(map: L.Map): this {
    const canvas = L.DomUtil.create('canvas', 'drone-layer leaflet-zoom-hide')
    canvas.style.pointerEvents = 'none'
    // Above the station markers (markerPane, z-index 600), below tooltips (650): a
    // drone on a station stays visible.
    const pane = map.getPane('drones') ?? map.createPane('drones')
    pane.style.zIndex = '620'
    pane.style.pointerEvents = 'none'
    pane.appendChild(canvas)
    this.canvas = canvas
    this.labels = new MapLabels(pane)
    // The groups are buttons: a pane of their own that takes clicks, over the drones.
    const clusterPane = map.getPane('clusters') ?? map.createPane('clusters')
    clusterPane.style.zIndex = '625'
    this.bubbles = new ClusterBubbles(clusterPane, (id, lat, lon) =>
      map.setView([lat, lon], Math.min(this.clusters.expansionZoom(id), map.getMaxZoom())),
    )
    map.on('moveend zoomend resize viewreset', this.reset)
    this.reset()
    return this
  }

  override onRemove(map: L.Map): this {
    map.off('moveend zoomend resize viewreset', this.reset)
    cancelAnimationFrame(this.frame)
    clearTimeout(this.later)
    this.canvas?.remove()
    this.canvas = undefined
    this.labels?.remove()
    this.labels = undefined
    this.bubbles?.remove()
    this.bubbles = undefined
    return this
  }

  select(key: string | null): void {
    this.selectedKey = key
    this.redraw()
  }

  /** The drones changed: draws at the next animation frame; several calls before it draw once. */
  redraw(): void {
    this.clusters.changed()
    if (this.frame !== 0 || this.canvas === undefined) return
    this.frame = requestAnimationFrame(() => {
      this.frame = 0
      this.draw()
    })
  }

  /** The drone drawn nearest a point of the map's container, if one is close enough. */
  hit(point: L.Point): DroneView | undefined {
    let best: DroneView | undefined
    let bestD2 = HIT_PX * HIT_PX
    for (const v of this.drawn) {
      const d2 = (v.x - point.x) ** 2 + (v.y - point.y) ** 2
      if (d2 <= bestD2) {
        best = v.d
        bestD2 = d2
      }
    }
    return best
  }

  private sprite(colour: string, headingDeg: number): HTMLCanvasElement {
    const bucket = ((Math.round(headingDeg / 10) % 36) + 36) % 36
    const ratio = window.devicePixelRatio || 1
    const key = `${colour}|${bucket}|${ratio}`
    let sprite = this.sprites.get(key)
    if (sprite === undefined) {
      sprite = document.createElement('canvas')
      sprite.width = sprite.height = Math.ceil(SPRITE_PX * ratio)
      const ctx = sprite.getContext('2d')!
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0)
      ctx.beginPath()
      arrow(ctx, SPRITE_PX / 2, SPRITE_PX / 2, bucket * 10)
      ctx.fillStyle = colour
      ctx.fill()
      ctx.lineWidth = 1
      ctx.strokeStyle = 'rgba(255, 255, 255, 0.9)'
      ctx.stroke()
      this.sprites.set(key, sprite)
    }
    return sprite
  }

  private readonly reset = (): void => {
    const canvas = this.canvas
    if (canvas === undefined) return
    const size = this._map.getSize()
    const ratio = window.devicePixelRatio || 1
    canvas.width = size.x * ratio
    canvas.height = size.y * ratio
    canvas.style.width = `${size.x}px`
    canvas.style.height = `${size.y}px`
    this.draw()
  }

  /** Keys of the drones docked at a station, as the stations say. */
  private docked(): Set<string> {
    const keys = new Set<string>()
    for (const s of this.store.stations.values())
      for (const id of s.docked) keys.add(`${s.fleetId}/${id}`)
    return keys
  }

  private draw(): void {
    const canvas = this.canvas
    const ctx = canvas?.getContext('2d')
    if (canvas === undefined || ctx == null) return
    const started = performance.now()
    const map = this._map
    // Drawn in container coordinates, so the canvas goes back to the container's
    // corner first: a redraw during a drag or an animated pan would be off by the pan.
    const origin = map.containerPointToLayerPoint([0, 0])
    L.DomUtil.setPosition(canvas, origin)
    const ratio = window.devicePixelRatio || 1
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0)
    const w = canvas.width / ratio
    const h = canvas.height / ratio
    ctx.clearRect(0, 0, w, h)
    const inView = (x: number, y: number, margin: number) =>
      x >= -margin && y >= -margin && x <= w + margin && y <= h + margin

    // A big fleet at low zoom: groups, and the drones in none. Docked drones are counted
    // at their stations, not grouped; the selected one is always drawn.
    const docked = this.docked()
    let clusters: DroneCluster[] = []
    let alone: Set<string> | undefined
    if (DroneClusters.applies(map.getZoom(), this.store.drones.size)) {
      ;({ clusters, alone } = this.clusters.query(
        map,
        () => [...this.store.drones].filter(([key]) => !docked.has(key)),
        started,
      ))
      if (this.clusters.pending) this.rebuildLater()
    }
    const obstacles: Box[] = this.bubbles?.show(clusters, origin) ?? []
    if (alone === undefined) this.bubbles?.clear()

    // Project once; drones out of view, docked or in a group are not drawn.
    const visible: Shown[] = []
    const dockedShown: Shown[] = []
    const project = (key: string, d: DroneView, into: Shown[]) => {
      if (d.position === null) return
      const p = map.latLngToContainerPoint([d.position.lat, d.position.lon])
      if (inView(p.x, p.y, SIZE_PX)) into.push({ key, d, x: p.x, y: p.y })
    }
    if (alone !== undefined) {
      for (const key of alone) {
        const d = this.store.drones.get(key)
        if (d !== undefined && key !== this.selectedKey) project(key, d, visible)
      }
    } else {
      for (const [key, d] of this.store.drones) {
        if (key === this.selectedKey) continue
        project(key, d, docked.has(key) ? dockedShown : visible)
      }
    }
    const selected = this.selectedKey === null ? undefined : this.store.drones.get(this.selectedKey)
    if (selected !== undefined) project(this.selectedKey!, selected, visible)
    this.drawn = visible

    // Routes first, under the drones: a line to the drop-off. One label a drone: its
    // ETA, or its lost signal with the last ETA, or since when it is offline, or its id.
    const labels: MapLabel[] = []
    const liveRoutes = new Path2D()
    const lostRoutes = new Path2D()
    const ids = visible.length <= MAX_LABELS
    for (const v of visible) {
      const delivery = this.store.deliveryOf(v.d)
      const label = droneLabel(v, delivery, v.key === this.selectedKey)
      if (label !== undefined) labels.push(label)
      else if (ids || v.key === this.selectedKey)
        labels.push({
          key: `drone:${v.key}`,
          x: v.x,
          y: v.y,
          kind: 'id',
          text: v.d.id,
          gap: SIZE_PX + 3,
          selected: v.key === this.selectedKey,
        })
      if (delivery === undefined) continue
      // Before the pick-up the drone heads for the pick-up station; then the drop-off.
      const target = this.store.station(
        delivery.fleetId,
        BEFORE_PICKUP.has(delivery.status) ? delivery.pickupStationId : delivery.dropoffStationId,
      )
      if (target !== undefined) {
        const q = map.latLngToContainerPoint([target.lat, target.lon])
        const routes = signalLost(v.d) ? lostRoutes : liveRoutes
        routes.moveTo(v.x, v.y)
        routes.lineTo(q.x, q.y)
      }
    }
    // A docked drone is not drawn, but what is wrong with it still shows (offline since…).
    for (const v of dockedShown) {
      const label = droneLabel(v, this.store.deliveryOf(v.d), false)
      // Clear of the station's square, as the station's name is.
      if (label !== undefined) labels.push({ ...label, gap: STATION_LABEL_GAP_PX })
    }
    ctx.lineWidth = 1.5
    for (const [routes, style] of [
      [liveRoutes, LIVE_ROUTE],
      [lostRoutes, LOST_ROUTE],
    ] as const) {
      ctx.setLineDash(style.dash)
      ctx.strokeStyle = style.colour
      ctx.stroke(routes)
    }
    ctx.setLineDash([])

    if (visible.length > MAX_ARROWS) {
      // A crowd: headings cannot be told apart at this scale, so each drone is a dot,
      // one fill per colour (a rectangle is the cheapest thing a canvas draws).
      const byColour = new Map<string, typeof visible>()
      for (const v of visible) {
        const colour = STATE_COLOURS[v.d.state]
        const list = byColour.get(colour)
        if (list === undefined) byColour.set(colour, [v])
        else list.push(v)
      }
      for (const [colour, list] of byColour) {
        ctx.fillStyle = colour
        for (const v of list) ctx.fillRect(Math.round(v.x) - 2, Math.round(v.y) - 2, 4, 4)
      }
    } else {
      // Each arrow is a pre-drawn sprite (per colour and 10° of heading) copied onto
      // the canvas: a blit is far cheaper than filling and stroking a path, above all
      // on a software-rendered canvas.
      const half = SPRITE_PX / 2
      for (const v of visible) {
        const sprite = this.sprite(STATE_COLOURS[v.d.state], v.d.headingDeg ?? 0)
        ctx.drawImage(sprite, Math.round(v.x - half), Math.round(v.y - half), SPRITE_PX, SPRITE_PX)
      }
    }

    // Stations: their names are labels; their squares and docked counts, obstacles.
    for (const [key, s] of this.store.stations) {
      const p = map.latLngToContainerPoint([s.lat, s.lon])
      if (!inView(p.x, p.y, 20)) continue
      obstacles.push(...stationBoxes(p.x, p.y, s.docked.length))
      labels.push({
        key: `station:${key}`,
        x: p.x,
        y: p.y,
        kind: 'station',
        text: s.name,
        gap: STATION_LABEL_GAP_PX,
      })
    }
    if (visible.length <= MAX_DRONE_OBSTACLES) {
      for (const v of visible)
        obstacles.push({
          minX: v.x - SIZE_PX,
          minY: v.y - SIZE_PX,
          maxX: v.x + SIZE_PX,
          maxY: v.y + SIZE_PX,
        })
    }
    const offered =
      labels.length <= MAX_LABELS
        ? labels
        : labels.sort((a, b) => rank(a) - rank(b)).slice(0, MAX_LABELS)
    this.labels?.show(offered, obstacles, w, h, origin)

    if (selected?.position != null) {
      const p = map.latLngToContainerPoint([selected.position.lat, selected.position.lon])
      ctx.beginPath()
      ctx.arc(p.x, p.y, SIZE_PX + 5, 0, 2 * Math.PI)
      ctx.lineWidth = 2.5
      ctx.strokeStyle = '#f08c00'
      ctx.stroke()
    }
    measure('skyline:draw', started)
  }

  /** The groups follow the drones at most once a second: a draw then, if none comes first. */
  private rebuildLater(): void {
    if (this.later !== undefined) return
    this.later = setTimeout(() => {
      this.later = undefined
      if (this.frame === 0 && this.canvas !== undefined)
        this.frame = requestAnimationFrame(() => {
          this.frame = 0
          this.draw()
        })
    }, REBUILD_MS + 50)
  }
}

const rank = (l: MapLabel): number =>
  l.selected === true ? LABEL_PRIORITY.selected : LABEL_PRIORITY[l.kind]

/** A drone's label when it has something to say: its ETA, its lost signal, its offline time. */
function droneLabel(
  v: Shown,
  delivery: ReturnType<FleetStore['deliveryOf']>,
  selected: boolean,
): MapLabel | undefined {
  const at = { key: `drone:${v.key}`, x: v.x, y: v.y, gap: SIZE_PX + 3, selected }
  const shown = etaShown(delivery, v.d)
  if (shown?.kind === 'live') return { ...at, kind: 'eta', text: `ETA ${shown.eta}` }
  if (shown?.kind === 'lost') {
    const greyed = shown.lastEta === null ? undefined : `ETA ${shown.lastEta}`
    return { ...at, kind: 'lost', text: lostText(shown.lostAt), greyed }
  }
  if (v.d.state === 'offline') return { ...at, kind: 'offline', text: stateText(v.d) }
  return undefined
}

/** An arrow sprite's side, CSS px. */
const SPRITE_PX = 2 * SIZE_PX + 6

/** An arrow centred on (x, y) pointing along the heading (0 = north, clockwise). */
function arrow(ctx: CanvasRenderingContext2D, x: number, y: number, headingDeg: number): void {
  const a = (headingDeg * Math.PI) / 180
  const sin = Math.sin(a)
  const cos = Math.cos(a)
  // Points in the arrow's frame (y down is backwards), turned by the heading.
  const pt = (px: number, py: number): [number, number] => [
    x + px * cos - py * sin,
    y + px * sin + py * cos,
  ]
  const s = SIZE_PX
  const [x0, y0] = pt(0, -s)
  const [x1, y1] = pt(s * 0.75, s)
  const [x2, y2] = pt(0, s * 0.45)
  const [x3, y3] = pt(-s * 0.75, s)
  ctx.moveTo(x0, y0)
  ctx.lineTo(x1, y1)
  ctx.lineTo(x2, y2)
  ctx.lineTo(x3, y3)
  ctx.closePath()
}
