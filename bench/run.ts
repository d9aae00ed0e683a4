// Entry point of `npm run bench [-- --quick]`: runs the benchmarks, prints one table on
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

async function main(signal: AbortSignal): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } })
  const quick = values.quick ?? false
  const startedAt = new Date()
  const machine = machineInfo()
  const brokerRevision = revision()
  const settings = settingsFor(quick)
  console.error(`broker bench${quick ? ' (quick)' : ''}: ${JSON.stringify(settings)}`)
  const brokers = await benchBrokers(settings, signal, (line) => console.error(line))
  const simSettings = simSettingsFor(quick)
  console.error(`sim bench${quick ? ' (quick)' : ''}: ${JSON.stringify(simSettings)}`)
  const sim = await benchSim(simSettings, signal, (line) => console.error(line))
  const webSettings = webSettingsFor(quick)
  console.error(`web bench${quick ? ' (quick)' : ''}: ${JSON.stringify(webSettings)}`)
  const web = await benchWeb(webSettings, signal, (line) => console.error(line))
  const e2eSettings = endToEndSettingsFor(quick)
  console.error(`end-to-end bench${quick ? ' (quick)' : ''}: ${JSON.stringify(e2eSettings)}`)
  const e2e = await benchEndToEnd(e2eSettings, signal, (line) => console.error(line))
  const wireSettings = wireSettingsFor(quick)
  console.error(`wire bench${quick ? ' (quick)' : ''}: ${JSON.stringify(wireSettings)}`)
  const wire = await benchWire(wireSettings, signal, (line) => console.error(line))
  const historySettings = historySettingsFor(quick)
  console.error(`history bench${quick ? ' (quick)' : ''}: ${JSON.stringify(historySettings)}`)
  const history = await benchHistory(historySettings, signal, (line) => console.error(line))

  console.log(brokerTable(brokers, machine, brokerRevision))
  console.log('')
  console.log(simTable(sim))
  console.log('')
  console.log(webTable(web))
  console.log('')
  console.log(endToEndTable(e2e))
  console.log('')
  if (e2e.live !== undefined) console.log(liveTable(e2e.live) + '\n')
  console.log(wireTable(wire))
  console.log('')
  console.log(historyTable(history))
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
