// Many publishers -> one subscriber through a broker, with a bounded number of messages
// in flight, counting what the subscriber receives per second and what never arrives.
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import mqttPacket from 'mqtt-packet'
import type { Packet } from 'mqtt-packet'
import type { ThroughputConfig, ThroughputResult } from './load-types.ts'
import { connectInBatches, connectRaw, subscribeRaw } from './mqtt-raw.ts'
import type { RawConnection } from './mqtt-raw.ts'
import { cpuTicks, machineBusyTicks } from './proc.ts'
import { readSeq, telemetryPayload, writeSeq } from './telemetry.ts'

/** Nothing received for this long with messages in flight: they are written off as lost, ms. */
const STALL_MS = 500
const CONNECT_BATCH = 50

interface Publisher {
  socket: Socket
  /** One PUBLISH packet, patched per message at seqAt (and at midAt, the packet id, for QoS 1). */
  packet: Buffer
  seqAt: number
  midAt: number
  sent: number
  unacked: number
  nextMid: number
  /** The socket's buffer is full (or it closed): wait for 'drain'. */
  blocked: boolean
}

export async function runThroughput(cfg: ThroughputConfig): Promise<ThroughputResult> {
  const sub = await connectRaw(cfg.subscriberPort ?? cfg.port, cfg.subscriber)
  const conns = [sub]
  try {
    await subscribeRaw(sub, cfg.filter, cfg.qos)
    conns.push(...(await connectInBatches(cfg.port, cfg.publishers, CONNECT_BATCH)))
    return await measure(cfg, sub, conns.slice(1))
  } finally {
    for (const c of conns) c.socket.destroy()
  }
}

async function measure(
  cfg: ThroughputConfig,
  sub: RawConnection,
  pubConns: RawConnection[],
): Promise<ThroughputResult> {
  const subSocket = sub.socket
  const { payload, seqAt } = telemetryPayload()
  const pubs: Publisher[] = pubConns.map(({ socket, parser }, i) => {
    const packet = mqttPacket.generate({
      cmd: 'publish',
      topic: `${cfg.topicPrefix}d${i}/telemetry`,
      payload,
      qos: cfg.qos,
      messageId: cfg.qos === 1 ? 1 : undefined,
      retain: false,
      dup: false,
    })
    const payloadAt = packet.length - payload.length
    const pub: Publisher = {
      socket,
      packet,
      seqAt: payloadAt + seqAt,
      midAt: payloadAt - 2, // [MQTT-3.3.2] the packet id ends the variable header
      sent: 0,
      unacked: 0,
      nextMid: 1,
      blocked: false,
    }
    parser.on('packet', (p: Packet) => {
      if (p.cmd !== 'puback') return
      pub.unacked--
      schedulePump()
    })
    socket.on('close', () => {
      pub.blocked = true
      if (sending) publishersLost++
    })
    return pub
  })

  let sent = 0
  let received = 0
  /**
   * Messages known not to be coming, so no longer in flight: the seqs a publisher skipped
   * (brokers keep each publisher's order [MQTT-4.6.0-6], so a gap is a loss), and those
   * written off after a stall. A loss must free its place in the budget, or a broker
   * that drops would be measured at an ever smaller load.
   */
  let settledLost = 0
  let reordered = 0
  let maxDeliveriesPerRead = 0
  let stalls = 0
  let publishersLost = 0
  let sending = false
  let pumpScheduled = false
  let next = 0 // round-robin start, so that no publisher is favoured
  let lastReceiveAt = performance.now()
  /** Per publisher, the seq expected next. */
  const expected = new Array<number>(pubs.length).fill(0)
  const inFlight = () => sent - received - settledLost
  const chunk = Math.max(1, Math.floor(cfg.maxInFlight / pubs.length))

  function send(p: Publisher, n: number): void {
    const len = p.packet.length
    const buf = Buffer.allocUnsafe(len * n)
    for (let j = 0; j < n; j++) {
      p.packet.copy(buf, j * len)
      writeSeq(buf, j * len + p.seqAt, p.sent++)
      if (cfg.qos === 1) {
        buf.writeUInt16BE(p.nextMid, j * len + p.midAt)
        p.nextMid = p.nextMid === 0xffff ? 1 : p.nextMid + 1 // [MQTT-2.3.1-1] ids are non-zero
        p.unacked++
      }
    }
    sent += n
    if (!p.socket.write(buf)) {
      p.blocked = true
      p.socket.once('drain', () => {
        p.blocked = p.socket.destroyed
        schedulePump()
      })
    }
  }

  // Fills the global budget round-robin; runs at most once per event-loop turn, however
  // many acks and deliveries arrived in it.
  function pump(): void {
    pumpScheduled = false
    if (!sending) return
    let budget = cfg.maxInFlight - inFlight()
    let skipped = 0
    while (budget > 0 && skipped < pubs.length) {
      const p = pubs[next]!
      next = (next + 1) % pubs.length
      const room = cfg.qos === 1 ? cfg.perPublisherWindow - p.unacked : chunk
      const n = Math.min(chunk, budget, room)
      if (p.blocked || n <= 0) {
        skipped++
        continue
      }
      send(p, n)
      budget -= n
      skipped = 0
    }
  }

  function schedulePump(): void {
    if (pumpScheduled) return
    pumpScheduled = true
    setImmediate(pump)
  }

  // The subscriber: count, check seq per publisher, and PUBACK (QoS 1) once per chunk read.
  const prefixLength = cfg.topicPrefix.length + 1 // the 'd' of `d<i>`
  let acks: number[] = []
  sub.parser.on('packet', (p: Packet) => {
    if (p.cmd !== 'publish') return
    const i = Number.parseInt(p.topic.slice(prefixLength), 10)
    const seq = readSeq(p.payload as Buffer, seqAt)
    const want = expected[i] ?? 0
    if (seq >= want) {
      settledLost += seq - want
      expected[i] = seq + 1
    } else {
      reordered++
      settledLost-- // counted lost at a gap, or written off after a stall: it came after all
    }
    received++
    if (p.qos === 1 && p.messageId !== undefined) acks.push(p.messageId)
  })
  // Runs after the parser's own 'data' listener, so once the chunk's packets are counted.
  subSocket.on('data', () => {
    lastReceiveAt = performance.now()
    maxDeliveriesPerRead = Math.max(maxDeliveriesPerRead, acks.length)
    if (acks.length > 0) {
      // PUBACK is 4 fixed bytes [MQTT-3.4]: built by hand, as they are on the hot path.
      const buf = Buffer.allocUnsafe(4 * acks.length)
      acks.forEach((mid, k) => {
        buf[4 * k] = 0x40
        buf[4 * k + 1] = 0x02
        buf.writeUInt16BE(mid, 4 * k + 2)
      })
      subSocket.write(buf)
      acks = []
    }
    schedulePump()
  })
  let subscriberError = 'no socket error'
  subSocket.on('error', (err) => (subscriberError = err.message))
  const subscriberGone = new Promise<never>((_, reject) =>
    subSocket.once('close', () =>
      reject(
        new Error(
          `the subscriber's connection closed (${subscriberError}) after ${sent} sent, ${received} received`,
        ),
      ),
    ),
  )
  subscriberGone.catch(() => {}) // observed through the races below
  const wait = (ms: number) => Promise.race([sleep(ms), subscriberGone])

  // Lost messages never arrive: without this the budget would shrink by them for good.
  const watchdog = setInterval(() => {
    if (!sending || inFlight() <= 0 || performance.now() - lastReceiveAt < STALL_MS) return
    stalls++
    pubs.forEach((p, i) => {
      settledLost += p.sent - (expected[i] ?? 0)
      expected[i] = p.sent
    })
    lastReceiveAt = performance.now()
    schedulePump()
  }, 100)

  const snapshot = () => ({
    t: performance.now(),
    received,
    brokerTicks: cpuTicks(cfg.brokerPid),
    machineTicks: machineBusyTicks(),
    cpu: process.cpuUsage(),
  })
  try {
    sending = true
    pump()
    await wait(cfg.warmupMs)
    const start = snapshot()
    await wait(cfg.measureMs)
    const end = snapshot()
    sending = false
    const drainUntil = performance.now() + cfg.drainMs
    const unacked = () => pubs.some((p) => p.unacked > 0 && !p.socket.destroyed)
    while (performance.now() < drainUntil && (sent > received || unacked())) await wait(20)

    const measuredS = (end.t - start.t) / 1000
    const measuredMsgs = end.received - start.received
    const brokerCpuS = (end.brokerTicks - start.brokerTicks) / cfg.clockTicksPerS
    const loadCpuS = (end.cpu.user - start.cpu.user + end.cpu.system - start.cpu.system) / 1e6
    const machineCpuS = (end.machineTicks - start.machineTicks) / cfg.clockTicksPerS
    return {
      msgsPerS: measuredMsgs / measuredS,
      measuredMsgs,
      measuredS,
      sent,
      received,
      lost: sent - received,
      stalls,
      reordered,
      maxDeliveriesPerRead,
      publishersLost,
      brokerCpuUsPerMsg: measuredMsgs > 0 ? (brokerCpuS * 1e6) / measuredMsgs : NaN,
      brokerCpuPct: (brokerCpuS / measuredS) * 100,
      loadCpuPct: (loadCpuS / measuredS) * 100,
      otherCpuPct: (Math.max(0, machineCpuS - brokerCpuS - loadCpuS) / measuredS) * 100,
    }
  } finally {
    sending = false
    clearInterval(watchdog)
  }
}
