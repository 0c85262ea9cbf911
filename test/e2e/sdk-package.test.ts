// @portcullis/sdk as an npm user gets it: packed (scripts/pack-sdk.mjs), installed with `npm install <tarball>` into an
// empty project, used from plain JavaScript (no tsx) against a real server, and type-checked from TypeScript.
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";

const root = resolve(import.meta.dirname, "../..");
let f: ServerFixture;
let project: string;

before(async () => {
  f = await startServerFixture();
  project = mkdtempSync(join(tmpdir(), "pc-sdk-package-"));
});
after(async () => {
  rmSync(project, { recursive: true, force: true });
  await f?.close();
});

it("npm install of the packed SDK alone works: plain JavaScript bans into a set the kernel then has; its types check", () => {
  const tarball = execFileSync(process.execPath, [join(root, "scripts/pack-sdk.mjs"), join(project, "pack")], { encoding: "utf8" }).trim().split("\n").pop()!;
  const app = join(project, "app");
  execFileSync("mkdir", ["-p", app]);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", tarball], { cwd: app, stdio: ["ignore", "ignore", "inherit"] });

  writeFileSync(join(app, "main.js"), `
import { createClient, PortcullisError } from "@portcullis/sdk";
const client = createClient();
try {
  await client.ipsets.create("pkg_test", { timeout: 600 });
  await client.ipsets.add("pkg_test", ["192.0.2.55"], { timeout: 300 });
  console.log(await client.ipsets.test("pkg_test", "192.0.2.55"));
  await client.ipsets.get("missing").catch((error) => console.log(error instanceof PortcullisError, error.code));
} finally {
  client.dispose();
}
`);
  const env = { ...process.env, PORTCULLIS_ADDRESS: f.server.address, PORTCULLIS_BUNDLE: join(f.server.dataDir, "pki/clients/admin") };
  // No loader: the installed package is JavaScript.
  const output = execFileSync(process.execPath, ["main.js"], { cwd: app, env, encoding: "utf8" });
  assert.equal(output, "true\ntrue NotFound\n");
  assert.match(f.netns.exec("ipset", ["list", "pkg_test"]), /^192\.0\.2\.55 timeout \d+$/m);

  writeFileSync(join(app, "tsconfig.json"), JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", strict: true, noEmit: true, types: ["node"] }, files: ["typed.ts"] }));
  writeFileSync(join(app, "typed.ts"), `
import { createClient, type IpsetInfo, type RuleInput } from "@portcullis/sdk";
const rule: RuleInput = { protocol: "tcp", destinationPorts: [25, [1000, 2000]], target: "ACCEPT" };
export async function run(): Promise<IpsetInfo> {
  const client = createClient({ address: "localhost:50051", bundle: "b" });
  await client.firewall.add({ chain: "INPUT" }, rule);
  return client.ipsets.get("x");
}
`);
  writeFileSync(join(app, "wrong.ts"), `
import { createClient } from "@portcullis/sdk";
export const n: number = createClient().jails;
`);
  const tsc = join(root, "node_modules/typescript/bin/tsc");
  const typed = spawnSync(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: app, encoding: "utf8" });
  assert.equal(typed.status, 0, typed.stdout);
  // The declarations are real: a misuse fails to compile.
  const misuse = spawnSync(process.execPath, [tsc, "--noEmit", "--module", "NodeNext", "--moduleResolution", "NodeNext", "--strict", "--types", "node", "wrong.ts"], { cwd: app, encoding: "utf8" });
  assert.equal(misuse.status, 2);
  assert.match(misuse.stdout, /wrong\.ts.*Type 'Jails' is not assignable to type 'number'/);
});
