// Entry point of `npm run bench [-- --quick] [names]`: runs the benchmarks (all, or the ones
// named: broker, sim, web, e2e, wire, history), prints one table on
// stdout (progress goes to stderr) and keeps the raw runs in bench/results/<time>.json.
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { benchBrokers, settingsFor } from './broker.ts'
import { machineInfo } from './proc.ts'
import { brokerTable } from './report.ts'
import { benchSim, simSettingsFor, simTable } from './sim.ts'
import { benchWeb, webSettingsFor, webTable } from './web.ts'
import { benchWire, wireSettingsFor, wireTable } from './wire.ts'
import { benchHistory, historySettingsFor, historyTable } from './history.ts'
import { benchEndToEnd, endToEndSettingsFor, endToEndTable } from './e2e.ts'
import { liveTable } from './live.ts'

const RESULTS_DIR = new URL('./results/', import.meta.url)
const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** The commit the bundled broker ran from, so results can be told apart as it changes. */
function revision(): string {
  const git = (...args: string[]) =>
    (spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout ?? '').trim()
  const commit = git('rev-parse', '--short', 'HEAD') || 'unknown commit'
  const changed = git('status', '--porcelain', '--', 'apps/broker', 'packages') !== ''
  return changed ? `${commit} + uncommitted changes` : commit
}

/** ISO 8601 basic format (20260101T120000Z): sortable, and without ':' for file names. */
function fileTimestamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '')
}

// Ctrl-C: abort, so that every bench stops its load and closes its broker in its
// finally blocks; a second Ctrl-C exits at once.
const controller = new AbortController()
function interrupt(signal: NodeJS.Signals): void {
  console.error(`\n${signal}: stopping brokers and load generators (again to force)`)
  controller.abort(new Error(`interrupted by ${signal}`))
  process.once(signal, () => process.exit(130))
}
process.once('SIGINT', interrupt)
process.once('SIGTERM', interrupt)

/** The benchmarks in the order they run; `npm run bench -- wire history` runs only those. */
const BENCHES = ['broker', 'sim', 'web', 'e2e', 'wire', 'history'] as const
type BenchName = (typeof BENCHES)[number]

async function main(signal: AbortSignal): Promise<void> {
  const { values, positionals } = parseArgs({
    options: { quick: { type: 'boolean', default: false } },
    allowPositionals: true,
  })
  const quick = values.quick ?? false
  const unknown = positionals.filter((p) => !(BENCHES as readonly string[]).includes(p))
  if (unknown.length > 0)
    throw new Error(`unknown bench ${unknown.join(', ')}: choose from ${BENCHES.join(', ')}`)
  const selected = (name: BenchName) => positionals.length === 0 || positionals.includes(name)
  const log = (line: string) => console.error(line)
  const run = async <S, R>(
    name: BenchName,
    label: string,
    settingsFor: (quick: boolean) => S,
    bench: (s: S, signal: AbortSignal, log: (line: string) => void) => Promise<R>,
  ): Promise<R | undefined> => {
    if (!selected(name)) return undefined
    const settings = settingsFor(quick)
    console.error(`${label}${quick ? ' (quick)' : ''}: ${JSON.stringify(settings)}`)
    return bench(settings, signal, log)
  }
  const startedAt = new Date()
  const machine = machineInfo()
  const brokerRevision = revision()
  const brokers = await run('broker', 'broker bench', settingsFor, benchBrokers)
  const sim = await run('sim', 'sim bench', simSettingsFor, benchSim)
  const web = await run('web', 'web bench', webSettingsFor, benchWeb)
  const e2e = await run('e2e', 'end-to-end bench', endToEndSettingsFor, benchEndToEnd)
  const wire = await run('wire', 'wire bench', wireSettingsFor, benchWire)
  const history = await run('history', 'history bench', historySettingsFor, benchHistory)

  const tables = [
    brokers && brokerTable(brokers, machine, brokerRevision),
    sim && simTable(sim),
    web && webTable(web),
    e2e && endToEndTable(e2e),
    e2e?.live && liveTable(e2e.live),
    wire && wireTable(wire),
    history && historyTable(history),
  ]
  console.log(tables.filter((t) => t !== undefined).join('\n\n'))
  mkdirSync(RESULTS_DIR, { recursive: true })
  const file = new URL(`${fileTimestamp(startedAt)}.json`, RESULTS_DIR)
  writeFileSync(
    file,
    JSON.stringify(
      { startedAt, quick, machine, brokerRevision, brokers, sim, web, e2e, wire, history },
      null,
      2,
    ) + '\n',
  )
  console.error(`raw runs: ${file.pathname}`)
}

main(controller.signal).catch((err: unknown) => {
  if (controller.signal.aborted) {
    console.error('bench interrupted: no results written')
    process.exit(130)
  }
  console.error('bench failed:', err instanceof Error ? err.message : err)
  process.exit(1)
})
