type Done = (err?: Error | null) => void

interface Held {
  done: Done
  ready: boolean
  err: Error | null | undefined
}

/**
 * The PUBACKs of one client's QoS 1 publishes, in the order the publishes came
 * [MQTT-4.6.0-2], however their routing completes.
 *
 * The broker acknowledges a QoS 1 publish only once it is routed and queued for every
 * persistent session (see SkylineAedes.publish), and publishes of one read are routed
 * at once, each as fast as its persistence writes go: a message two sessions match
 * completes after a later one only one matches. Each publish holds a place here when it
 * arrives; its acknowledgement goes when it and every one before it are done.
 */
export class AckOrder {
  private readonly held = new WeakMap<object, Held[]>()

  /** Holds a place for `client`'s next publish: call the returned function when it is routed. */
  hold(client: object, done: Done): Done {
    let queue = this.held.get(client)
    if (queue === undefined) this.held.set(client, (queue = []))
    const entry: Held = { done, ready: false, err: undefined }
    queue.push(entry)
    return (err) => {
      entry.ready = true
      entry.err = err
      while (queue.length > 0 && queue[0]!.ready) {
        const next = queue.shift()!
        next.done(next.err)
      }
    }
  }
}
