// The load generator, in a process of its own so that its CPU use is neither the
// orchestrator's nor the broker's. Reads one JSON LoadConfig line on stdin, prints one
// JSON LoadResult line on stdout, and exits. It also exits when stdin closes, so it
// never outlives the orchestrator that started it.
import { createInterface } from 'node:readline'
import { runIdle } from './idle.ts'
import type { LoadConfig, LoadResult } from './load-types.ts'
import { runThroughput } from './throughput.ts'

async function run(cfg: LoadConfig): Promise<LoadResult> {
  switch (cfg.mode) {
    case 'throughput':
      return runThroughput(cfg)
    case 'idle':
      return runIdle(cfg)
  }
}

const lines = createInterface({ input: process.stdin })
let started = false
lines.on('line', (line) => {
  if (started) return
  started = true
  run(JSON.parse(line) as LoadConfig).then(
    (result) => process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0)),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err)
      process.exit(1)
    },
  )
})
lines.on('close', () => process.exit(started ? 2 : 0))
