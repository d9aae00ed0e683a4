// Entry point of `npm run bench [-- --quick]`: runs the benchmarks, prints one table on
// stdout (progress goes to stderr) and keeps the raw runs in bench/results/<time>.json.
import { mkdirSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { benchBrokers, settingsFor } from './broker.ts'
import { machineInfo } from './proc.ts'
import { brokerTable } from './report.ts'

const RESULTS_DIR = new URL('./results/', import.meta.url)

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
  const settings = settingsFor(quick)
  console.error(`broker bench${quick ? ' (quick)' : ''}: ${JSON.stringify(settings)}`)
  const brokers = await benchBrokers(settings, signal, (line) => console.error(line))

  console.log(brokerTable(brokers, machine))
  mkdirSync(RESULTS_DIR, { recursive: true })
  const file = new URL(`${fileTimestamp(startedAt)}.json`, RESULTS_DIR)
  writeFileSync(file, JSON.stringify({ startedAt, quick, machine, brokers }, null, 2) + '\n')
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
