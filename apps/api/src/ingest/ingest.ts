import { decodePayload, parseTopic, topicKind } from '@skyline/schemas'
import type { Batcher } from './batcher.ts'
import { rejectedItem } from './dead-letter.ts'
import { deviceClockRefusal } from './device-clock.ts'
import type { DeviceClockRule } from './device-clock.ts'
import type { IngestItem } from './items.ts'

export interface IngestOptions {
  /** How far a device's clock may be off; beyond it, a message is a dead letter. */
  clock: DeviceClockRule
  /** The api's clock. Default the system's. */
  now?: () => Date
  /** Told the kind of every message taken (for metrics). */
  counted?: (kind: IngestItem['kind']) => void
}

/**
 * Turns one MQTT message into an ingest item: decoded against the contract, or
 * rejected with the reason (the service never stops for one bad message). Returns a
 * promise for messages that must be acknowledged after their rows are committed.
 */
export class Ingest {
  received = 0
  rejected = 0

  private readonly clock: DeviceClockRule
  private readonly now: () => Date
  private readonly counted: (kind: IngestItem['kind']) => void

  constructor(
    private readonly batcher: Batcher,
    options: IngestOptions,
  ) {
    this.clock = options.clock
    this.now = options.now ?? (() => new Date())
    this.counted = options.counted ?? (() => {})
  }

  handle(topic: string, payload: Buffer, qos: 0 | 1 | 2): Promise<void> | undefined {
    this.received++
    let item = this.decode(topic, payload)
    if (item.kind !== 'rejected') {
      const refusal = deviceClockRefusal(item, this.clock)
      if (refusal !== undefined) item = rejectedItem(topic, payload, refusal, item.receivedAt)
    }
    if (item.kind === 'rejected') this.rejected++
    this.counted(item.kind)
    if (qos === 0) {
      this.batcher.add(item)
      return undefined
    }
    return this.batcher.addAndWait(item)
  }

  private decode(topic: string, payload: Buffer): IngestItem {
    const receivedAt = this.now()
    const reject = (reason: string) => rejectedItem(topic, payload, reason, receivedAt)
    const addr = parseTopic(topic)
    if (addr === null) return reject('unknown_topic: not a topic of the Skyline contract')
    const kind = topicKind(addr)
    switch (kind) {
      case 'drone/telemetry':
      case 'drone/status':
      case 'drone/events': {
        if (addr.kind !== 'drone') return reject('unknown_topic')
        const { fleetId, droneId } = addr
        if (kind === 'drone/telemetry') {
          const r = decodePayload(kind, payload)
          return r.ok
            ? { kind: 'telemetry', fleetId, droneId, msg: r.value, receivedAt }
            : reject(r.reason)
        }
        if (kind === 'drone/status') {
          const r = decodePayload(kind, payload)
          return r.ok
            ? { kind: 'drone-status', fleetId, droneId, msg: r.value, receivedAt }
            : reject(r.reason)
        }
        const r = decodePayload(kind, payload)
        return r.ok
          ? { kind: 'drone-event', fleetId, droneId, msg: r.value, receivedAt }
          : reject(r.reason)
      }
      case 'station/status':
      case 'station/requests': {
        if (addr.kind !== 'station') return reject('unknown_topic')
        const { fleetId, stationId } = addr
        if (kind === 'station/status') {
          const r = decodePayload(kind, payload)
          return r.ok
            ? { kind: 'station-status', fleetId, stationId, msg: r.value, receivedAt }
            : reject(r.reason)
        }
        const r = decodePayload(kind, payload)
        return r.ok
          ? { kind: 'delivery-request', fleetId, stationId, msg: r.value, receivedAt }
          : reject(r.reason)
      }
      case 'drone/commands':
        // The api sends commands; one coming back is not ingested.
        return reject('unexpected_topic: commands are not ingested')
      case 'fleet/alerts':
        // The api publishes alerts (it does not subscribe there); one would not be ingested.
        return reject('unexpected_topic: alerts are not ingested')
      default: {
        const unhandled: never = kind
        return reject(`unknown_topic: ${String(unhandled)}`)
      }
    }
  }
}
