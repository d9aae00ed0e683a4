import type { Client } from 'aedes'

/** The parts of mqtt-packet's Parser this guard relies on (mqtt-packet 9). */
interface ParserInternals {
  packet: { length: number }
  _parseLength: (this: ParserInternals) => boolean
  _emitError(err: Error): void
}

/**
 * Refuses a packet as soon as its fixed header announces a remaining length above
 * `maxBytes`, before its body is buffered: aedes and mqtt-packet have no such limit,
 * so one client could otherwise make the broker hold up to 256 MB for one packet.
 * The client is disconnected, as MQTT 3.1.1 has no reason code to send.
 */
export function packetSizeLimit(maxBytes: number, onRefused: () => void): (client: Client) => void {
  let parseLength: ParserInternals['_parseLength'] | undefined
  // One guard for every client, read from the parser's prototype on first use: a
  // closure per connection would cost each idle connection about 180 bytes.
  function guard(this: ParserInternals): boolean {
    const complete = parseLength!.call(this)
    if (complete && this.packet.length > maxBytes) {
      onRefused()
      this._emitError(new Error(`packet of ${this.packet.length} bytes exceeds ${maxBytes}`))
      return false
    }
    return complete
  }
  return (client) => {
    const parser = (client as unknown as { _parser: ParserInternals })._parser
    parseLength ??= parser._parseLength
    parser._parseLength = guard
  }
}
