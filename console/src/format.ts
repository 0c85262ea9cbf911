/** Numbers, sizes, times and durations as the console shows them (the browser's locale for numbers and dates). */

const numbers = new Intl.NumberFormat();

export function formatCount(value: number | string | undefined): string {
  return numbers.format(Number(value ?? 0));
}

export function formatBytes(value: number | string | undefined): string {
  let size = Number(value ?? 0);
  for (const unit of ["B", "KiB", "MiB", "GiB", "TiB"]) {
    if (size < 1024 || unit === "TiB") return `${unit === "B" ? size : size.toFixed(1)} ${unit}`;
    size /= 1024;
  }
  return `${size} B`;
}

/** 90 → "1m 30s"; 86400 → "1d"; negative (fail2ban's -1) → "forever". */
export function formatDuration(seconds: number | string | undefined): string {
  let left = Math.round(Number(seconds ?? 0));
  if (left < 0) return "forever";
  if (left === 0) return "0s";
  const parts: string[] = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]] as const) {
    const count = Math.floor(left / size);
    if (count > 0) parts.push(`${count}${unit}`);
    left -= count * size;
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

export function formatTime(iso: string | undefined): string {
  if (iso === undefined || iso === "") return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** "12s ago", "3m ago", … from `now`. */
export function formatAgo(iso: string | undefined, now: number): string {
  if (iso === undefined || iso === "") return "never";
  const seconds = Math.max(0, (now - new Date(iso).getTime()) / 1000);
  return `${formatDuration(seconds)} ago`;
}

/** Seconds from now until `iso` (0 once passed). */
export function secondsUntil(iso: string | undefined, now: number): number {
  if (iso === undefined || iso === "") return 0;
  return Math.max(0, Math.ceil((new Date(iso).getTime() - now) / 1000));
}
