// Turns the broker benchmark's raw runs into the table printed on stdout.
import type { BrokerBenchResult, BrokerName, ThroughputRun } from './broker.ts'
import type { MachineInfo } from './proc.ts'

export function median(xs: number[]): number {
  const sorted = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const en = (x: number) => x.toLocaleString('en-US')
const int = (x: number) => (Number.isNaN(x) ? 'n/a' : en(Math.round(x)))
const dec = (digits: number) => (x: number) => (Number.isNaN(x) ? 'n/a' : x.toFixed(digits))
const ratio = (a: number, b: number) => (b > 0 && !Number.isNaN(a) ? (a / b).toFixed(2) : '')

type Row = [measure: string, bundled: string, mosquitto: string, ratio: string]
type Metric = (r: ThroughputRun) => number

function throughputRows(runs: ThroughputRun[], qos: 0 | 1, load: string): Row[] {
  const of = (broker: BrokerName) => runs.filter((r) => r.broker === broker && r.qos === qos)
  const medianOf = (broker: BrokerName, f: Metric) => median(of(broker).map(f))
  const medianRow = (label: string, f: Metric, fmt: (x: number) => string): Row => {
    const [b, m] = [medianOf('bundled', f), medianOf('mosquitto', f)]
    return [label, fmt(b), fmt(m), ratio(b, m)]
  }
  const eachRun = (label: string, fmt: (r: ThroughputRun) => string): Row => [
    label,
    of('bundled').map(fmt).join(' / '),
    of('mosquitto').map(fmt).join(' / '),
    '',
  ]
  const lost = (r: ThroughputRun) =>
    r.lost === 0 ? '0' : `${int(r.lost)} (${Math.round((100 * r.lost) / r.sent)}%)`
  // Whose CPU: a broker below 100% while the machine is full was starved, not idle.
  const cpuShares: Metric[] = [(r) => r.brokerCpuPct, (r) => r.loadCpuPct, (r) => r.otherCpuPct]
  const cpu = (broker: BrokerName) => cpuShares.map((f) => int(medianOf(broker, f))).join(' / ')
  const runsEach = Math.max(of('bundled').length, of('mosquitto').length)
  return [
    medianRow(
      `QoS ${qos} msgs/s, 100 pub -> 1 sub (median of ${runsEach}; ${load})`,
      (r) => r.msgsPerS,
      int,
    ),
    eachRun(`QoS ${qos} msgs/s, each run`, (r) => int(r.msgsPerS)),
    eachRun(`QoS ${qos} lost (sent - received, % of sent), each run`, lost),
    medianRow(`QoS ${qos} broker CPU per message (µs, median)`, (r) => r.brokerCpuUsPerMsg, dec(1)),
    [
      `QoS ${qos} CPU, % of a core: broker / load gen / rest of machine`,
      cpu('bundled'),
      cpu('mosquitto'),
      '',
    ],
  ]
}

const settleLabel = (s: BrokerBenchResult['settings']) =>
  `${s.idleSettleMs / 1000} s after connecting`

export function brokerTable(
  result: BrokerBenchResult,
  machine: MachineInfo,
  revision: string,
): string {
  const s = result.settings
  const rows: Row[] = [
    ...throughputRows(result.throughput, 0, `≤ ${en(s.qos0MaxInFlight)} in flight`),
    ...throughputRows(
      result.throughput,
      1,
      `window ${s.qos1Window} per publisher, ≤ ${en(s.qos1MaxInFlight)} in flight`,
    ),
  ]
  for (const clients of s.idleClients) {
    const at = clients >= 1000 ? `${clients / 1000}k` : String(clients)
    const when = [
      ['bytesPerClient', settleLabel(s)],
      ['steadyBytesPerClient', `steady, ${s.idleSteadyMs / 1000} s later`],
    ] as const
    for (const [field, label] of when) {
      const kb = (broker: BrokerName) =>
        (result.idle.find((r) => r.broker === broker && r.clients === clients)?.[field] ?? NaN) /
        1024
      rows.push([
        `memory per idle connection @${at}, ${label} (KB)`,
        dec(1)(kb('bundled')),
        dec(1)(kb('mosquitto')),
        ratio(kb('bundled'), kb('mosquitto')),
      ])
    }
    // The young generation grows and shrinks by tens of MiB with the garbage collector's
    // pace: when it differs between the baseline and a reading, so does that figure.
    const young = result.idle.find(
      (r) => r.broker === 'bundled' && r.clients === clients,
    )?.youngGenBytes
    if (young !== undefined) {
      const mib = (bytes: number) => dec(0)(bytes / 1024 / 1024)
      rows.push([
        `@${at}: V8 young generation at the baseline / ${settleLabel(s)} / steady (MiB)`,
        `${mib(young.before)} / ${mib(young.after)} / ${mib(young.steady)}`,
        'n/a',
        '',
      ])
    }
  }
  const header: Row = ['measure', 'bundled (aedes)', 'mosquitto', 'bundled/mosquitto']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  return [
    `Broker benchmark (machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ` +
      `Mosquitto ${machine.mosquitto}), rate limit off (MQTT_RATE_LIMIT=0: Mosquitto has none), ` +
      `bundled broker at ${revision}`,
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    `${s.warmupMs / 1000} s warm-up, ${s.measureMs / 1000} s window per run, brokers alternating; ` +
      `${s.payloadBytes}-byte telemetry; "in flight": published, not yet received or known lost; ` +
      `CPU from /proc/<pid>/stat; a run in which other processes used > ${s.disturbedPct}% ` +
      `of a core is repeated (up to ${s.attempts} attempts, least disturbed kept).`,
    ...result.failed.map((f) => `FAILED ${f.what} ${f.broker}: ${f.error}`),
  ].join('\n')
}
