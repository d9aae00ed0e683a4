import { defaultDemandPerMin, fleetCapacity } from './capacity.ts'
import type { Capacity } from './capacity.ts'
import type { DeviceTokens } from './credentials.ts'
import { DroneAgent } from './drone-agent.ts'
import type { Stop } from './drone-model.ts'
import { emptyStats } from './context.ts'
import type { FleetStats, SimContext } from './context.ts'
import { MAX_WIND_MPS } from './flight.ts'
import type { Wind } from './flight.ts'
import { distanceM, normalizeDeg, randomPointWithin } from './geo.ts'
import type { LatLon } from './geo.ts'
import { seededRandom } from './random.ts'
import { StationAgent } from './station-agent.ts'

export interface FleetOptions {
  /** Broker URL (mqtt://, mqtts://, ws://). */
  url: string
  fleetId: string
  drones: number
  stations: number
  center: LatLon
  radiusKm: number
  /** Telemetry messages per drone per (wall-clock) second. */
  rateHz: number
  telemetryQos: 0 | 1
  /** Probability per simulated minute that a drone loses its connection; 0 for never. */
  chaosPerMin: number
  /** Simulated time runs this many times faster than the wall clock. */
  timeScale: number
  /**
   * Delivery requests per station per simulated minute. Default: what keeps the fleet
   * busy DEMAND_UTILISATION of the time (defaultDemandPerMin), so the demo keeps up.
   */
  demandPerMin?: number
  /** Idle drones fly between stations on their own (no dispatcher needed). */
  patrol: boolean
  keepaliveS: number
  seed: number
  /** Where each device's token comes from (signed here, or from an OIDC issuer). */
  tokens: DeviceTokens
  /** Connections opened at once while starting. Default 200. */
  connectConcurrency?: number
}

/** Each drone's airspeed in cruise, m/s: drawn between these. */
const CRUISE_MPS = { min: 12, max: 18 }
/** How often the fleet moves, ms of wall clock. Telemetry is spread over these ticks. */
const TICK_MS = 50
/** An idle, charged drone on patrol takes off on average after this long, simulated s. */
const PATROL_MEAN_IDLE_S = 30
/** A chaos drop lasts this long, simulated s (a few seconds). */
const CHAOS_DOWN_S = { min: 2, max: 6 }
/** Docked drones listed in a station status at most (StationStatusSchema). */
const MAX_DOCKED_LISTED = 1000

/** A simulated fleet: its stations and drones, each on its own MQTT connection. */
export class Fleet {
  readonly stats: FleetStats = emptyStats()
  readonly drones: DroneAgent[] = []
  readonly stations: StationAgent[] = []
  /** What this fleet can fly, from its layout and drones. */
  readonly capacity: Capacity
  /** Delivery requests per station per simulated minute: the option, or sized to the capacity. */
  readonly demandPerMin: number
  private readonly random: () => number
  private readonly wind: Wind
  private readonly ctx: SimContext
  private readonly realStart = Date.now()
  private lastTickSimMs: number
  private tickIndex = 0
  private ticker: NodeJS.Timeout | undefined
  private stopping: Promise<void> | undefined
  private connecting: Promise<void> | undefined

  private constructor(private readonly opts: FleetOptions) {
    this.random = seededRandom(opts.seed)
    this.wind = { speedMps: 2 + this.random() * 4, toDeg: this.random() * 360 }
    const stops = new Map<string, Stop>()
    this.ctx = {
      fleetId: opts.fleetId,
      now: () => this.realStart + (Date.now() - this.realStart) * opts.timeScale,
      wind: this.wind,
      telemetryQos: opts.telemetryQos,
      stats: this.stats,
      nearestStation: (pos) =>
        nearest(
          this.stations.map((s) => s.stop),
          pos,
        ),
      stationById: (id) => stops.get(id),
    }
    this.lastTickSimMs = this.ctx.now()
    const radiusM = opts.radiusKm * 1000
    const capacity = Math.min(
      MAX_DOCKED_LISTED,
      Math.max(4, Math.ceil((2 * opts.drones) / opts.stations)),
    )
    // The layout and the drones first: the default demand is sized to them.
    for (let i = 1; i <= opts.stations; i++) {
      const stop = {
        stationId: `station-${i}`,
        ...randomPointWithin(opts.center, radiusM, this.random),
      }
      stops.set(stop.stationId, stop)
    }
    const homes = [...stops.values()]
    const cruise: number[] = []
    for (let i = 1; i <= opts.drones; i++) {
      const home = homes[(i - 1) % opts.stations]!
      const cruiseMps = CRUISE_MPS.min + this.random() * (CRUISE_MPS.max - CRUISE_MPS.min)
      const battery = 60 + this.random() * 40
      cruise.push(cruiseMps)
      this.drones.push(new DroneAgent(this.ctx, `drone-${i}`, home, cruiseMps, battery))
    }
    const fleet = { stations: homes, cruiseMps: cruise, timeScale: opts.timeScale }
    this.capacity = fleetCapacity(fleet)
    this.demandPerMin = opts.demandPerMin ?? defaultDemandPerMin(fleet)
    homes.forEach((stop, i) =>
      this.stations.push(
        new StationAgent(
          this.ctx,
          stop,
          `Station ${i + 1}`,
          capacity,
          this.demandPerMin,
          this.random,
        ),
      ),
    )
  }

  /** A fleet ready to run(); stop() works at any time, even while it connects. */
  static create(opts: FleetOptions): Fleet {
    return new Fleet(opts)
  }

  /** create() and run() in one. */
  static async start(opts: FleetOptions): Promise<Fleet> {
    const fleet = new Fleet(opts)
    await fleet.run()
    return fleet
  }

  /** Connects every station and drone (a bounded number at a time), then starts flying. */
  async run(): Promise<void> {
    this.connecting = this.connectAll()
    try {
      await this.connecting
    } catch (err) {
      await this.stop()
      throw err
    }
    if (this.stopping === undefined) this.ticker = setInterval(() => this.tick(), TICK_MS)
  }

  /** Simulated time now, epoch ms. */
  now(): number {
    return this.ctx.now()
  }

  get connectedDrones(): number {
    return this.drones.reduce((n, d) => n + (d.connected ? 1 : 0), 0)
  }

  /** Every drone and station says it is going offline and disconnects cleanly (no will fires). */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.ticker)
      // Connections still opening finish first, so that every one is closed cleanly.
      await this.connecting?.catch(() => {})
      await mapLimit(this.drones, 500, (d) => d.stop())
      await mapLimit(this.stations, 500, (s) => s.close())
    })()
    return this.stopping
  }

  private async connectAll(): Promise<void> {
    const { url, fleetId, keepaliveS, tokens } = this.opts
    const limit = this.opts.connectConcurrency ?? 200
    // Once stop() is called, nothing new starts connecting.
    const open = async (device: StationAgent | DroneAgent, role: 'station' | 'drone') => {
      if (this.stopping !== undefined) return
      const name = { id: device.id, role, fleetId }
      const token = await tokens.issue(name)
      await device.connect(url, token.accessToken, keepaliveS)
      device.connection!.keepTokenFresh(token, () => tokens.issue(name))
    }
    await mapLimit(this.stations, limit, (s) => open(s, 'station'))
    await mapLimit(this.drones, limit, (d) => open(d, 'drone'))
  }

  private tick(): void {
    const now = this.ctx.now()
    const dtS = (now - this.lastTickSimMs) / 1000
    this.lastTickSimMs = now
    this.blowWind(dtS)

    // Each drone sends its telemetry in one slot of the period, so that 10,000 drones
    // at 1 Hz publish evenly instead of all at once.
    const slots = Math.max(1, Math.round(1000 / this.opts.rateHz / TICK_MS))
    const slot = this.tickIndex++ % slots
    const pChaos =
      this.opts.chaosPerMin > 0 ? 1 - (1 - Math.min(1, this.opts.chaosPerMin)) ** (dtS / 60) : 0
    const pPatrol = this.opts.patrol ? 1 - Math.exp(-dtS / PATROL_MEAN_IDLE_S) : 0
    for (let i = slot; i < this.drones.length; i += slots) this.drones[i]!.tick()
    if (pChaos > 0 || pPatrol > 0) this.disturb(pChaos, pPatrol)
    // Stations look at who is docked twice a second: cheap for 10,000 drones.
    if (this.tickIndex % 10 === 0) this.updateStations()
  }

  private disturb(pChaos: number, pPatrol: number): void {
    const others = this.stations
    for (const drone of this.drones) {
      if (pChaos > 0 && this.random() < pChaos) {
        const downS = CHAOS_DOWN_S.min + this.random() * (CHAOS_DOWN_S.max - CHAOS_DOWN_S.min)
        drone.dropConnection((downS * 1000) / this.opts.timeScale)
      }
      const m = drone.model
      if (
        pPatrol > 0 &&
        m.mission === undefined &&
        !m.faulted &&
        m.batteryPct >= 60 &&
        this.random() < pPatrol
      ) {
        const choices = others.filter((s) => s.id !== m.dockedAt)
        const to = choices[Math.floor(this.random() * choices.length)]
        if (to !== undefined) drone.patrolTo(to.stop)
      }
    }
  }

  private updateStations(): void {
    const docked = new Map<string, string[]>()
    for (const d of this.drones) {
      const at = d.model.dockedAt
      if (at !== undefined) {
        const list = docked.get(at) ?? []
        if (list.length < MAX_DOCKED_LISTED) list.push(d.id)
        docked.set(at, list)
      }
    }
    for (const s of this.stations) {
      s.tick(
        docked.get(s.id) ?? [],
        this.stations.filter((o) => o !== s),
      )
    }
  }

  /** The wind drifts: a slow random walk in speed (0–MAX_WIND_MPS) and direction. */
  private blowWind(dtS: number): void {
    const k = Math.sqrt(Math.max(0, dtS))
    this.wind.speedMps = Math.min(
      MAX_WIND_MPS,
      Math.max(0, this.wind.speedMps + (this.random() - 0.5) * 0.5 * k),
    )
    this.wind.toDeg = normalizeDeg(this.wind.toDeg + (this.random() - 0.5) * 4 * k)
  }
}

function nearest(stops: Stop[], pos: LatLon): Stop {
  let best = stops[0]!
  for (const s of stops) if (distanceM(pos, s) < distanceM(pos, best)) best = s
  return best
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}
