import type { Parts } from './parts.ts'

/** One line of the chaos table. */
export interface Row {
  attack: string
  expected: string
  happened: string
  /** QoS 1 messages sent and never stored (0 where the attack sends none that count). */
  lost: number
  /** A table of its own, printed after the chaos table (the cluster's phases). */
  detail?: string
}

export interface Attack {
  /** For `npm run chaos -- --only NAME`. */
  name: string
  run(parts: Parts, o: { quick: boolean; signal: AbortSignal }): Promise<Row>
}

/** The table as Markdown, for the terminal and the README alike. */
export function chaosTable(rows: Row[]): string {
  const cell = (s: string) => s.replaceAll('|', '\\|')
  return [
    '| attack | expected | what happened | QoS 1 lost |',
    '| --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${cell(r.attack)} | ${cell(r.expected)} | ${cell(r.happened)} | ${r.lost.toLocaleString('en-US')} |`,
    ),
  ].join('\n')
}
