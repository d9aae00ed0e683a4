import mqtt from 'mqtt'
import type { IClientOptions, MqttClient } from 'mqtt'
import { generate } from 'mqtt-packet'
import { keepRenewed } from '@skyline/auth'
import type { IssuedToken, Renewal } from '@skyline/auth'

/** Reconnect backoff, ms: doubles from `first` up to `max` while attempts fail. */
export const RECONNECT_MS = { first: 500, max: 30_000 } as const

/** A refusal the device cannot fix by trying again (bad token, not authorized). */
export class RefusedError extends Error {
  constructor(
    readonly clientId: string,
    readonly returnCode: number,
  ) {
    super(
      `broker refused ${clientId} (CONNACK ${returnCode}): check DEVICE_TOKEN_SECRET (or the OIDC client) and the broker's roles`,
    )
  }
}

/**
 * One device's MQTT connection. It reconnects by itself after any drop, with
 * exponential backoff and jitter (mqtt.js alone retries at a fixed period, so a fleet
 * that drops at once would come back at once), and can be dropped on purpose without
 * a DISCONNECT for chaos testing. QoS 1/2 messages published while offline or not yet
 * acknowledged are kept by mqtt.js and sent on reconnect. A token that expires is
 * renewed before it does, and the connection moves to it without a will firing.
 */
export class Connection {
  readonly client: MqttClient
  private delayMs: number = RECONNECT_MS.first
  private plannedDelayMs: number | undefined
  private timer: NodeJS.Timeout | undefined
  private stopped = false
  private renewal: Renewal | undefined

  private constructor(
    url: string,
    options: IClientOptions,
    onConnect: (conn: Connection, first: boolean) => void,
    private readonly freshWill?: () => IClientOptions['will'],
  ) {
    this.client = mqtt.connect(url, {
      ...options,
      reconnectPeriod: 0, // reconnects are ours, see above
      queueQoSZero: false, // telemetry that could not be sent is stale: drop it
    })
    let first = true
    this.client.on('connect', () => {
      this.delayMs = RECONNECT_MS.first
      onConnect(this, first)
      first = false
    })
    this.client.on('close', () => this.scheduleReconnect())
  }

  /** Connects and resolves on the first CONNACK; a refusal of that first attempt is final. */
  static open(
    url: string,
    options: IClientOptions,
    /** Called on every CONNACK, the first included, before open() resolves. */
    onConnect: (conn: Connection, first: boolean) => void,
    /** The will to leave on each reconnect (its ts is that connection's). */
    freshWill?: () => IClientOptions['will'],
  ): Promise<Connection> {
    const conn = new Connection(url, options, onConnect, freshWill)
    return new Promise((resolve, reject) => {
      let connected = false
      // Also keeps later errors (a failed reconnect) from being unhandled 'error' events.
      conn.client.on('error', (err: Error & { code?: number }) => {
        if (!connected && typeof err.code === 'number' && err.code >= 1 && err.code <= 5) {
          conn.stopped = true
          conn.client.end(true)
          reject(new RefusedError(String(options.clientId), err.code))
        }
      })
      conn.client.once('connect', () => {
        connected = true
        resolve(conn)
      })
    })
  }

  get connected(): boolean {
    return this.client.connected
  }

  /**
   * Renews a token that expires (an OIDC one) before it does: MQTT 3.1.1 cannot
   * re-authenticate a connection, so the connection ends cleanly with DISCONNECT (the
   * broker fires no will) and reconnects at once with the new token, on the same
   * session, with what mqtt.js had not yet had acknowledged. A failed renewal is tried
   * again; until one succeeds, reconnects use the last token.
   */
  keepTokenFresh(token: IssuedToken, renew: () => Promise<IssuedToken>): void {
    if (!Number.isFinite(token.expiresAt) || this.stopped) return
    this.renewal?.stop()
    this.renewal = keepRenewed(
      token,
      renew,
      (next) => this.moveTo(next.accessToken),
      (err) => this.client.emit('error', err),
    )
  }

  private moveTo(password: string): void {
    this.client.options.password = password
    if (!this.client.connected || this.plannedDelayMs !== undefined) return
    this.plannedDelayMs = 0
    // mqtt.js has no "disconnect and go on": end() refuses publishes until it is done
    // and reconnect() after it starts with empty stores. The broker closes the socket
    // on DISCONNECT; mqtt.js sees a lost connection and scheduleReconnect takes over.
    this.client.stream.write(generate({ cmd: 'disconnect' }))
  }

  /** Destroys the socket without a DISCONNECT, so the broker publishes the will; back after `downMs`. */
  dropFor(downMs: number): boolean {
    if (!this.client.connected || this.plannedDelayMs !== undefined) return false
    this.plannedDelayMs = downMs
    this.client.stream.destroy()
    return true
  }

  /**
   * Publishes a last retained status (QoS 1, given `timeoutMs` to be acknowledged),
   * then disconnects cleanly: a device that leaves on purpose says so, and no will fires.
   */
  async closeWithStatus(topic: string, status: object, timeoutMs = 2_000): Promise<void> {
    if (this.client.connected) {
      const published = this.client.publishAsync(topic, JSON.stringify(status), {
        qos: 1,
        retain: true,
      })
      await Promise.race([
        published.catch(() => {}),
        new Promise((r) => setTimeout(r, timeoutMs).unref()),
      ])
    }
    await this.close(timeoutMs)
  }

  /**
   * Disconnects cleanly (DISCONNECT: no will) and stops reconnecting. mqtt.js waits
   * for unacknowledged QoS 1/2 messages before it ends, which never come on a dead
   * connection: after `timeoutMs` (or at once when offline) it is forced.
   */
  async close(timeoutMs = 2_000): Promise<void> {
    this.stopped = true
    this.renewal?.stop()
    clearTimeout(this.timer)
    if (!this.client.connected) {
      await this.client.endAsync(true)
      return
    }
    let timer: NodeJS.Timeout | undefined
    const forced = new Promise<void>((resolve) => {
      timer = setTimeout(() => void this.client.endAsync(true).then(resolve), timeoutMs)
    })
    await Promise.race([this.client.endAsync(), forced])
    clearTimeout(timer)
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.timer !== undefined) return
    const delay = this.plannedDelayMs ?? this.delayMs * (0.75 + Math.random() / 2)
    this.plannedDelayMs = undefined
    this.delayMs = Math.min(RECONNECT_MS.max, this.delayMs * 2)
    this.timer = setTimeout(() => {
      this.timer = undefined
      if (this.stopped) return
      // mqtt.js sends the will it was created with; a will's ts should be this connection's.
      if (this.freshWill !== undefined) this.client.options.will = this.freshWill()
      // The same stores: without them mqtt.js starts afresh and forgets the QoS 1/2
      // messages published while offline and those not yet acknowledged.
      const { incomingStore, outgoingStore } = this.client
      this.client.reconnect({ incomingStore, outgoingStore })
    }, delay)
  }
}
