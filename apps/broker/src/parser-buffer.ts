import type { Client } from 'aedes'
import bl from 'bl'

const { BufferList } = bl

/**
 * mqtt-packet's parser buffers a connection's unparsed bytes in a `bl` BufferListStream:
 * a full Duplex stream (about 1.1 KB of stream state per connection) of which it uses
 * only the list methods (append, consume, readUInt8, slice, length). The plain
 * BufferList of the same package and version has exactly those, without the stream.
 * The parser makes a new list only after an error, when aedes closes the connection.
 */
export function lightParserBuffer(client: Client): void {
  const parser = (client as unknown as { _parser: { _list: { length: number } } })._parser
  if (parser._list.length === 0) parser._list = new BufferList()
}
