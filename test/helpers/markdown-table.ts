// The tables the benchmarks print, in Markdown, so that a run can be pasted into docs/bench.md as
// it is.

/** A Markdown table: a first column of names, then right-aligned cells. */
export function markdownTable(header: string[], body: string[][]): string {
  const widths = header.map((_, i) => Math.max(...[header, ...body].map((row) => row[i].length)))
  const line = (row: string[]) =>
    `| ${row
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
      .join(' | ')} |`
  return [
    line(header),
    `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...body.map(line),
  ].join('\n')
}
