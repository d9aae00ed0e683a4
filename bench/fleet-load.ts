// The publishing fleet in a process of its own (its CPU is neither the orchestrator's
// nor the broker's). Reads JSON lines on stdin: first the fleet to connect, then one
// FleetStep per line; answers each with one JSON line on stdout. Exits when stdin
// closes, so it never outlives the orchestrator.
import { createInterface } from 'node:readline'
import { PublishingFleet } from './fleet-publish.ts'
import type { FleetStep } from './fleet-publish.ts'
import type { Credentials } from './load-types.ts'

export interface FleetConfig {
  port: number
  fleet: string
  drones: Credentials[]
}

const answer = (value: object) => process.stdout.write(JSON.stringify(value) + '\n')
let fleet: PublishingFleet | undefined
let work = Promise.resolve()

createInterface({ input: process.stdin })
  .on('line', (line) => {
    // One command at a time, in order: a step must not start while the fleet connects.
    work = work
      .then(async () => {
        if (fleet === undefined) {
          const cfg = JSON.parse(line) as FleetConfig
          const started = performance.now()
          fleet = await PublishingFleet.connect(cfg.port, cfg.fleet, cfg.drones)
          answer({ connectS: (performance.now() - started) / 1_000 })
        } else answer(await fleet.run(JSON.parse(line) as FleetStep))
      })
      .catch((err: unknown) => {
        console.error(err instanceof Error ? err.message : err)
        process.exit(1)
      })
  })
  .on('close', () => {
    fleet?.close()
    process.exit(0)
  })
