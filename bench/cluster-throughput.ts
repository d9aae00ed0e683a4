// What the broker cluster does to throughput (README "Scaling"): the broker bench's load
// (100 publishers -> 1 subscriber, same windows) through one broker in memory, one broker
// on Redis, and two brokers on one Redis with the publishers on one and the subscriber
// on the other (every message crosses Redis pub/sub). Not part of `npm run bench`:
//   npx tsx bench/cluster-throughput.ts [--quick]
// Needs `redis-server` (Debian's redis-server) on PATH; starts its own on a free port.
import { randomBytes } from 'node:crypto'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { signDeviceToken } from '@skyline/auth'
import type { DeviceClaims } from '@skyline/auth'
import { spawnBroker } from '../apps/broker/test/broker-process.ts'
import type { BrokerProcess } from '../apps/broker/test/broker-process.ts'
import { settingsFor } from './broker.ts'
import { Parts } from './chaos/parts.ts'
import { runLoad } from './load-process.ts'
import type { ThroughputResult } from './load-types.ts'
import { clockTicksPerS } from './proc.ts'

const SECRET = randomBytes(24).toString('hex')

const credentials = async (claims: DeviceClaims) => ({
  username: claims.sub,
  password: await signDeviceToken(SECRET, claims),
  clientId: claims.sub,
})

type Layout = 'one broker, memory' | 'one broker, Redis' | 'two brokers, Redis, across'
const LAYOUTS: Layout[] = ['one broker, memory', 'one broker, Redis', 'two brokers, Redis, across']

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } })
  const s = settingsFor(values.quick ?? false)
  const rows: { layout: Layout; qos: 0 | 1; round: number; result: ThroughputResult }[] = []
  const load = [loadavg()[0]!]
  for (let round = 0; round < s.runs; round++) {
    for (const layout of LAYOUTS) {
      const parts = new Parts(undefined)
      try {
        const redis = layout === 'one broker, memory' ? '' : await parts.redis()
        const start = async (): Promise<BrokerProcess> => {
          const b = await spawnBroker(
            {
              DEVICE_TOKEN_SECRET: SECRET,
              MQTT_RATE_LIMIT: '0',
              MQTT_MAX_CONNECTIONS: '20000',
              REDIS_URL: redis,
            },
            60_000,
          ) // a shared machine under load starts tsx slowly
          parts.defer(() => b.stop())
          return b
        }
        const publishedTo = await start()
        const subscribedTo = layout === 'two brokers, Redis, across' ? await start() : publishedTo
        for (const qos of [0, 1] as const) {
          const fleet = `bench-${randomBytes(4).toString('hex')}`
          const result = await runLoad(
            {
              mode: 'throughput',
              port: publishedTo.ports.mqtt,
              subscriberPort: subscribedTo.ports.mqtt,
              brokerPid: publishedTo.child.pid!,
              clockTicksPerS: clockTicksPerS(),
              qos,
              topicPrefix: `fleet/${fleet}/drones/`,
              filter: `fleet/${fleet}/drones/+/telemetry`,
              publishers: await Promise.all(
                Array.from({ length: s.publishers }, (_, i) =>
                  credentials({ role: 'drone', sub: `d${i}`, fleet }),
                ),
              ),
              subscriber: await credentials({ role: 'service', sub: 'bench-sub' }),
              maxInFlight: qos === 0 ? s.qos0MaxInFlight : s.qos1MaxInFlight,
              perPublisherWindow: s.qos1Window,
              warmupMs: s.warmupMs,
              measureMs: s.measureMs,
              drainMs: s.drainMs,
            },
            s.warmupMs + s.measureMs + s.drainMs + 30_000,
            new AbortController().signal,
          )
          rows.push({ layout, qos, round, result })
          load.push(loadavg()[0]!)
          console.error(
            `${layout} QoS ${qos} round ${round + 1}: ${Math.round(result.msgsPerS)} msgs/s, lost ${result.lost}`,
          )
        }
      } finally {
        await parts.close()
      }
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  console.log(
    `Broker cluster throughput: ${s.publishers} publishers -> 1 subscriber, ${s.measureMs / 1000} s windows, median of ${s.runs}; load average (1 min) ${Math.min(...load).toFixed(1)} to ${Math.max(...load).toFixed(1)}`,
  )
  console.log('| layout | QoS | msgs/s (median) | each run | lost |')
  console.log('| --- | --- | --- | --- | --- |')
  for (const layout of LAYOUTS) {
    for (const qos of [0, 1] as const) {
      const runs = rows.filter((r) => r.layout === layout && r.qos === qos).map((r) => r.result)
      const rates = runs.map((r) => Math.round(r.msgsPerS))
      console.log(
        `| ${layout} | ${qos} | ${median(rates).toLocaleString('en')} | ${rates.map((r) => r.toLocaleString('en')).join(' / ')} | ${runs.map((r) => r.lost).join(' / ')} |`,
      )
    }
  }
}

await main()
