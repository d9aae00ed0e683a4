// aedes-persistence-redis ships no types; this declares the part the broker uses.
declare module 'aedes-persistence-redis' {
  import type { Redis } from 'ioredis'

  interface RedisPersistence {
    destroy(): Promise<void>
  }

  interface RedisPersistenceOptions {
    /** An ioredis connection the persistence uses (and closes on destroy). */
    conn?: Redis
    /** Offline messages delivered on CONNECT at most. Default 1000. */
    maxSessionDelivery?: number
  }

  export default function aedesPersistenceRedis(opts?: RedisPersistenceOptions): RedisPersistence
}
