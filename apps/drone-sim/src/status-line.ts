import { DEMAND_UTILISATION } from './capacity.ts'
import type { Fleet } from './fleet.ts'

/** The live one-line status on a terminal: rewritten in place once a second. */
export function startStatusLine(fleet: Fleet, out: NodeJS.WriteStream): () => void {
  let lastPublished = fleet.stats.published
  let lastAt = performance.now()
  const timer = setInterval(() => {
    const now = performance.now()
    const rate = ((fleet.stats.published - lastPublished) * 1000) / (now - lastAt)
    lastPublished = fleet.stats.published
    lastAt = now
    out.write(`\r\x1b[2K${statusText(fleet, rate)}`)
  }, 1000)
  return () => {
    clearInterval(timer)
    out.write('\r\x1b[2K')
  }
}

export function statusText(fleet: Fleet, messagesPerS: number): string {
  const s = fleet.stats
  return (
    `drones ${fleet.connectedDrones}/${fleet.drones.length} connected · ${messagesPerS.toFixed(0)} msg/s · ` +
    `${s.reconnects} reconnects · deliveries ${s.deliveriesCompleted} done, ${s.deliveriesFailed} failed · ${s.requests} requests`
  )
}

export function summaryText(fleet: Fleet, seconds: number): string {
  const s = fleet.stats
  return [
    `ran ${seconds.toFixed(0)} s: ${fleet.drones.length} drones, ${fleet.stations.length} stations`,
    `published ${s.published} messages (${s.telemetry} telemetry, ${s.events} events, ${s.requests} delivery requests), ${(s.published / Math.max(1, seconds)).toFixed(0)} msg/s`,
    `acknowledged by the broker (QoS 1): ${s.telemetryAcked} telemetry, ${s.eventsAcked} events`,
    `deliveries: ${s.deliveriesCompleted} completed, ${s.deliveriesFailed} failed; reconnects: ${s.reconnects} (${s.chaosDrops} chaos drops); commands rejected: ${s.commandsRejected}`,
  ].join('\n')
}

/** The demand the stations make, against what the fleet can fly (capacity.ts). */
export function demandText(fleet: Fleet, sized: boolean): string {
  const perHour = fleet.demandPerMin * 60 * fleet.stations.length
  const capacity = fleet.capacity.perHour
  const demand =
    `demand: ${fleet.demandPerMin.toPrecision(2)} requests per station per simulated minute ` +
    `(${perHour.toFixed(0)} per simulated hour)`
  const can = `${capacity.toFixed(0)} per hour`
  if (sized)
    return `${demand}: ${DEMAND_UTILISATION * 100}% of the ${can} the fleet can fly (--demand sets it)`
  if (perHour > capacity)
    return `${demand}: more than the ${can} the fleet can fly, so a backlog grows`
  return `${demand}; the fleet can fly about ${can}`
}
