// `portcullis doctor` on a host with everything in place (fail2ban running, certificates, a private data dir), then
// with each kind of problem: the report names it and what to do, and the exit code tells scripts.
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync } from "node:fs";
import { resolve } from "node:path";
import { startJailHosts, type JailHosts } from "../harness/jail-hosts.js";

const BIN = resolve(import.meta.dirname, "../../server/bin/portcullis");
let setup: JailHosts;
before(async () => {
  setup = await startJailHosts(["maxretry = 5"]);
});
after(async () => setup?.close());

function doctor(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string }> {
  const base = ["doctor", "--data-dir", setup.f.server.dataDir, "--netns", setup.hosts.victim.name];
  return new Promise((resolvePromise) => {
    execFile(BIN, [...base, ...args], { env: { ...process.env, PORTCULLIS_FAIL2BAN_SOCKET: setup.fail2ban.socket, ...env }, encoding: "utf8" }, (error, stdout) => {
      resolvePromise({ code: error === null ? 0 : typeof error.code === "number" ? error.code : -1, stdout });
    });
  });
}

it("doctor: all in place → exit 0; each check names what it found", async () => {
  const healthy = await doctor(["--json"]);
  assert.equal(healthy.code, 0, healthy.stdout);
  const checks = JSON.parse(healthy.stdout) as Array<{ name: string; status: string; detail: string }>;
  const byName = new Map(checks.map((check) => [check.name, check]));
  assert.match(byName.get("iptables")!.detail, /^iptables v\d+\.\d+\.\d+/);
  assert.match(byName.get("ipset")!.detail, /^ipset v\d+/);
  assert.deepEqual([byName.get("fail2ban socket")!.status, byName.get("fail2ban socket")!.detail], ["ok", `fail2ban 1.0.2 answers on ${setup.fail2ban.socket}`]);
  assert.equal(byName.get("server certificate")!.status, "ok");
  assert.match(byName.get("server certificate")!.detail, /valid until .* \(\d+ days\)$/);
  assert.equal(byName.get("data dir")!.status, "ok");
  assert.ok(checks.every((check) => check.status !== "fail"));

  const text = await doctor([]);
  assert.match(text.stdout, /^ok {4}iptables +iptables v/m);
  assert.match(text.stdout, /\n\nno problems(, \d+ warnings?)?\n$/);
});

it("doctor: fail2ban not answering, a data dir open to everyone → FAIL lines saying what to do, exit 1", async () => {
  const down = await doctor([], { PORTCULLIS_FAIL2BAN_SOCKET: "/run/pc-no-such-fail2ban.sock" });
  assert.equal(down.code, 1);
  assert.match(down.stdout, /^FAIL  fail2ban socket +\/run\/pc-no-such-fail2ban\.sock: .*\(start fail2ban, or set fail2ban\.socket\)$/m);
  assert.match(down.stdout, /\n\n1 problem/);

  chmodSync(setup.f.server.dataDir, 0o777);
  try {
    const open = await doctor([]);
    assert.equal(open.code, 1);
    assert.match(open.stdout, new RegExp(`^FAIL  data dir +${setup.f.server.dataDir} is writable by everyone \\(mode 777\\); chmod 700 `, "m"));
  } finally {
    chmodSync(setup.f.server.dataDir, 0o700);
  }
  const missingNetns = await doctor(["--netns", "pc-no-such-namespace"]);
  assert.equal(missingNetns.code, 1);
  assert.match(missingNetns.stdout, /^FAIL  network namespace +pc-no-such-namespace does not exist/m);
});
