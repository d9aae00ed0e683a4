// A packet capture on the loopback interface with the system's tshark (Wireshark), for
// counting every byte a transport puts on the wire: IP and TCP headers, the handshake
// and teardown segments, TLS records. Only TCP on the given ports is kept (a capture
// filter, so the kernel drops the rest before tshark sees it).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { connect, createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { createInterface } from 'node:readline'
import { setTimeout as delay } from 'node:timers/promises'

const TSHARK = 'tshark'
/**
 * Linux captures `lo` as Ethernet: each frame carries a 14-byte fake Ethernet header
 * (zero addresses) that no wire sees. Bytes here are IP bytes: the frame less that.
 */
export const LOOPBACK_LINK_HEADER_BYTES = 14
/** How long tshark may take to start capturing, ms (it loads every dissector first). */
const START_TIMEOUT_MS = 20_000
/** How long the last connections' teardown may take to show up, ms. */
const SETTLE_TIMEOUT_MS = 10_000

/** One TCP segment as captured. */
export interface Segment {
  /** tshark's connection index (a new SYN on a reused port pair is a new stream). */
  stream: number
  srcPort: number
  dstPort: number
  /** The frame as captured, link header included. */
  frameBytes: number
  /** IP header + TCP header + payload: what the network carries. */
  ipBytes: number
  /** TCP payload (application or TLS bytes). */
  payloadBytes: number
  syn: boolean
  ack: boolean
  fin: boolean
  rst: boolean
}

/** The fields read from tshark, in this order; `parseSegments` reads the same. */
const FIELDS = [
  'tcp.stream',
  'tcp.srcport',
  'tcp.dstport',
  'frame.len',
  'ip.len',
  'tcp.len',
  'tcp.flags.syn',
  'tcp.flags.ack',
  'tcp.flags.fin',
  'tcp.flags.reset',
]
const fieldArgs = FIELDS.flatMap((f) => ['-e', f])

/** Parses tshark's `-T fields` output (tab-separated, FIELDS' order) into segments. */
export function parseSegments(text: string): Segment[] {
  const flag = (s: string | undefined) => s === '1' || s === 'True'
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [stream, src, dst, frame, ip, len, syn, ack, fin, rst] = line.split('\t')
      const n = (s: string | undefined, field: string) => {
        const x = Number(s)
        if (s === undefined || s === '' || !Number.isFinite(x))
          throw new Error(`tshark: no ${field} in "${line}"`)
        return x
      }
      return {
        stream: n(stream, 'tcp.stream'),
        srcPort: n(src, 'tcp.srcport'),
        dstPort: n(dst, 'tcp.dstport'),
        frameBytes: n(frame, 'frame.len'),
        ipBytes: n(ip, 'ip.len'),
        payloadBytes: n(len, 'tcp.len'),
        syn: flag(syn),
        ack: flag(ack),
        fin: flag(fin),
        rst: flag(rst),
      }
    })
}

/** One TCP connection: its segments in capture order and which end is the server. */
export interface TcpConnection {
  stream: number
  clientPort: number
  serverPort: number
  segments: Segment[]
}

/** Groups segments by connection; the client is the end that sent the SYN. */
export function connections(segments: Segment[]): TcpConnection[] {
  const byStream = new Map<number, Segment[]>()
  for (const s of segments) {
    const list = byStream.get(s.stream)
    if (list === undefined) byStream.set(s.stream, [s])
    else list.push(s)
  }
  return [...byStream.entries()]
    .sort(([a], [b]) => a - b)
    .map(([stream, list]) => {
      // A capture that began mid-connection has no SYN: the lower port is taken for the
      // server's, which holds for ephemeral client ports.
      const first = list.find((s) => s.syn && !s.ack) ?? list[0]!
      const fromClient = first.syn ? !first.ack : first.srcPort > first.dstPort
      return {
        stream,
        clientPort: fromClient ? first.srcPort : first.dstPort,
        serverPort: fromClient ? first.dstPort : first.srcPort,
        segments: list,
      }
    })
}

/** A connection is over once it was reset, or both ends sent FIN and something followed. */
export function isClosed(c: TcpConnection): boolean {
  if (c.segments.some((s) => s.rst)) return true
  const fins = c.segments.flatMap((s, i) => (s.fin ? [i] : []))
  const finFrom = new Set(fins.map((i) => c.segments[i]!.srcPort))
  return finFrom.size === 2 && fins.at(-1)! < c.segments.length - 1
}

export interface Totals {
  packets: number
  /** IP bytes (IP + TCP headers + payload). */
  bytes: number
  /** TCP payload only. */
  payloadBytes: number
  /**
   * Segments had the path an Ethernet MTU of 1,500 (an MSS of 1,448 with TCP timestamps):
   * loopback's MTU of 65,536 lets a TLS handshake flight travel as one segment.
   */
  packetsAtMtu1500: number
  bytesAtMtu1500: number
}

const MSS_AT_MTU_1500 = 1_448

export function totals(segments: Segment[]): Totals {
  const t: Totals = {
    packets: 0,
    bytes: 0,
    payloadBytes: 0,
    packetsAtMtu1500: 0,
    bytesAtMtu1500: 0,
  }
  for (const s of segments) {
    t.packets++
    t.bytes += s.ipBytes
    t.payloadBytes += s.payloadBytes
    const pieces = Math.max(1, Math.ceil(s.payloadBytes / MSS_AT_MTU_1500))
    t.packetsAtMtu1500 += pieces
    t.bytesAtMtu1500 += s.ipBytes + (pieces - 1) * (s.ipBytes - s.payloadBytes)
  }
  return t
}

export interface Capture {
  /**
   * Waits until tshark has seen every connection on the captured ports closed, stops
   * it and resolves with what it saw, the probe port's connections left out.
   */
  stop(): Promise<Segment[]>
  /** Stops tshark without reading (for errors). */
  abort(): void
}

/**
 * Starts tshark on `lo` with a capture filter on `ports`, and resolves once it is
 * capturing: it probes a closed port until tshark reports the probe's SYN.
 */
export async function startCapture(ports: number[]): Promise<Capture> {
  const probePort = await closedPort()
  // IPv4 only: the bench connects to 127.0.0.1, and ::1 on the same ports is not ours.
  const filter = `ip and tcp and (${[...ports, probePort].map((p) => `port ${p}`).join(' or ')})`
  // -l prints each packet's fields as it comes (no file to flush and read back with a
  // second tshark): that tells when tshark is capturing, and when it has seen the last
  // teardown. -n: no name lookups.
  const child = spawn(
    TSHARK,
    ['-i', 'lo', '-f', filter, '-l', '-n', '-T', 'fields', ...fieldArgs],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  const stderr: string[] = []
  createInterface({ input: child.stderr }).on('line', (line) => stderr.push(line))
  const failed = new Promise<never>((_resolve, reject) => {
    child.once('error', (err) =>
      reject(new Error(`cannot run ${TSHARK} (apt-get install tshark): ${err.message}`)),
    )
    child.once('exit', (code) =>
      reject(new Error(`${TSHARK} exited with ${code}: ${stderr.join(' ')}`)),
    )
  })
  failed.catch(() => {})
  const live: Segment[] = []
  let changed: () => void = () => {}
  let unreadable: Error | undefined
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      live.push(...parseSegments(line))
    } catch (err) {
      unreadable ??= err as Error
    }
    changed()
  })
  const next = () => new Promise<void>((resolve) => (changed = resolve))
  const wait = async (done: () => boolean, timeoutMs: number, what: string) => {
    const deadline = Date.now() + timeoutMs
    while (!done()) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`${TSHARK}: ${what} not seen within ${timeoutMs} ms`)
      await Promise.race([next(), failed, delay(Math.min(left, 100))])
    }
  }
  const abort = () => {
    if (child.exitCode === null) child.kill('SIGKILL')
  }
  const probeSeen = () => live.some((s) => s.dstPort === probePort)
  try {
    // tshark loads its dissectors before it opens the interface: probe until it sees one.
    const deadline = Date.now() + START_TIMEOUT_MS
    while (!probeSeen()) {
      if (Date.now() > deadline)
        throw new Error(`${TSHARK} did not capture within ${START_TIMEOUT_MS} ms`)
      await Promise.race([probe(probePort), failed])
      await Promise.race([next(), failed, delay(100)])
    }
  } catch (err) {
    abort()
    throw err
  }
  const ours = (c: TcpConnection) => c.serverPort !== probePort
  return {
    abort,
    async stop() {
      try {
        // Packets reach tshark in order: once it reports a probe sent now, it has seen
        // everything before. Then the teardowns still under way.
        const probes = live.filter((x) => x.dstPort === probePort).length
        await Promise.race([probe(probePort), failed])
        await wait(
          () => live.filter((x) => x.dstPort === probePort).length > probes,
          SETTLE_TIMEOUT_MS,
          'the last probe',
        )
        await wait(
          () => connections(live).filter(ours).every(isClosed),
          SETTLE_TIMEOUT_MS,
          'every connection closed',
        )
        if (unreadable) throw unreadable
        // SIGINT: tshark prints what it still holds and its counts, then exits.
        child.kill('SIGINT')
        await Promise.race([once(child, 'close'), failed.catch(() => {})])
        const dropped = stderr.find(
          (line) => /dropped/i.test(line) && !/\b0 packets? dropped/.test(line),
        )
        if (dropped !== undefined) throw new Error(`${TSHARK}: ${dropped}`)
        const keep = new Set(
          connections(live)
            .filter(ours)
            .map((c) => c.stream),
        )
        return live.filter((s) => keep.has(s.stream))
      } finally {
        abort()
      }
    },
  }
}

/** A port nothing listens on: a connection to it is a SYN answered by a RST. */
async function closedPort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

async function probe(port: number): Promise<void> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'close').catch(() => {})
}
