// Issue 14, item 5: the live stream under clients that never read. The whole stack
// (bench/stack.ts: broker, api on a fresh Postgres database), a fleet of drones at 1 Hz,
// one healthy WebSocket client on /api/live, then N clients that open the stream and
// stop reading (their sockets paused: the kernel's receive buffer fills, then the api's
// send queue). Prints the api's memory and the healthy client's frame gaps.
//
//   npm run bench:live-flood [-- --drones 2000 --non-readers 500 --seconds 30 --api-env K=V]
//
// Everything shares the machine's cores: a gap of the healthy client is the api's, the
// broker's, Postgres's and this process's together.
import { fileURLToPath } from 'node:url'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { get } from 'node:http'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs, promisify } from 'node:util'
import WebSocket from 'ws'
import { spawnFleet } from './fleet-process.ts'
import { rssBytes } from './proc.ts'
import { liveAuth, startStack } from './stack.ts'

const run = promisify(execFile)
const FLEET = 'flood'
/** The healthy client's frames before the non-readers come, s: the baseline. */
const BEFORE_S = 5
/** Rest after the non-readers are closed from this side, before "after", s. */
const AFTER_S = 5
/** Non-readers opened at once, at most: a burst, as many tabs reconnecting would be. */
const CONNECT_BATCH = 100

interface Sample {
  at: number
  rssMiB: number
}

export interface LiveFloodResult {
  drones: number
  nonReaders: number
  opened: number
  refused: number
  /** From the first non-reader's connection to the last one's open (or refusal), s. */
  openedAfterS: number
  /** The flood went on this long after the last non-reader opened, s. */
  seconds: number
  rssMiB: { before: number; peak: number; end: number; after: number }
  healthy: {
    frames: number
    maxGapMs: number
    p99GapMs: number
    maxGapBeforeMs: number
    /** The longest time between two of its frames by their `at`: the api's part of the gaps. */
    maxMadeGapMs: number
  }
  /** The api's sockets on its port (ss): established, and the bytes in their kernel send queues. */
  sockets: { peakOpen: number; endOpen: number; peakSendQMiB: number }
  /** The whole machine's TCP buffers (/proc/net/sockstat, both ends of every socket). */
  kernelTcpMiB: { before: number; peak: number }
  /** The api's V8 heap in use and its memory outside the heap (Buffers), peaks from its /metrics. */
  heapPeakMiB: { used: number; external: number }
  heapBeforeMiB: { used: number; external: number }
  /** From the first non-reader's connection to the api holding none of them, s (undefined: not while they were open). */
  allDroppedAfterS: number | undefined
}

const MiB = 2 ** 20

export interface LiveFloodOptions {
  drones: number
  nonReaders: number
  seconds: number
  /** Extra environment for the api. */
  apiEnv?: Record<string, string>
  /** Another checkout to run the apps of (`npm run chaos -- --root DIR`). */
  root?: string
  signal: AbortSignal
  log: (line: string) => void
}

/** The whole run: a stack on Postgres, the fleet, the flood; the result. */
export async function liveFlood(o: LiveFloodOptions): Promise<LiveFloodResult> {
  // Room for every client of this run: the caps are not what is measured here.
  const room = String(o.nonReaders + 10)
  const stack = await startStack({
    database: 'postgres',
    signal: o.signal,
    log: o.log,
    root: o.root,
    apiEnv: { LIVE_MAX_CLIENTS: room, LIVE_MAX_CLIENTS_PER_ADDRESS: room, ...o.apiEnv },
  })
  try {
    const fleet = await spawnFleet(stack.broker.ports.mqtt, FLEET, o.drones, o.signal)
    try {
      o.log(`live-flood: ${o.drones} drones connected in ${fleet.connectS.toFixed(1)} s`)
      await fleet.run({ ratePerS: o.drones, seconds: 2, qos: 0 }) // every drone in the table
      return await flood(stack.apiUrl, stack.api.pid!, fleet, o)
    } finally {
      await fleet.stop()
    }
  } finally {
    await stack.stop()
  }
}

async function main(signal: AbortSignal): Promise<void> {
  const { values } = parseArgs({
    options: {
      drones: { type: 'string', default: '2000' },
      'non-readers': { type: 'string', default: '500' },
      seconds: { type: 'string', default: '30' },
      /** KEY=VALUE for the api, e.g. LIVE_SEND_BUDGET_BYTES=1048576 (repeatable). */
      'api-env': { type: 'string', multiple: true, default: [] },
    },
  })
  const result = await liveFlood({
    drones: Number(values.drones),
    nonReaders: Number(values['non-readers']),
    seconds: Number(values.seconds),
    apiEnv: Object.fromEntries(
      values['api-env'].map((kv): [string, string] => {
        const [k = '', v = ''] = kv.split(/=(.*)/s, 2)
        return [k, v]
      }),
    ),
    signal,
    log: (line) => console.error(line),
  })
  console.log(liveFloodTable(result))
  const dir = new URL('./results/', import.meta.url)
  mkdirSync(dir, { recursive: true })
  const file = new URL(`live-flood-${new Date().toISOString().replace(/[-:.]/g, '')}.json`, dir)
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n')
  console.error(`raw run: ${file.pathname}`)
}

async function flood(
  apiUrl: string,
  apiPid: number,
  fleet: Awaited<ReturnType<typeof spawnFleet>>,
  o: { drones: number; nonReaders: number; seconds: number; log: (l: string) => void },
): Promise<LiveFloodResult> {
  const wsUrl = `${apiUrl.replace(/^http/, 'ws')}/api/live`
  const port = new URL(apiUrl).port

  // The healthy client: reads everything, notes when each `changes` frame arrives.
  const healthy = new WebSocket(wsUrl)
  const arrivals: number[] = []
  /** Each frame's `at`: when the api made it, epoch ms (to tell its delays from this process's). */
  const madeAt: number[] = []
  let snapshot = false
  healthy.on('message', (data: Buffer) => {
    // The type is at the start of every frame: no need to parse 100s of KiB here.
    const head = data.subarray(0, 64).toString()
    if (head.includes('"snapshot"')) snapshot = true
    else if (head.includes('"changes"')) {
      arrivals.push(performance.now())
      madeAt.push(Date.parse(/"at":"([^"]+)"/.exec(head)?.[1] ?? ''))
    }
  })
  await once(healthy, 'open')
  const auth = await liveAuth()
  healthy.send(auth)

  const samples: Sample[] = []
  const sockets: { at: number; open: number; sendQ: number }[] = []
  const kernel: number[] = []
  const heap: { usedMiB: number; externalMiB: number }[] = []
  let sampling = true
  const sampler = (async () => {
    let n = 0
    while (sampling) {
      samples.push({ at: performance.now(), rssMiB: rssBytes(apiPid) / MiB })
      if (n++ % 4 === 0) {
        const s = await apiSockets(port)
        sockets.push({ at: performance.now(), ...s })
        kernel.push(kernelTcpMiB())
        heap.push(await apiHeap(apiUrl))
      }
      await sleep(250)
    }
  })()

  // Publishing in steps of a few seconds until told to stop: the flood lasts as long as
  // the non-readers take to connect, plus `seconds`.
  let publishingOn = true
  let published = 0
  const publishing = (async () => {
    while (publishingOn)
      published += (await fleet.run({ ratePerS: o.drones, seconds: 5, qos: 0 })).sent
  })()
  while (!snapshot) await sleep(50)
  await sleep(BEFORE_S * 1_000)
  const before = samples.at(-1)!.rssMiB
  const heapBefore = heap.at(-1)!
  const kernelBefore = kernel.at(-1) ?? NaN
  const floodFrom = performance.now()

  const clients: WebSocket[] = []
  let opened = 0
  let refused = 0
  for (let i = 0; i < o.nonReaders; i += CONNECT_BATCH) {
    const batch = Array.from({ length: Math.min(CONNECT_BATCH, o.nonReaders - i) }, () => {
      const ws = new WebSocket(wsUrl)
      clients.push(ws)
      return new Promise<void>((resolve) => {
        ws.once('open', () => {
          ws.send(auth) // signed in, so that the api sends it its snapshot and frames
          // From here on it never reads: what the api sends piles up in the kernel, then in the api.
          ;(ws as unknown as { _socket: Socket })._socket.pause()
          opened++
          resolve()
        })
        ws.once('error', () => {
          refused++
          resolve()
        })
      })
    })
    await Promise.all(batch)
  }
  const openedAfterS = (performance.now() - floodFrom) / 1_000
  o.log(
    `live-flood: ${opened} non-readers open, ${refused} refused, in ${openedAfterS.toFixed(1)} s`,
  )
  await sleep(o.seconds * 1_000)
  publishingOn = false
  await publishing
  o.log(`live-flood: ${published} positions published`)
  const end = samples.at(-1)!.rssMiB
  const endOpen = sockets.at(-1)?.open ?? NaN
  const floodTo = performance.now()
  for (const ws of clients) ws.terminate()
  await sleep(AFTER_S * 1_000)
  sampling = false
  await sampler
  const after = samples.at(-1)!.rssMiB
  healthy.close()

  const gaps = (from: number, to: number) => {
    const times = arrivals.filter((t) => t >= from && t <= to)
    return times.slice(1).map((t, i) => t - times[i]!)
  }
  const floodGaps = gaps(floodFrom, floodTo).sort((a, b) => a - b)
  const inWindow = madeAt.filter((_, i) => arrivals[i]! >= floodFrom && arrivals[i]! <= floodTo)
  const madeGaps = inWindow.slice(1).map((t, i) => t - inWindow[i]!)
  const baseline = gaps(0, floodFrom)
  // The api's established sockets on its port: the healthy client plus the non-readers it still holds.
  const inFlood = sockets.filter((s) => s.at >= floodFrom && s.at <= floodTo)
  const gone = inFlood.find((s) => s.at >= floodFrom + openedAfterS * 1_000 && s.open <= 1)
  return {
    drones: o.drones,
    nonReaders: o.nonReaders,
    opened,
    refused,
    openedAfterS,
    seconds: o.seconds,
    rssMiB: {
      before,
      peak: Math.max(...samples.map((s) => s.rssMiB)),
      end,
      after,
    },
    healthy: {
      frames: floodGaps.length + 1,
      maxGapMs: floodGaps.at(-1) ?? NaN,
      p99GapMs: floodGaps[Math.floor(floodGaps.length * 0.99)] ?? NaN,
      maxGapBeforeMs: Math.max(...baseline),
      maxMadeGapMs: Math.max(...madeGaps),
    },
    sockets: {
      peakOpen: Math.max(...inFlood.map((s) => s.open)),
      endOpen,
      peakSendQMiB: Math.max(...inFlood.map((s) => s.sendQ)) / MiB,
    },
    kernelTcpMiB: { before: kernelBefore, peak: Math.max(...kernel) },
    heapBeforeMiB: { used: heapBefore.usedMiB, external: heapBefore.externalMiB },
    heapPeakMiB: {
      used: Math.max(...heap.map((h) => h.usedMiB)),
      external: Math.max(...heap.map((h) => h.externalMiB)),
    },
    allDroppedAfterS: gone === undefined ? undefined : (gone.at - floodFrom) / 1_000,
  }
}

/** The api's established sockets on `port` and their kernel send queues, bytes (ss). */
async function apiSockets(port: string): Promise<{ open: number; sendQ: number }> {
  const { stdout } = await run('ss', ['-Htn', 'state', 'established', `( sport = :${port} )`])
  const lines = stdout.split('\n').filter((l) => l.trim() !== '')
  // Columns without the state: Recv-Q Send-Q Local Peer.
  const sendQ = lines.reduce((sum, l) => sum + Number(l.trim().split(/\s+/)[1] ?? 0), 0)
  return { open: lines.length, sendQ }
}

/** The api's V8 heap in use and external memory, MiB, from its /metrics (prom-client's default metrics). */
async function apiHeap(apiUrl: string): Promise<{ usedMiB: number; externalMiB: number }> {
  // A connection of its own each time, closed after: not counted among the api's sockets.
  const text = await new Promise<string>((resolve, reject) =>
    get(`${apiUrl}/metrics`, { agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve(body))
    }).on('error', reject),
  )
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1]) / MiB
  return {
    usedMiB: read('nodejs_heap_size_used_bytes'),
    externalMiB: read('nodejs_external_memory_bytes'),
  }
}

/** Memory of every TCP socket on the machine, MiB (/proc/net/sockstat counts pages). */
function kernelTcpMiB(): number {
  const pages = /TCP: .* mem (\d+)/.exec(readFileSync('/proc/net/sockstat', 'utf8'))?.[1]
  return (Number(pages) * 4096) / MiB
}

export function liveFloodTable(r: LiveFloodResult): string {
  const f = (x: number | undefined, d = 0) =>
    x === undefined || Number.isNaN(x)
      ? 'n/a'
      : x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
  return [
    `Live stream flood: ${f(r.drones)} drones at 1 Hz, 1 healthy client and ${f(r.nonReaders)} clients that never read, opened at once, then ${r.seconds} s more (api on Postgres)`,
    '| measure | value |',
    '| --- | --- |',
    `| non-readers opened / refused, all in | ${f(r.opened)} / ${f(r.refused)}, ${f(r.openedAfterS, 1)} s |`,
    `| api RSS before / peak / end of the flood / ${AFTER_S} s after closing them | ${f(r.rssMiB.before)} / ${f(r.rssMiB.peak)} / ${f(r.rssMiB.end)} / ${f(r.rssMiB.after)} MiB |`,
    `| healthy client: frames, max / p99 gap between frames | ${f(r.healthy.frames)}, ${f(r.healthy.maxGapMs)} / ${f(r.healthy.p99GapMs)} ms (before the flood: max ${f(r.healthy.maxGapBeforeMs)} ms) |`,
    `| healthy client: max gap between its frames' times of making (\`at\`, the api's part) | ${f(r.healthy.maxMadeGapMs)} ms |`,
    `| api's V8 heap in use / memory outside it (Buffers), before and peak | ${f(r.heapBeforeMiB.used)} / ${f(r.heapBeforeMiB.external)} MiB, ${f(r.heapPeakMiB.used)} / ${f(r.heapPeakMiB.external)} MiB |`,
    `| api's open sockets, peak / end of the flood | ${f(r.sockets.peakOpen)} / ${f(r.sockets.endOpen)} |`,
    `| api's kernel send queues, peak | ${f(r.sockets.peakSendQMiB)} MiB |`,
    `| machine's TCP buffers, before / peak | ${f(r.kernelTcpMiB.before)} / ${f(r.kernelTcpMiB.peak)} MiB |`,
    `| every non-reader dropped by the api after | ${r.allDroppedAfterS === undefined ? 'not within the run' : `${f(r.allDroppedAfterS, 1)} s`} |`,
  ].join('\n')
}

// Run as `npm run bench:live-flood`; imported by `npm run chaos`, it only lends liveFlood.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const controller = new AbortController()
  process.once('SIGINT', () => controller.abort(new Error('interrupted')))
  main(controller.signal).catch((err: unknown) => {
    console.error('live-flood failed:', err instanceof Error ? err.message : err)
    process.exit(1)
  })
}
