import { randomUUID } from 'node:crypto'
import { buildTopic, stationWillPayload } from '@skyline/schemas'
import type { DeliveryRequest, StationStatus } from '@skyline/schemas'
import { Connection } from './connection.ts'
import type { SimContext } from './context.ts'
import type { Stop } from './drone-model.ts'
import { exponential } from './random.ts'

/** One landing station: its own connection and token, retained status with a will, delivery requests. */
export class StationAgent {
  connection: Connection | undefined
  private docked: string[] = []
  private nextRequestAtMs: number
  private readonly statusTopic: string
  private readonly requestsTopic: string

  constructor(
    private readonly ctx: SimContext,
    readonly stop: Stop,
    readonly name: string,
    readonly capacity: number,
    /** Delivery requests per simulated minute; 0 for none. */
    private readonly demandPerMin: number,
    private readonly random: () => number,
  ) {
    const topic = (channel: 'status' | 'requests') =>
      buildTopic({ kind: 'station', fleetId: ctx.fleetId, stationId: stop.stationId, channel })
    this.statusTopic = topic('status')
    this.requestsTopic = topic('requests')
    this.nextRequestAtMs = this.scheduleAfter(ctx.now())
  }

  get id(): string {
    return this.stop.stationId
  }

  async connect(url: string, token: string, keepaliveS: number): Promise<void> {
    const will = stationWillPayload(this.base(), this.ctx.now())
    this.connection = await Connection.open(
      url,
      {
        clientId: `${this.ctx.fleetId}.${this.id}`,
        username: this.id,
        password: token,
        keepalive: keepaliveS,
        will: {
          topic: this.statusTopic,
          payload: Buffer.from(JSON.stringify(will)),
          qos: 1,
          retain: true,
        },
      },
      (conn, first) => {
        this.connection = conn
        if (!first) this.ctx.stats.reconnects++
        this.publishStatus(true)
      },
    )
  }

  /** Publishes its status when the docked drones changed, and the delivery requests that are due. */
  tick(docked: string[], others: readonly StationAgent[]): void {
    if (docked.join() !== this.docked.join()) {
      this.docked = docked
      this.publishStatus(true)
    }
    const now = this.ctx.now()
    while (this.demandPerMin > 0 && now >= this.nextRequestAtMs && others.length > 0) {
      const to = others[Math.floor(this.random() * others.length)]!
      const request: DeliveryRequest = {
        v: 1,
        ts: Math.round(this.nextRequestAtMs),
        id: randomUUID(),
        dropoffStationId: to.id,
        payloadKg: Math.round((0.2 + this.random() * 4.8) * 10) / 10,
      }
      this.connection?.client.publish(this.requestsTopic, JSON.stringify(request), { qos: 1 })
      this.ctx.stats.requests++
      this.ctx.stats.published++
      this.nextRequestAtMs = this.scheduleAfter(this.nextRequestAtMs)
    }
  }

  /** Announces it is closing, then disconnects cleanly. */
  async close(): Promise<void> {
    await this.connection?.closeWithStatus(this.statusTopic, {
      ...this.status(false),
      reason: 'shutdown',
    })
  }

  private publishStatus(online: boolean): void {
    if (this.connection?.connected !== true) return
    this.connection.client.publish(this.statusTopic, JSON.stringify(this.status(online)), {
      qos: 1,
      retain: true,
    })
    this.ctx.stats.published++
  }

  private status(online: boolean): StationStatus {
    return { v: 1, ts: Math.round(this.ctx.now()), online, ...this.base() }
  }

  private base() {
    return {
      name: this.name,
      lat: this.stop.lat,
      lon: this.stop.lon,
      capacity: this.capacity,
      docked: this.docked,
    }
  }

  private scheduleAfter(fromMs: number): number {
    return this.demandPerMin > 0
      ? fromMs + exponential(60_000 / this.demandPerMin, this.random)
      : Infinity
  }
}
