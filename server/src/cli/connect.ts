// How every client command reaches the server and reports back: connection flags, one client per command, errors
// turned into messages and exit codes that scripts can rely on. Client commands use only the public SDK.
import type { Command } from "commander";
import { CancellationTokenSource, createClient, PortcullisError, type CancellationToken, type ErrorCode, type PortcullisClient } from "@portcullis/sdk";

/** Exit codes of the client commands (also in `portcullis --help` and the README). */
export const EXIT = {
  ok: 0,
  /** A negative answer to a question (`sets test`: not in the set). */
  no: 1,
  /** Bad command line, or input the server refused as invalid. */
  usage: 2,
  notFound: 3,
  /** Already exists, or refused in the current state (a set in use, a change that would lock you out, …). */
  conflict: 4,
  /** No or wrong certificate, or a role that may not do this. */
  denied: 5,
  /** Server or fail2ban unreachable, or too slow. */
  unavailable: 6,
  failed: 7,
  /** A limit was reached: a set is full (maxelem or grow_limit), a batch too large, too many requests. */
  full: 8,
  interrupted: 130,
} as const;

export const EXIT_CODES_HELP = `
Exit codes: 0 ok, 1 no (sets test: not in the set), 2 usage or invalid input, 3 not found,
4 conflict (exists already, in use, would lock you out), 5 not allowed (certificate or role),
6 unavailable (server or fail2ban down, timeout), 7 other failure, 8 limit reached (set full, batch too
large), 130 interrupted.`;

/** Every gRPC code's exit code: a complete record, so a code added to the SDK cannot go unmapped. */
const EXIT_OF: Readonly<Record<ErrorCode, number>> = {
  InvalidArgument: EXIT.usage,
  OutOfRange: EXIT.usage,
  NotFound: EXIT.notFound,
  AlreadyExists: EXIT.conflict,
  FailedPrecondition: EXIT.conflict,
  Aborted: EXIT.conflict,
  PermissionDenied: EXIT.denied,
  Unauthenticated: EXIT.denied,
  Unavailable: EXIT.unavailable,
  DeadlineExceeded: EXIT.unavailable,
  ResourceExhausted: EXIT.full,
  Cancelled: EXIT.interrupted,
  Unknown: EXIT.failed,
  Unimplemented: EXIT.failed,
  Internal: EXIT.failed,
  DataLoss: EXIT.failed,
};

/** Flags every client command takes. */
export interface ClientFlags {
  readonly address?: string;
  readonly bundle?: string;
  readonly profile?: string;
  readonly json?: boolean;
}

/** A wrong command line found after commander's own checks (exits with EXIT.usage). */
export class UsageError extends Error {}

/** A client command with the connection flags, `--json`, and its examples at the end of its `--help`. */
export function clientCommand(parent: Command, name: string, description: string, examples: readonly string[]): Command {
  return parent
    .command(name)
    .description(description)
    .addHelpText("after", `\nExample${examples.length === 1 ? "" : "s"}:\n${examples.map((example) => `  ${example}`).join("\n")}`)
    .option("--address <host:port>", "server's gRPC address (default: the profile's, PORTCULLIS_ADDRESS, or localhost:50051)")
    .option("--bundle <dir>", "client certificate bundle with ca.crt, client.crt, client.key (or PORTCULLIS_BUNDLE)")
    .option("--profile <name>", "a profile of ~/.config/portcullis/config.json")
    .option("--json", "print JSON for scripts instead of text");
}

/**
 * Runs a command's work with a client: Ctrl-C cancels the call in flight; the exit code is what `work` returns (ok by
 * default) or the one of its error.
 */
export async function withClient(flags: ClientFlags, work: (client: PortcullisClient, token: CancellationToken) => Promise<number | void>): Promise<void> {
  const cancel = new CancellationTokenSource();
  const onInterrupt = (): void => cancel.cancel();
  process.once("SIGINT", onInterrupt);
  let client: PortcullisClient | undefined;
  try {
    client = createClient({
      ...(flags.address === undefined ? {} : { address: flags.address }),
      ...(flags.bundle === undefined ? {} : { bundle: flags.bundle }),
      ...(flags.profile === undefined ? {} : { profile: flags.profile }),
    });
    process.exitCode = (await work(client, cancel.token)) ?? EXIT.ok;
  } catch (error) {
    process.exitCode = report(error, flags.json ?? false);
  } finally {
    process.off("SIGINT", onInterrupt);
    client?.dispose();
    cancel.dispose();
  }
}

/** Prints an error on stderr (JSON with --json) and returns its exit code. */
export function report(error: unknown, json: boolean): number {
  if (error instanceof UsageError) {
    process.stderr.write(json ? `${JSON.stringify({ error: { code: "Usage", message: error.message } })}\n` : `portcullis: ${error.message}\n`);
    return EXIT.usage;
  }
  if (error instanceof PortcullisError) {
    const detail = { code: error.code, reason: error.reason, message: error.message, ...(Object.keys(error.metadata).length === 0 ? {} : { metadata: error.metadata }) };
    process.stderr.write(json ? `${JSON.stringify({ error: detail })}\n` : `portcullis: ${error.message} (${error.code}${error.reason === "" ? "" : `, ${error.reason}`})\n`);
    return EXIT_OF[error.code];
  }
  const message = error instanceof Error ? error.message : String(error);
  // A certificate, key or input file named on the command line that cannot be read is a usage error.
  const unreadable = ["ENOENT", "EACCES", "EISDIR"].includes((error as NodeJS.ErrnoException).code ?? "");
  process.stderr.write(json ? `${JSON.stringify({ error: { code: unreadable ? "Usage" : "Failed", message } })}\n` : `portcullis: ${message}\n`);
  return unreadable ? EXIT.usage : EXIT.failed;
}
