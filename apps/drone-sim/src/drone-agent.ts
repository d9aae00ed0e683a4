import { randomUUID } from 'node:crypto'
import { buildTopic, decodePayload, droneWillPayload } from '@skyline/schemas'
import type { DroneCommand, DroneEvent, DroneState, DroneStatus, Telemetry } from '@skyline/schemas'
import { Connection } from './connection.ts'
import type { SimContext } from './context.ts'
import { DroneModel } from './drone-model.ts'
import type { ModelEvent, Stop } from './drone-model.ts'

const MODEL = 'SkyCarrier S2'
const FIRMWARE = 'sim-1.0'

/** One simulated drone: its own MQTT connection, client id and token, driven by a DroneModel. */
export class DroneAgent {
  readonly model: DroneModel
  connection: Connection | undefined
  private seq = 0
  private publishedState: DroneState | undefined
  private readonly topics: { telemetry: string; status: string; events: string; commands: string }

  constructor(
    private readonly ctx: SimContext,
    readonly id: string,
    home: Stop,
    cruiseMps: number,
    batteryPct: number,
  ) {
    this.model = new DroneModel(id, home, cruiseMps, batteryPct, ctx.now())
    const topic = (channel: 'telemetry' | 'status' | 'events' | 'commands') =>
      buildTopic({ kind: 'drone', fleetId: ctx.fleetId, droneId: id, channel })
    this.topics = {
      telemetry: topic('telemetry'),
      status: topic('status'),
      events: topic('events'),
      commands: topic('commands'),
    }
  }

  get connected(): boolean {
    return this.connection?.connected === true
  }

  /** Connects (persistent session, so commands sent while away still arrive) and announces itself. */
  async connect(url: string, token: string, keepaliveS: number): Promise<void> {
    this.connection = await Connection.open(
      url,
      {
        clientId: `${this.ctx.fleetId}.${this.id}`,
        username: this.id,
        password: token,
        clean: false,
        keepalive: keepaliveS,
        will: this.will(),
      },
      (conn, first) => {
        this.connection = conn
        if (!first) this.ctx.stats.reconnects++
        this.publishStatus()
      },
      () => this.will(),
    )
    const { client } = this.connection
    client.on('message', (_topic, payload) => this.onCommand(payload))
    // Subscribed once: the persistent session keeps it across reconnects.
    await client.subscribeAsync(this.topics.commands, { qos: 2 })
  }

  private will() {
    const payload = Buffer.from(JSON.stringify(droneWillPayload(Math.round(this.ctx.now()))))
    return { topic: this.topics.status, payload, qos: 1 as const, retain: true }
  }

  /** Moves the drone to now, reports what happened, and sends one telemetry message. */
  tick(): void {
    this.report(this.model.advance(this.ctx.now(), this.ctx.wind))
    if (!this.connected) return
    const m = this.model
    const telemetry: Telemetry = {
      v: 1,
      ts: Math.round(this.ctx.now()),
      seq: this.seq++,
      lat: round(m.pos.lat, 6),
      lon: round(m.pos.lon, 6),
      altM: round(m.altM, 1),
      speedMps: round(m.speedMps, 1),
      headingDeg: round(m.headingDeg, 1) % 360,
      batteryPct: round(m.batteryPct, 1),
      state: m.state,
      ...(m.deliveryId !== undefined && { deliveryId: m.deliveryId }),
    }
    this.publish(this.topics.telemetry, telemetry, this.ctx.telemetryQos, false, () => {
      if (this.ctx.telemetryQos === 1) this.ctx.stats.telemetryAcked++
    })
    this.ctx.stats.telemetry++
  }

  /** With no dispatcher: fly to `stop` on its own. */
  patrolTo(stop: Stop): void {
    this.model.patrolTo(stop)
  }

  /** Chaos: the socket dies without a DISCONNECT (the broker fires the will), back after `downMs`. */
  dropConnection(downMs: number): void {
    if (this.connection?.dropFor(downMs)) this.ctx.stats.chaosDrops++
  }

  /** Says it is going offline on purpose, then disconnects cleanly: no will fires. */
  async stop(): Promise<void> {
    const status: DroneStatus = {
      v: 1,
      ts: Math.round(this.ctx.now()),
      online: false,
      state: 'offline',
      reason: 'shutdown',
    }
    await this.connection?.closeWithStatus(this.topics.status, status)
  }

  private onCommand(payload: Buffer): void {
    const decoded = decodePayload('drone/commands', payload)
    if (!decoded.ok) {
      this.ctx.stats.commandsRejected++
      return
    }
    const now = this.ctx.now()
    this.report(this.model.advance(now, this.ctx.wind))
    this.report(this.apply(decoded.value, now))
  }

  private apply(cmd: DroneCommand, now: number): ModelEvent[] {
    const base = (stationId?: string) =>
      (stationId !== undefined ? this.ctx.stationById(stationId) : undefined) ??
      this.ctx.nearestStation(this.model.pos)
    switch (cmd.type) {
      case 'delivery.assign': {
        const stop = (s: typeof cmd.pickup): Stop => ({
          stationId: s.stationId,
          lat: s.lat,
          lon: s.lon,
        })
        return this.model.assign(cmd.deliveryId, stop(cmd.pickup), stop(cmd.dropoff), now)
      }
      case 'return_to_base':
        return this.model.returnTo(base(cmd.stationId), now)
      case 'cancel':
        return this.model.cancel(cmd.deliveryId, base(), now)
    }
  }

  private report(events: ModelEvent[]): void {
    for (const e of events) {
      const event: DroneEvent = {
        v: 1,
        ts: Math.round(e.atMs),
        id: randomUUID(),
        type: e.type,
        ...(e.deliveryId !== undefined && { deliveryId: e.deliveryId }),
        ...(e.stationId !== undefined && { stationId: e.stationId }),
        ...(e.detail !== undefined && { detail: e.detail }),
      }
      // QoS 1 is queued by the client while offline: no event is lost to a drop.
      this.publish(this.topics.events, event, 1, false, () => this.ctx.stats.eventsAcked++)
      this.ctx.stats.events++
      if (e.type === 'delivery.completed') this.ctx.stats.deliveriesCompleted++
      if (e.type === 'delivery.failed') this.ctx.stats.deliveriesFailed++
    }
    if (this.connected && this.model.state !== this.publishedState) this.publishStatus()
  }

  private publishStatus(): void {
    const m = this.model
    const status: DroneStatus = {
      v: 1,
      ts: Math.round(this.ctx.now()),
      online: true,
      state: m.state,
      ...(m.dockedAt !== undefined && { stationId: m.dockedAt }),
      model: MODEL,
      firmware: FIRMWARE,
    }
    this.publishedState = m.state
    this.publish(this.topics.status, status, 1, true)
  }

  /** `acked`: called once the broker acknowledged it (QoS 1: its PUBACK; QoS 0: once written). */
  private publish(
    topic: string,
    payload: object,
    qos: 0 | 1,
    retain: boolean,
    acked?: () => void,
  ): void {
    this.connection?.client.publish(topic, JSON.stringify(payload), { qos, retain }, (err) => {
      if (!err) acked?.()
    })
    this.ctx.stats.published++
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
