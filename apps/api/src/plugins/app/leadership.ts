import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import { LeaderLease } from '../../cluster/lease.ts'
import type { Tx } from '../../delivery/lifecycle.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** This instance's name among the api instances on one database. */
    instanceId: string
    leadership: Leadership
  }
}

/** Work only the leading instance does: the ingest session, the dispatcher, the timers. */
export interface Duty {
  start(): void | Promise<void>
  /** `lost`: leadership was taken away (not given up): stop at once, write nothing more. */
  stop(lost: boolean): Promise<void>
}

export interface Leadership {
  readonly role: 'leader' | 'follower'
  /** The lease has answered once since start: `role` is known. */
  readonly decided: boolean
  /** Inside a leader's transaction: refuses it unless this instance still leads. */
  fence(tx: Tx): Promise<void>
  /**
   * Runs `duty` while this instance leads. Duties start in this order and stop in reverse
   * (all at once when the lead is lost).
   */
  lead(name: string, duty: Duty): void
}

/**
 * An instance's name when API_INSTANCE_ID is unset: the host name (in a container, its
 * id: the replicas of one compose service differ), the process id and a random suffix
 * (new at each start). Its MQTT command connection's client id ends with it.
 */
export const defaultInstanceId = () =>
  `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`

/**
 * Which api instance leads (docs/architecture.md "Several api instances"): the leader
 * lease in the database (cluster/lease.ts), taken when the app is ready and given up when
 * it closes, so that another instance takes over at once; a leader that dies or loses the
 * database is replaced once its lease lapses (LEADER_LEASE_S). Every instance serves
 * REST, the map and the live stream; the duties run on the leader only.
 */
export default fp(
  async (fastify) => {
    const { config, database, log } = fastify
    const id = config.API_INSTANCE_ID ?? defaultInstanceId()
    fastify.decorate('instanceId', id)
    const duties: { name: string; duty: Duty }[] = []
    // Changes of role one at a time: a duty never starts before its last stop is done.
    let changing: Promise<void> = Promise.resolve()
    const change = (run: () => Promise<void>) => (changing = changing.then(run, run))
    const lease = new LeaderLease(
      database.db,
      id,
      {
        ttlMs: config.LEADER_LEASE_S * 1000,
        onError: (err) => log.warn({ err }, 'leader lease: no answer from the database'),
      },
      {
        gained: (epoch) =>
          void change(async () => {
            log.info(
              { instance: id, epoch },
              'leading: this instance runs the ingest and the dispatcher',
            )
            fastify.metrics.leader.set(1)
            for (const { name, duty } of duties) {
              try {
                await duty.start()
              } catch (err) {
                log.error({ err, duty: name }, 'a duty of the leader failed to start')
              }
            }
          }),
        lost: (reason) => void stopDuties(reason, true),
      },
    )
    const stopDuties = (reason: string, lost: boolean) =>
      change(async () => {
        log.warn({ instance: id, reason }, 'no longer leading')
        fastify.metrics.leader.set(0)
        const stop = ({ name, duty }: (typeof duties)[number]) =>
          duty
            .stop(lost)
            .catch((err: unknown) =>
              log.error({ err, duty: name }, 'a duty of the leader failed to stop'),
            )
        // Leadership taken away: every duty stops at once. The ingest session must not
        // wait for a round of the dispatcher's stuck on the database: the new leader opens
        // the same session, and two instances that hold it take it from each other.
        if (lost) await Promise.all(duties.map(stop))
        else for (const d of [...duties].reverse()) await stop(d)
      })

    fastify.decorate('leadership', {
      get role() {
        return lease.isLeader ? ('leader' as const) : ('follower' as const)
      },
      get decided() {
        return lease.decided
      },
      fence: (tx) => lease.fence(tx),
      lead(name, duty) {
        duties.push({ name, duty })
      },
    } satisfies Leadership)
    fastify.addHook('onReady', () => lease.start())
    fastify.addHook('onClose', async () => {
      // The duties stop while the lease still holds (what they write on the way out is
      // fenced), then it is given up.
      await lease.stop(() => stopDuties('closing', false))
      await changing
    })
  },
  { name: 'leadership', dependencies: ['database', 'metrics'] },
)
