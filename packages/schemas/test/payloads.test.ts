import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  DRONE_COMMAND_TYPES,
  DroneCommandSchema,
  DroneStatusSchema,
  droneWillPayload,
  StationStatusSchema,
  stationWillPayload,
  TelemetrySchema,
} from '../src/index.ts'

const TS = 1767225600000

function fixture(folder: string, name: string): unknown {
  const path = join(import.meta.dirname, 'fixtures', folder, 'valid', `${name}.json`)
  return JSON.parse(readFileSync(path, 'utf8'))
}

describe('last-will payloads', () => {
  it('builds the drone will that ARCHITECTURE.md specifies', () => {
    const will = droneWillPayload(TS)
    expect(will).toEqual(fixture('drone-status', 'last-will'))
    expect(DroneStatusSchema.parse(will)).toEqual(will)
  })

  it('builds the station will from its description, going offline', () => {
    const online = StationStatusSchema.parse(fixture('station-status', 'online-with-docked'))
    const will = stationWillPayload({ ...online, extra: 'not on the wire' } as typeof online, TS)
    expect(will).toEqual(fixture('station-status', 'last-will'))
    expect(StationStatusSchema.parse(will)).toEqual(will)
  })
})

describe('non-finite numbers', () => {
  // JSON cannot spell NaN, so the fixtures cannot hold it; values built in code can.
  const valid = TelemetrySchema.parse(fixture('telemetry', 'en-route-with-delivery'))
  const fields = ['ts', 'seq', 'lat', 'lon', 'altM', 'speedMps', 'headingDeg', 'batteryPct']

  it.each(fields.flatMap((field) => [NaN, Infinity, -Infinity].map((value) => ({ field, value }))))(
    'rejects telemetry with $field = $value',
    ({ field, value }) => {
      const result = TelemetrySchema.safeParse({ ...valid, [field]: value })
      expect(result.error?.issues.map((issue) => issue.path.join('.'))).toEqual([field])
    },
  )
})

describe('DroneCommandSchema', () => {
  it('has one variant per DRONE_COMMAND_TYPES entry', () => {
    const types = DroneCommandSchema.options.map((option) => option.shape.type.value)
    expect(types).toEqual([...DRONE_COMMAND_TYPES])
  })
})
