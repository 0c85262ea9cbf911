// The `portcullis` command: the server's own commands (serve, certs, install-fail2ban-action) and the client commands
// (cli/, built only on the public SDK). The server's modules are imported when a server command runs, so that a
// client command starts without loading them.
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { Command, CommanderError, Option } from "commander";
import { ConfigError, loadConfig, type ConfigFlags } from "./config.js";
import { ROLE_ORDER, type Role } from "./auth/roles.js";
import { EXIT, EXIT_CODES_HELP, UsageError } from "./cli/connect.js";
import { newPassword } from "./cli/password-prompt.js";
import { registerJailCommands } from "./cli/jail-commands.js";
import { registerFleetCommands } from "./cli/fleet-commands.js";
import { registerHostCommands } from "./cli/host-commands.js";
import { registerFeedCommands } from "./cli/feed-commands.js";
import { registerBouncerCommands } from "./cli/bouncer-commands.js";
import { registerSetCommands } from "./cli/set-commands.js";
import { registerRuleCommands } from "./cli/rule-commands.js";
import { registerWatchCommand } from "./cli/watch-command.js";

const program = new Command("portcullis")
  .description("Control plane for iptables, ipset and fail2ban")
  .showHelpAfterError()
  .exitOverride()
  .addHelpText("after", `
Client commands reach the server over mTLS: --address and --bundle, a --profile of ~/.config/portcullis/config.json,
or PORTCULLIS_ADDRESS and PORTCULLIS_BUNDLE.
${EXIT_CODES_HELP}`);

const withConfigOptions = (command: Command): Command =>
  command
    .option("-c, --config <file>", "config file (YAML or JSON); also PORTCULLIS_CONFIG")
    .option("--data-dir <dir>", "state and certificates directory (default ./var); also PORTCULLIS_DATA_DIR");

withConfigOptions(program.command("serve").description("run the gRPC server and the REST gateway"))
  .option("--netns <name>", "run every kernel command inside this network namespace; also PORTCULLIS_NETNS")
  .option("--grpc-address <host:port>", "gRPC listen address (default 127.0.0.1:50051); also PORTCULLIS_GRPC_ADDRESS")
  .option("--rest-address <host:port>", "REST (HTTPS) listen address (default 127.0.0.1:8443); also PORTCULLIS_REST_ADDRESS")
  .option("--metrics-address <host:port>", "also serve GET /metrics over plain HTTP here (loopback only); also PORTCULLIS_METRICS_ADDRESS")
  .addOption(new Option("--log-level <level>", "log level").choices(["trace", "debug", "info", "warn", "error", "fatal", "silent"]))
  .addOption(new Option("--log-format <format>", "json (one object per line) or pretty (for people)").choices(["json", "pretty"]))
  .action(async (flags: ConfigFlags) => {
    const config = loadConfig(flags);
    const [{ createLogger }, { startServer }] = await Promise.all([import("./logger.js"), import("./main.js")]);
    const log = createLogger(config.log.level, config.log.format);
    const server = await startServer(config, log);
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, "shutting down");
      server.close().then(() => process.exit(0), (error: unknown) => {
        log.error({ err: error }, "shutdown failed");
        process.exit(1);
      });
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    // Certificate rotation without downtime: replace the files, then `kill -HUP <pid>`.
    process.on("SIGHUP", () => {
      try {
        server.reloadTls();
      } catch (error) {
        log.error({ err: error }, "TLS reload failed; keeping the current certificate, key and CA");
      }
    });
  });

const certs = program.command("certs").description("manage the CA, server and client certificates");

/** Where certificates live: --pki-dir, else <data dir>/pki. */
function pkiDirOf(flags: ConfigFlags & { pkiDir?: string }): string {
  return flags.pkiDir ?? join(loadConfig(flags).dataDir, "pki");
}

withConfigOptions(certs.command("init").description("create a CA, a server certificate and an admin client bundle"))
  .option("--pki-dir <dir>", "certificate directory (default <data dir>/pki)")
  .option("--host <name...>", "extra DNS names for the server certificate")
  .option("--ip <address...>", "extra IP addresses for the server certificate")
  .option("--force", "replace an existing CA (invalidates every certificate it issued)")
  .option("--json", "print the paths as JSON")
  .action(async (flags: ConfigFlags & { pkiDir?: string; host?: string[]; ip?: string[]; force?: boolean; json?: boolean }) => {
    const { initCertificates } = await import("./auth/cert-authority.js");
    const result = await initCertificates(pkiDirOf(flags), { hostnames: flags.host ?? [], ips: flags.ip ?? [], force: flags.force ?? false });
    if (flags.json === true) return console.log(JSON.stringify({ pkiDir: result.paths.dir, ca: result.paths.caCert, adminBundle: result.admin?.bundleDir ?? null }));
    console.log(`CA and server certificate in ${result.paths.dir}`);
    if (result.admin !== undefined) console.log(`admin client bundle: ${result.admin.bundleDir} (ca.crt, client.crt, client.key)`);
  });

withConfigOptions(certs.command("issue").description("issue a client certificate (CN = name, O = role)"))
  .option("--pki-dir <dir>", "certificate directory (default <data dir>/pki)")
  .requiredOption("--name <name>", "principal name (certificate CN)")
  .addOption(new Option("--role <role>", "role (certificate O)").choices([...ROLE_ORDER]).makeOptionMandatory())
  .option("--days <n>", "validity in days", (value) => Number.parseInt(value, 10), 365)
  .option("--force", "replace an existing bundle of that name")
  .option("--p12", "also write <name>.p12 (certificate, key and CA, password-protected) to import into a browser")
  .option("--password-file <file>", "with --p12: the password is this file's first line (default: asked on the terminal)")
  .option("--json", "print the bundle's paths as JSON")
  .addHelpText("after", "\nExample (a browser certificate for the console):\n  portcullis certs issue --name alice --role operator --p12")
  .action(async (flags: ConfigFlags & { pkiDir?: string; name: string; role: Role; days: number; force?: boolean; p12?: boolean; passwordFile?: string; json?: boolean }) => {
    if (flags.passwordFile !== undefined && flags.p12 !== true) throw new UsageError("--password-file goes with --p12");
    // Asked before anything is written, so that a mistyped password leaves no half-made bundle.
    const p12Password = flags.p12 === true ? await newPassword(`${flags.name}.p12`, flags.passwordFile) : undefined;
    const { issueClientCertificate } = await import("./auth/cert-authority.js");
    const bundle = await issueClientCertificate(pkiDirOf(flags), { name: flags.name, role: flags.role, validDays: flags.days, force: flags.force ?? false, ...(p12Password === undefined ? {} : { p12Password }) });
    const p12 = p12Password === undefined ? {} : { p12: bundle.p12Path };
    if (flags.json === true) return console.log(JSON.stringify({ name: flags.name, role: flags.role, bundle: bundle.bundleDir, ca: bundle.caPath, cert: bundle.certPath, key: bundle.keyPath, ...p12 }));
    console.log(`client bundle for ${flags.name} (${flags.role}): ${bundle.bundleDir} (ca.crt, client.crt, client.key${p12Password === undefined ? "" : `, ${flags.name}.p12 for browsers`})`);
  });

withConfigOptions(certs.command("revoke").description("revoke a client certificate; a running server applies it within a second"))
  .argument("<name>", "principal name of the bundle to revoke")
  .option("--pki-dir <dir>", "certificate directory (default <data dir>/pki)")
  .option("--json", "print the revoked serial as JSON")
  .action(async (name: string, flags: ConfigFlags & { pkiDir?: string; json?: boolean }) => {
    const { revokeCertificate } = await import("./auth/cert-authority.js");
    const { serialNumber } = await revokeCertificate(pkiDirOf(flags), name);
    if (flags.json === true) return console.log(JSON.stringify({ revoked: name, serialNumber }));
    console.log(`revoked ${name} (serial ${serialNumber})`);
  });

withConfigOptions(program.command("install-fail2ban-action").description("copy the Portcullis action into fail2ban's action.d/ (use it as `action = portcullis.py[socket=…]`)"))
  .option("--fail2ban-config-dir <dir>", "fail2ban's configuration directory (default: the config's fail2ban.configDir)")
  .action((flags: ConfigFlags & { fail2banConfigDir?: string }) => {
    const config = loadConfig(flags);
    const target = join(flags.fail2banConfigDir ?? config.fail2ban.configDir, "action.d", "portcullis.py");
    mkdirSync(join(target, ".."), { recursive: true });
    // Next to src/ and dist/ alike: the action ships with the server package.
    copyFileSync(new URL("../fail2ban/action.d/portcullis.py", import.meta.url), target);
    const socket = config.fail2ban.actionSocket ?? join(config.dataDir, "fail2ban-action.sock");
    console.log(`installed ${target}; in a jail: action = portcullis.py[socket="${socket}"]  (optional: ipv6_prefix=64)`);
  });

withConfigOptions(program.command("doctor").description("check what the server needs on this host: tools, kernel, fail2ban, certificates, data dir, clock"))
  .option("--netns <name>", "check inside this network namespace; also PORTCULLIS_NETNS")
  .option("--json", "print the checks as JSON")
  .addHelpText("after", "\nExits 1 when a check fails (warnings do not).\nExample:\n  portcullis doctor --config /etc/portcullis/config.yaml")
  .action(async (flags: ConfigFlags & { json?: boolean }) => {
    const config = loadConfig(flags);
    const [{ createLogger }, { runDoctor, doctorReport }] = await Promise.all([import("./logger.js"), import("./doctor/doctor.js")]);
    const checks = await runDoctor(config, createLogger("silent"));
    process.stdout.write(flags.json === true ? `${JSON.stringify(checks, null, 2)}\n` : doctorReport(checks));
    process.exitCode = checks.some((check) => check.status === "fail") ? 1 : 0;
  });

withConfigOptions(program.command("healthcheck").description("ask the running server's gRPC health service whether it is serving (exit 0) or not (exit 1)"))
  .option("--address <host:port>", "the server (default: grpc.address of the config, a wildcard asked on loopback)")
  .option("--bundle <dir>", "client bundle (default: <data dir>/pki/clients/admin)")
  .option("--service <name>", "one service, e.g. portcullis.v1.JailService (default: the server as a whole)", "")
  .addHelpText("after", "\nThe container image's HEALTHCHECK runs it.")
  .action(async (flags: ConfigFlags & { address?: string; bundle?: string; service: string }) => {
    const config = loadConfig(flags);
    const { probeHealth, probeAddress } = await import("./health-probe.js");
    const address = flags.address ?? probeAddress(config.grpc.address);
    try {
      const status = await probeHealth(address, flags.bundle ?? join(config.dataDir, "pki", "clients", "admin"), flags.service);
      console.log(`${address}: ${status}`);
      process.exitCode = status === "SERVING" ? 0 : 1;
    } catch (error) {
      console.error(`portcullis: ${address}: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    }
  });

registerJailCommands(program);
registerSetCommands(program);
registerRuleCommands(program);
registerFleetCommands(program);
registerHostCommands(program);
registerFeedCommands(program);
registerBouncerCommands(program);
registerWatchCommand(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  // Commander has printed its own message (or the help) already.
  if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? EXIT.ok : EXIT.usage);
  const message = error instanceof Error ? error.message : String(error);
  const usage = error instanceof ConfigError || error instanceof UsageError;
  console.error(`portcullis: ${usage ? "" : "error: "}${message}`);
  process.exit(usage ? EXIT.usage : EXIT.failed);
});
