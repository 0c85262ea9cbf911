import { ServerError } from "../errors.js";

/**
 * What iptables-restore's complaint says, as an error for the client: the line it refused (found by `lineAt` from the
 * line number it printed) and its reason. It reports a line it could not parse as "Error occurred at line: N" (after
 * the reason) and a COMMIT the kernel refused as "line N failed". Undefined when it names no line.
 */
export function restoreRefusal(tool: string, stderr: string, lineAt: (lineNumber: number) => string | undefined): ServerError | undefined {
  const number = /line (\d+) failed|Error occurred at line: (\d+)/.exec(stderr);
  const offending = number === null ? undefined : lineAt(Number(number[1] ?? number[2]));
  if (offending === undefined || offending === "") return undefined;
  // The reason follows "line N failed: ", or is the first line after the tool's "iptables-restore v1.8.9 (nf_tables): ".
  const reason = (/line \d+ failed: (.*)/.exec(stderr)?.[1] ?? (stderr.split("\n").find((line) => line.trim() !== "") ?? "").replace(/^\S+ v[\d.]+ \([^)]*\): /, "")).trim();
  const because = reason === "" || /line \d+ failed/.test(reason) ? "" : `: ${reason.slice(0, 200)}`;
  return new ServerError(
    "RULESET_REJECTED",
    `${tool} refused the change at "${offending.slice(0, 300)}"${because}; nothing was applied`,
    { line: offending.slice(0, 300) },
  );
}
