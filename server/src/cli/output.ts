// How client commands print: aligned text tables for people, JSON for scripts, progress only on a terminal.

/** Prints rows under a header, columns padded to their widest cell (the last column is not padded). */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]?.length ?? 0)));
  const line = (cells: readonly string[]): string => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ").trimEnd();
  process.stdout.write(`${[line(header), ...rows.map(line)].join("\n")}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Progress of a long operation on stderr, rewritten in place; silent unless stderr is a terminal. */
export function progress(label: string, total: number): { update(done: number): void; end(): void } {
  if (process.stderr.isTTY !== true) return { update: () => undefined, end: () => undefined };
  const show = (done: number): void => void process.stderr.write(`\r${label}: ${done}/${total} (${total === 0 ? 100 : Math.floor((done / total) * 100)}%)`);
  show(0);
  return { update: show, end: () => void process.stderr.write("\n") };
}
