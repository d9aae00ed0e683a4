import { afterEach, describe, expect, it } from 'vitest'
import type { Database } from '../src/db/client.ts'
import { TelemetryPartitions } from '../src/db/partitions.ts'
import { telemetry } from '../src/db/schema.ts'
import { FleetRepository } from '../src/plugins/app/fleet-repository.ts'
import { DATABASES } from './helpers.ts'

const DAY = 86_400_000

describe.each(DATABASES)('a track as GeoJSON on %s', (_name, open) => {
  let database: Database | undefined
  afterEach(async () => database?.close())

  it('says what the JSON track says: the same points, numbers and times, in order', async () => {
    database = await open()
    const start = Math.floor(Date.now() / DAY) * DAY - DAY + 999
    // Values that print differently when read back carelessly: float4 columns (altM,
    // speedMps), six-decimal degrees, negatives, whole numbers, milliseconds.
    const rows = [
      [47.376887, 8.541694, 512.4, 12.5],
      [-33.86882, -151.209296, 0.1, 0],
      [0, 180, -499.9, 149.9],
      [89.999999, -0.000001, 20_000, 0.3],
    ].map(([lat, lon, altM, speedMps], seq) => ({
      fleetId: 'f1',
      droneId: 'd "1"',
      ts: new Date(start + seq * 1_001),
      seq,
      lat: lat!,
      lon: lon!,
      altM: altM!,
      speedMps: speedMps!,
      headingDeg: 1,
      batteryPct: 2,
      state: 'en_route',
      receivedAt: new Date(),
    }))
    await new TelemetryPartitions(database.db).ensureFor(rows.map((r) => r.ts))
    // Inserted out of order: the track is ordered by time, not by arrival.
    await database.db.insert(telemetry).values([...rows].reverse())
    const fleet = new FleetRepository(database.db)
    const [from, to] = [new Date(start - 1), new Date(start + DAY)]

    const points = await fleet.track('f1', 'd "1"', from, to)
    expect(JSON.parse(await fleet.trackGeoJson('f1', 'd "1"', from, to))).toEqual({
      type: 'Feature',
      geometry: { type: 'LineString', coordinates: points.map((p) => [p.lon, p.lat, p.altM]) },
      properties: {
        droneId: 'd "1"',
        times: points.map((p) => p.ts.toISOString()),
        speedsMps: points.map((p) => p.speedMps),
      },
    })
    expect(points.map((p) => p.seq)).toEqual([0, 1, 2, 3])
  })

  it('is an empty LineString when the drone flew nowhere in the range', async () => {
    database = await open()
    const fleet = new FleetRepository(database.db)
    const feature = JSON.parse(
      await fleet.trackGeoJson('f1', 'd1', new Date(0), new Date(DAY)),
    ) as { geometry: { coordinates: unknown[] }; properties: { times: unknown[] } }
    expect(feature.geometry.coordinates).toEqual([])
    expect(feature.properties.times).toEqual([])
  })
})
