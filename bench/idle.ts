// Memory a broker holds per connected client that does nothing: RSS before and after
// connecting N clients, divided by N. No GC is forced: the figure is what the broker
// costs as it runs, garbage not yet collected included.
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { IdleConfig, IdleResult } from './load-types.ts'
import { connectInBatches } from './mqtt-raw.ts'
import type { RawConnection } from './mqtt-raw.ts'
import { rssBytes } from './proc.ts'

export async function runIdle(cfg: IdleConfig): Promise<IdleResult> {
  const open: RawConnection[] = []
  try {
    open.push(...(await connectInBatches(cfg.port, cfg.warmup, cfg.batch)))
    await sleep(cfg.settleMs)
    const rssBeforeBytes = rssBytes(cfg.brokerPid)
    const t0 = performance.now()
    open.push(...(await connectInBatches(cfg.port, cfg.clients, cfg.batch)))
    const connectMs = performance.now() - t0
    await sleep(cfg.settleMs)
    const rssAfterBytes = rssBytes(cfg.brokerPid)
    return {
      clients: cfg.clients.length,
      rssBeforeBytes,
      rssAfterBytes,
      bytesPerClient: (rssAfterBytes - rssBeforeBytes) / cfg.clients.length,
      connectMs,
    }
  } finally {
    for (const c of open) c.socket.destroy()
  }
}
