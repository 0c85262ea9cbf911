// deploy/portcullis.service: systemd accepts it, and its hardening keeps the exposure score low.
import { it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");
const hasSystemd = spawnSync("systemd-analyze", ["--version"]).status === 0;

it("the systemd unit verifies, starts after fail2ban, reloads with SIGHUP, and keeps only the network capabilities", { skip: hasSystemd ? false : "systemd-analyze is not installed" }, () => {
  const unit = readFileSync(join(root, "deploy/portcullis.service"), "utf8");
  assert.match(unit, /^After=.*\bfail2ban\.service\b/m);
  assert.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  assert.match(unit, /^CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW$/m);
  assert.match(unit, /^ProtectSystem=strict$/m);
  const dir = mkdtempSync(join(tmpdir(), "pc-unit-"));
  try {
    // The unit as installed, pointing at this checkout (verify wants ExecStart's program to exist).
    const file = join(dir, "portcullis.service");
    writeFileSync(file, unit.replace("/opt/portcullis/server/bin/portcullis", join(root, "server/bin/portcullis")));
    execFileSync("systemd-analyze", ["verify", file], { stdio: "pipe" });
    const security = execFileSync("systemd-analyze", ["security", "--offline=yes", file], { encoding: "utf8" });
    const exposure = Number(/Overall exposure level for portcullis\.service: ([\d.]+)/.exec(security)?.[1]);
    assert.ok(exposure <= 5, `exposure ${exposure} (systemd-analyze security); keep the hardening options`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
