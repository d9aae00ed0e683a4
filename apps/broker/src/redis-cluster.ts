import type { EventEmitter } from 'node:events'
import type { Message } from 'mqemitter'
import mqemitterRedis from 'mqemitter-redis'
import aedesPersistenceRedis from 'aedes-persistence-redis'
import { Redis } from 'ioredis'
import type { MessageEmitter } from './bounded-mq.ts'
import { countedOutgoingAcks } from './redis-acks.ts'
import { CLUSTER_NAME } from './config.ts'

/**
 * Everything a broker keeps in Redis, under one cluster name (issue 14, item 2).
 *
 * Redis pub/sub ignores the database number, so brokers on `redis://…/3` and
 * `redis://…/4` used to deliver each other's messages. Now every key is stored under
 * `{cluster}:` (ioredis's keyPrefix) and every channel under `{cluster}/`: brokers
 * with different names share nothing, whatever database they use.
 */
export function redisCluster(
  url: string,
  cluster: string,
  onError: (err: Error) => void,
): { emitter: MessageEmitter; persistence: object } {
  if (!CLUSTER_NAME.test(cluster)) throw new Error(`invalid cluster name: ${cluster}`)
  const emitter = mqemitterRedis({ connectionString: url, concurrency: 0 })
  // mqemitter-redis reports its connections' errors on `state`, which nobody listens to by default.
  ;(emitter as unknown as { state: EventEmitter }).state.on('error', onError)
  const conn = new Redis(url, { keyPrefix: `${cluster}:` }).on('error', onError)
  const persistence = countedOutgoingAcks(
    aedesPersistenceRedis({
      conn,
      // A persistent session that comes back gets this many of its queued messages;
      // the rest stayed in Redis until its next reconnect (aedes-persistence-redis's
      // default is 1,000: the api, back from a restart, drained exactly 1,000 and left
      // the rest behind). -1 is LRANGE's "to the end": the whole queue.
      maxSessionDelivery: -1,
    }) as object,
    conn,
  )
  return { emitter: new PrefixedEmitter(emitter, `${cluster}/`), persistence }
}

type Notify = (message: Message, done: () => void) => void

/**
 * Moves every topic under a prefix on the way into an emitter and takes it off on the
 * way out. (mqemitter-redis has an undocumented, untyped MQEmitterRedisPrefix that
 * does the same but keeps one wrapper per listener function whatever the topic.)
 */
class PrefixedEmitter implements MessageEmitter {
  private readonly wrapped = new WeakMap<Notify, Map<string, Notify>>()

  constructor(
    private readonly inner: MessageEmitter,
    private readonly prefix: string,
  ) {}

  on(topic: string, notify: Notify, done?: () => void): this {
    const strip: Notify = (message, next) =>
      notify({ ...message, topic: message.topic.slice(this.prefix.length) }, next)
    let byTopic = this.wrapped.get(notify)
    if (byTopic === undefined) this.wrapped.set(notify, (byTopic = new Map<string, Notify>()))
    byTopic.set(topic, strip)
    this.inner.on(this.prefix + topic, strip, done)
    return this
  }

  removeListener(topic: string, notify: Notify, done?: () => void): this {
    const byTopic = this.wrapped.get(notify)
    const strip = byTopic?.get(topic)
    if (strip === undefined) {
      if (done) setImmediate(done)
      return this
    }
    byTopic?.delete(topic)
    this.inner.removeListener(this.prefix + topic, strip, done)
    return this
  }

  emit(message: Message, done?: (err?: Error | null) => void): this {
    this.inner.emit({ ...message, topic: this.prefix + message.topic }, done)
    return this
  }

  close(done: () => void): this {
    this.inner.close(done)
    return this
  }
}
