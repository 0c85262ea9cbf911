import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { VictimAttacker } from "../harness/netns.js";
import { canConnect } from "../harness/tcp.js";
import { startJailHosts, type JailHosts } from "../harness/jail-hosts.js";
import { rest } from "../harness/rest.js";
import { waitFor } from "../harness/wait.js";

const root = resolve(import.meta.dirname, "../..");
const run = promisify(execFile);
const { victimV4, attackerV4 } = VictimAttacker;

let setup: JailHosts;
let scratch: string;
let env: NodeJS.ProcessEnv;
before(async () => {
  setup = await startJailHosts(["maxretry = 5", "findtime = 600", "bantime = 600"], (socket) => `portcullis.py[socket="${socket}"]`);
  scratch = mkdtempSync(join(tmpdir(), "pc-sdk-examples-"));
  // How the examples find the server: the variables a user would set.
  env = { ...process.env, PORTCULLIS_ADDRESS: setup.f.server.address, PORTCULLIS_BUNDLE: join(setup.f.server.dataDir, "pki/clients/admin") };
});
after(async () => {
  rmSync(scratch, { recursive: true, force: true });
  await setup?.close();
});

const example = (name: string, ...args: string[]) => run(process.execPath, ["--import", "tsx", join(root, "sdk/examples", name), ...args], { cwd: root, env, encoding: "utf8" });

it("sdk/examples: mirror-bans streams the bans ban-from-file makes as JSON lines; jail-status prints them like fail2ban-client", async () => {
  const subscribers = async (): Promise<number> => Number(/^portcullis_event_subscribers (\d+)$/m.exec((await rest(setup.f.server, "GET", "/metrics")).text)?.[1]);
  assert.equal(await subscribers(), 0);
  const mirror = spawn(process.execPath, ["--import", "tsx", join(root, "sdk/examples/mirror-bans.ts"), "--count", "3"], { cwd: root, env, stdio: ["ignore", "pipe", "inherit"] });
  let mirrored = "";
  mirror.stdout.setEncoding("utf8").on("data", (chunk: string) => (mirrored += chunk));
  const mirrorDone = new Promise<number | null>((resolvePromise) => mirror.once("exit", resolvePromise));
  try {
    // The mirror hears bans made once its event stream is open: the server counts it as its one subscriber.
    await waitFor("the mirror's event stream", async () => (await subscribers()) > 0, { every: 100 });
    const list = join(scratch, "bad.txt");
    writeFileSync(list, `# from the mail log\n${attackerV4}\n203.0.113.50\n\n203.0.113.51  # twice below\n203.0.113.51\n`);
    const banned = await example("ban-from-file.ts", "dovecot", list);
    assert.equal(banned.stdout, "banned 3 new of 4 addresses in jail dovecot\n");
    assert.equal(await canConnect(setup.hosts.attacker.name, victimV4, 143), false, "banned: the connect must fail");

    const status = await example("jail-status.ts", "dovecot");
    assert.match(status.stdout, /^Status for the jail: dovecot\n\|- Filter\n\|  \|- Currently failed:\t0\n/);
    assert.match(status.stdout, /   \|- Currently banned:\t3\n/);
    assert.match(status.stdout, new RegExp(`Banned IP list:\\t${attackerV4.replaceAll(".", "\\.")} 203\\.0\\.113\\.50 203\\.0\\.113\\.51\\n$`));

    assert.equal(await mirrorDone, 0);
    const lines = mirrored.trim().split("\n").map((line) => JSON.parse(line) as { kind: string; jail: string; address: string; principal: string });
    assert.deepEqual(lines.map((line) => [line.kind, line.jail, line.address, line.principal]), [
      ["ban", "dovecot", attackerV4, "admin"],
      ["ban", "dovecot", "203.0.113.50", "admin"],
      ["ban", "dovecot", "203.0.113.51", "admin"],
    ]);

    const refused = await example("ban-from-file.ts", "dovecot", join(scratch, "missing.txt")).then(() => undefined, (error: { code: number }) => error.code);
    assert.equal(refused, 1);
    writeFileSync(list, "192.0.2.999\n");
    const invalid = await example("ban-from-file.ts", "dovecot", list).then(() => undefined, (error: { code: number; stderr: string }) => error);
    assert.equal(invalid?.code, 1);
    assert.match(invalid!.stderr, /^InvalidArgument \(INVALID_ELEMENT\): /);
  } finally {
    mirror.kill();
  }
});
