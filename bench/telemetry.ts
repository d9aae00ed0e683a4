// The telemetry payload every publisher sends, with a per-publisher `seq` patched in
// place, so the subscriber finds gaps (losses) without parsing JSON.

/** Digits kept for `seq`, space-padded (JSON allows the spaces) so it can be patched in place. */
const SEQ_WIDTH = 10

/** A telemetry message as drones send it (~160 bytes), with room for `seq` at `seqAt`. */
export function telemetryPayload(): { payload: Buffer; seqAt: number } {
  const head = `{"v":1,"ts":${Date.now()},"seq":`
  const tail =
    ',"lat":47.376887,"lon":8.541694,"altM":512.4,"speedMps":12.5,' +
    '"headingDeg":271.3,"batteryPct":87.5,"state":"en_route"}'
  const payload = Buffer.from(head + ' '.repeat(SEQ_WIDTH) + tail)
  writeSeq(payload, head.length, 0)
  return { payload, seqAt: head.length }
}

export function writeSeq(buf: Buffer, at: number, seq: number): void {
  let n = seq
  for (let i = at + SEQ_WIDTH - 1; i >= at; i--) {
    buf[i] = n === 0 && i < at + SEQ_WIDTH - 1 ? 0x20 : 0x30 + (n % 10)
    n = Math.floor(n / 10)
  }
}

export function readSeq(buf: Buffer, at: number): number {
  let n = 0
  for (let i = at; i < at + SEQ_WIDTH; i++) {
    const c = buf[i]!
    if (c !== 0x20) n = n * 10 + (c - 0x30)
  }
  return n
}
