// Captures written by hand, in tshark's `-T fields` form (bench/capture.ts's FIELDS):
// IPv4 and TCP headers of 52 bytes (TCP timestamps on), the 14-byte loopback link header.

/** One line of tshark's fields: a segment with `len` payload bytes and `flags` (S, A, F, R). */
export const seg = (stream: number, src: number, dst: number, len: number, flags = ''): string =>
  [
    stream,
    src,
    dst,
    14 + 52 + len,
    52 + len,
    len,
    flags.includes('S') ? 1 : 0,
    flags.includes('A') ? 1 : 0,
    flags.includes('F') ? 1 : 0,
    flags.includes('R') ? 1 : 0,
  ].join('\t')

/** A connection from `client` to 1883 with `data` bytes each way and a clean close. */
export function conn(stream: number, client: number, data: number[]): string[] {
  return [
    seg(stream, client, 1883, 0, 'S'),
    seg(stream, 1883, client, 0, 'SA'),
    seg(stream, client, 1883, 0, 'A'),
    ...data.map((len, i) =>
      i % 2 ? seg(stream, 1883, client, len, 'A') : seg(stream, client, 1883, len, 'A'),
    ),
    seg(stream, client, 1883, 0, 'AF'),
    seg(stream, 1883, client, 0, 'AF'),
    seg(stream, client, 1883, 0, 'A'),
  ]
}
