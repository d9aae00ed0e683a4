// Entry point of `npm run chaos [-- --quick] [NAME ...] [--only NAME,...] [--root DIR]`: runs
// the attacks of issue 14 and the cluster's faults of issue 17 (`cluster`, cluster.ts)
// against real processes (broker, api, Postgres, a private Redis) and prints one table,
// then the cluster's phases. --root runs another checkout's apps (e.g. a worktree of an older
// commit) under the same attacks, for a before-and-after.
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import {
  oneTokenManyConnections,
  oneTokenManyPublishers,
  protocolViolations,
  rebindingOrigin,
  refusedFlood,
} from './broker-attacks.ts'
import { cluster } from './cluster.ts'
import { badClock, clusterCrosstalk, hostileRest, redisQos1 } from './ingest-attacks.ts'
import { liveNonReaders } from './live-attack.ts'
import { Parts } from './parts.ts'
import { chaosTable } from './report.ts'
import type { Attack, Row } from './report.ts'

const ATTACKS: Attack[] = [
  redisQos1,
  clusterCrosstalk,
  badClock,
  hostileRest,
  liveNonReaders,
  oneTokenManyConnections,
  oneTokenManyPublishers,
  refusedFlood,
  protocolViolations,
  rebindingOrigin,
  cluster,
]

const controller = new AbortController()
function interrupt(signal: NodeJS.Signals): void {
  console.error(`\n${signal}: stopping the attack and its processes (again to force)`)
  controller.abort(new Error(`interrupted by ${signal}`))
  process.once(signal, () => process.exit(130))
}
process.once('SIGINT', interrupt)
process.once('SIGTERM', interrupt)

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      root: { type: 'string' },
    },
  })
  // `npm run chaos -- cluster` is `--only cluster`.
  const named = [...(values.only?.split(',') ?? []), ...positionals]
  const only = named.length === 0 ? undefined : named
  const unknown = only?.filter((name) => !ATTACKS.some((a) => a.name === name)) ?? []
  if (unknown.length > 0)
    throw new Error(
      `unknown attack ${unknown.join(', ')}; known: ${ATTACKS.map((a) => a.name).join(', ')}`,
    )
  const root = values.root === undefined ? undefined : resolve(values.root)
  const rows: Row[] = []
  for (const attack of ATTACKS.filter((a) => only === undefined || only.includes(a.name))) {
    if (controller.signal.aborted) break
    console.error(`chaos: ${attack.name}${root === undefined ? '' : ` (apps of ${root})`}`)
    const parts = new Parts(root)
    try {
      rows.push(
        await attack.run(parts, { quick: values.quick ?? false, signal: controller.signal }),
      )
    } catch (err) {
      rows.push({
        attack: attack.name,
        expected: '—',
        happened: `the attack failed: ${(err as Error).message}`,
        lost: 0,
      })
    } finally {
      await parts.close()
    }
    console.error(`  ${rows.at(-1)!.happened}`)
  }
  console.log(chaosTable(rows))
  for (const row of rows) if (row.detail !== undefined) console.log(`\n${row.detail}`)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
