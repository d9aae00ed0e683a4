// Many drones publishing telemetry at an offered rate, open loop: the publishers do not
// slow down when the path behind the broker does, as drones would not. Each message is
// the contract's Telemetry, `ts` the wall clock when it is written to the socket (so
// the far end can measure latency from it) and `seq` +1 per drone (so it can find gaps).
import type { Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import mqttPacket from 'mqtt-packet'
import type { Packet } from 'mqtt-packet'
import type { Credentials } from './load-types.ts'
import { connectInBatches } from './mqtt-raw.ts'

export interface FleetStep {
  /** Messages per second, all drones together. */
  ratePerS: number
  seconds: number
  qos: 0 | 1
}

export interface FleetStepResult {
  /** Wall clock of the first and last message's `ts`, epoch ms. */
  firstTs: number
  lastTs: number
  sent: number
  /** Messages per second actually written. */
  sentPerS: number
  /** Messages not sent because their drone still waited for PUBACKs of a full window. */
  heldBack: number
  /** QoS 1 messages the broker had not acknowledged 5 s after the step. */
  unacked: number
}

interface Drone {
  socket: Socket
  topic: string
  seq: number
  nextMid: number
  unacked: number
}

/** QoS 1 messages without PUBACK per drone, at most (the broker acks on receipt). */
const WINDOW = 50
const CONNECT_BATCH = 50
const TICK_MS = 5

export class PublishingFleet {
  private constructor(private readonly drones: Drone[]) {}

  static async connect(port: number, fleet: string, who: Credentials[]): Promise<PublishingFleet> {
    const conns = await connectInBatches(port, who, CONNECT_BATCH)
    const drones = conns.map(({ socket, parser }, i): Drone => {
      const d = {
        socket,
        topic: `fleet/${fleet}/drones/${who[i]!.username}/telemetry`,
        seq: 0,
        nextMid: 1,
        unacked: 0,
      }
      parser.on('packet', (p: Packet) => {
        if (p.cmd === 'puback') d.unacked--
      })
      return d
    })
    return new PublishingFleet(drones)
  }

  /**
   * Publishes `ratePerS` for `seconds`, round-robin over the drones: every TICK_MS the
   * messages due by then go out, so the rate holds whatever the event loop's hiccups.
   */
  async run(step: FleetStep): Promise<FleetStepResult> {
    const started = performance.now()
    const endAt = started + step.seconds * 1_000
    let sent = 0
    let heldBack = 0
    let next = 0
    let firstTs = 0
    let lastTs = 0
    while (performance.now() < endAt) {
      const due = Math.floor(((performance.now() - started) / 1_000) * step.ratePerS)
      for (let n = due - sent - heldBack; n > 0; n--) {
        const d = this.drones[next]!
        next = (next + 1) % this.drones.length
        if (step.qos === 1 && d.unacked >= WINDOW) {
          heldBack++
          continue
        }
        const ts = Date.now()
        firstTs ||= ts
        lastTs = ts
        d.socket.write(this.packet(d, ts, step.qos))
        sent++
      }
      await sleep(TICK_MS)
    }
    const seconds = (performance.now() - started) / 1_000
    const ackDeadline = performance.now() + 5_000
    const unacked = () => this.drones.reduce((sum, d) => sum + d.unacked, 0)
    while (unacked() > 0 && performance.now() < ackDeadline) await sleep(20)
    return { firstTs, lastTs, sent, sentPerS: sent / seconds, heldBack, unacked: unacked() }
  }

  close(): void {
    for (const d of this.drones) d.socket.destroy()
  }

  private packet(d: Drone, ts: number, qos: 0 | 1): Buffer {
    // The simulator's rounding (apps/drone-sim/src/drone-agent.ts): a drone on a circle.
    const a = (d.seq % 360) * (Math.PI / 180)
    const payload =
      `{"v":1,"ts":${ts},"seq":${d.seq++},"lat":${(47.37 + 0.01 * Math.sin(a)).toFixed(6)},` +
      `"lon":${(8.54 + 0.01 * Math.cos(a)).toFixed(6)},"altM":120.5,"speedMps":12.5,` +
      `"headingDeg":${d.seq % 360},"batteryPct":87.5,"state":"en_route"}`
    const messageId = qos === 1 ? d.nextMid : undefined
    if (qos === 1) {
      d.nextMid = d.nextMid === 0xffff ? 1 : d.nextMid + 1 // [MQTT-2.3.1-1] ids are non-zero
      d.unacked++
    }
    return mqttPacket.generate({
      cmd: 'publish',
      topic: d.topic,
      payload,
      qos,
      messageId,
      retain: false,
      dup: false,
    })
  }
}
