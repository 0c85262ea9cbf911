import { subjectOf, type HostEvent } from "./event-model.js";

/** The header line of an event export in CSV. */
export const CSV_HEADER = "sequence,time,type,resource,principal,origin,jail,address,attributes\r\n";

/** One event as a CSV record (RFC 4180, CRLF-terminated); its attributes are one cell holding a JSON object. */
export function csvRecord(event: HostEvent): string {
  const { jail, address } = subjectOf(event);
  return [String(event.sequence), new Date(event.time).toISOString(), event.type, event.resource, event.principal, event.origin, jail ?? "", address ?? "", JSON.stringify(event.attributes)]
    .map(csvCell)
    .join(",") + "\r\n";
}

/**
 * A cell that a spreadsheet reads as the text it holds. One that starts like a formula (=, +, -, @, a tab or a
 * carriage return) gets a leading single quote, as OWASP's CSV injection advice says; then any cell holding a comma,
 * a quote or a line break is quoted, its quotes doubled (RFC 4180).
 */
export function csvCell(text: string): string {
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}
