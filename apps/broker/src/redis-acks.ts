import type { Redis } from 'ioredis'

interface QueuedPacket {
  cmd?: string
  qos?: number
  messageId?: number
  brokerId?: string
  brokerCounter?: number
}

/** The two calls of aedes-persistence-redis 12 that follow a QoS 1 message out. */
interface OutgoingAcks {
  outgoingUpdate(client: object, packet: QueuedPacket): Promise<unknown>
  outgoingClearMessageId(client: object, packet: QueuedPacket): Promise<unknown>
}

// aedes-persistence-redis's key layout (asyncPersistence.js): a session's queue is a list
// of packet keys; the packet and the number of queues holding it are keys of their own.
const queueKey = (clientId: string) => `outgoing:${encodeURIComponent(clientId)}`
const packetKey = (p: { brokerId: string; brokerCounter: number }) =>
  `packet:${p.brokerId}:${p.brokerCounter}`

/**
 * Takes the packet off this session's queue and counts it off the packet's holders only
 * if it was there; the last holder deletes the packet. One script, so no other broker's
 * acknowledgement runs in between.
 */
const CLEAR = `
local removed = redis.call('LREM', KEYS[1], 0, ARGV[1])
if removed > 0 then
  if redis.call('DECRBY', KEYS[3], removed) <= 0 then redis.call('DEL', KEYS[2], KEYS[3]) end
end
return removed`

type Counted = Redis & {
  skylineClearOutgoing(
    queue: string,
    packet: string,
    count: string,
    member: string,
  ): Promise<number>
}

/**
 * A QoS 1 message is taken off a persistent session's queue in Redis exactly when that
 * session acknowledges it, and deleted only when no session's queue holds it any more.
 *
 * aedes-persistence-redis 12 keeps one copy of a queued packet for all the sessions it
 * is queued for, with a count of them, and on every PUBACK removes the packet from the
 * session's queue and decrements the count, whether the queue still held it or not. A
 * session that acknowledges a message twice (a QoS 1 redelivery after a reconnect, which
 * every fault of the cluster makes) counted it off for another session too: the count
 * reached 0, the packet was deleted while the api's queue still named it, and the api's
 * next reconnect skipped it as missing: an acknowledged message lost. It also wrote each
 * delivery's packet identifier into the shared copy, so a replayed queue reused another
 * session's identifiers, and a PUBACK for one message could clear another.
 *
 * Here QoS 1 deliveries are tracked per connection (the identifier → packet map lives
 * and dies with the client object) without touching the stored packet, so a replayed
 * queue gets fresh identifiers from the client, and the acknowledgement runs `CLEAR`.
 * QoS 2 (PUBREC, PUBREL, PUBCOMP) stays with aedes-persistence-redis. Needs one Redis, not
 * Redis Cluster (the script's keys are in different slots).
 */
export function countedOutgoingAcks<P extends object>(persistence: P, conn: Redis): P {
  const acks = persistence as P & OutgoingAcks
  const redis = conn as Counted
  redis.defineCommand('skylineClearOutgoing', { numberOfKeys: 3, lua: CLEAR })
  const inFlight = new WeakMap<object, Map<number, string>>()
  const update = acks.outgoingUpdate.bind(acks)
  const clear = acks.outgoingClearMessageId.bind(acks)
  const isQos1 = (
    p: QueuedPacket,
  ): p is QueuedPacket & { brokerId: string; brokerCounter: number } =>
    (p.cmd ?? 'publish') === 'publish' &&
    p.qos === 1 &&
    p.brokerId !== undefined &&
    p.brokerCounter !== undefined

  acks.outgoingUpdate = async (client, packet) => {
    if (!isQos1(packet) || packet.messageId === undefined) return update(client, packet)
    let ids = inFlight.get(client)
    if (ids === undefined) inFlight.set(client, (ids = new Map<number, string>()))
    ids.set(packet.messageId, packetKey(packet))
  }

  acks.outgoingClearMessageId = async (client, packet) => {
    const ids = inFlight.get(client)
    let key = packet.messageId === undefined ? undefined : ids?.get(packet.messageId)
    if (key !== undefined) ids?.delete(packet.messageId!)
    // A queued packet dropped unsent (not authorized any more): taken off the queue too.
    else if (isQos1(packet)) key = packetKey(packet)
    else return clear(client, packet)
    const id = (client as { id: string }).id
    await redis.skylineClearOutgoing(queueKey(id), key, `${key}:offlineCount`, key)
    return undefined
  }
  return persistence
}
