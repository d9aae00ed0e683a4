import { isUtf8 } from 'node:buffer'
import type { Client } from 'aedes'

/** A protocol violation on which the connection is closed, as counted in metrics. */
export type ProtocolViolation = 'invalid_utf8' | 'null_character' | 'no_topic_filters'

/** The parts of mqtt-packet's Parser these checks rely on (mqtt-packet 9). */
interface ParserInternals {
  _pos: number
  _list: { slice(start: number, end: number): Buffer }
  packet: { subscriptions?: unknown[]; unsubscriptions?: unknown[] }
  error: Error | null
  _parseString(this: ParserInternals): string | null
  _parseSubscribe(this: ParserInternals): unknown
  _parseUnsubscribe(this: ParserInternals): unknown
  _emitError(err: Error): void
}

/**
 * The MQTT 3.1.1 rules that mqtt-packet (which aedes parses with) does not apply:
 * every UTF-8 string of a packet (topics, filters, will topic, client id, user name)
 * must be well-formed [MQTT-1.5.3-1] and hold no U+0000 [MQTT-1.5.3-2], and an
 * UNSUBSCRIBE or SUBSCRIBE must carry a topic filter [MQTT-3.10.3-2] [MQTT-3.8.3-3]. On
 * a violation the parser fails the packet, which is never handled, and aedes closes
 * the connection, as those clauses say. Checked while parsing, so that no part of the
 * broker (ACL, routing, retained store, wills) ever sees such a string.
 */
export function protocolChecks(
  onViolation: (violation: ProtocolViolation) => void,
): (client: Client) => void {
  let checked: CheckedMethods | undefined
  return (client) => {
    const parser = (client as unknown as { _parser: ParserInternals })._parser
    // The same three functions for every parser, made once from mqtt-packet's own: a
    // few bytes per connection. (A prototype of them put under each parser with
    // Object.setPrototypeOf cost each about 400 bytes: V8 gave each parser a map.)
    checked ??= checkedMethods(
      Object.getPrototypeOf(parser) as ParserInternals,
      (parser, violation, message) => {
        if (parser.error !== null) return // the packet has failed already
        onViolation(violation)
        parser._emitError(new Error(message))
      },
    )
    parser._parseString = checked._parseString
    parser._parseSubscribe = checked._parseSubscribe
    parser._parseUnsubscribe = checked._parseUnsubscribe
  }
}

type CheckedMethods = Pick<
  ParserInternals,
  '_parseString' | '_parseSubscribe' | '_parseUnsubscribe'
>

function checkedMethods(
  base: ParserInternals,
  fail: (parser: ParserInternals, violation: ProtocolViolation, message: string) => void,
): CheckedMethods {
  return {
    _parseString(this: ParserInternals) {
      const start = this._pos + 2 // after the two-byte length [MQTT-1.5.3]
      const value = base._parseString.call(this)
      // Buffer#toString puts U+FFFD for each ill-formed sequence (overlong forms and
      // encoded surrogates included), so a decoded string without it was well-formed.
      // Only one with it (rare: a client may send U+FFFD itself) has its bytes checked.
      if (value === null || (!value.includes('\uFFFD') && !value.includes('\u0000'))) {
        return value
      }
      if (value.includes('\u0000')) {
        fail(this, 'null_character', 'U+0000 in a UTF-8 string [MQTT-1.5.3-2]')
      } else if (!isUtf8(this._list.slice(start, this._pos))) {
        fail(this, 'invalid_utf8', 'ill-formed UTF-8 string [MQTT-1.5.3-1]')
      }
      // The parser goes on to the end of the packet, then drops it as failed.
      return value
    },
    _parseSubscribe(this: ParserInternals) {
      const result = base._parseSubscribe.call(this)
      if (this.packet.subscriptions?.length === 0) {
        fail(this, 'no_topic_filters', 'SUBSCRIBE without topic filters [MQTT-3.8.3-3]')
      }
      return result
    },
    _parseUnsubscribe(this: ParserInternals) {
      const result = base._parseUnsubscribe.call(this)
      if (this.packet.unsubscriptions?.length === 0) {
        fail(this, 'no_topic_filters', 'UNSUBSCRIBE without topic filters [MQTT-3.10.3-2]')
      }
      return result
    },
  }
}
