// Makes the npm package of @portcullis/sdk that installs on its own (`npm install portcullis-sdk-X.tgz`): compiled
// JavaScript with type declarations, no tsx. In the repository the workspace package points at the TypeScript sources
// instead, so that the server and the tests never run a stale build. Usage: node scripts/pack-sdk.mjs [out-dir]
// (default build/); prints the tarball's path.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const out = resolve(process.argv[2] ?? resolve(root, "build"));
const stage = resolve(out, "sdk-package");
rmSync(stage, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });

execFileSync(process.execPath, [resolve(root, "node_modules/typescript/bin/tsc"), "-p", resolve(root, "sdk/tsconfig.build.json"), "--outDir", resolve(stage, "dist")], { stdio: "inherit" });

const workspace = JSON.parse(readFileSync(resolve(root, "sdk/package.json"), "utf8"));
const toDist = (target) => target.replace(/^\.\/src\//, "./dist/");
const exportsMap = Object.fromEntries(Object.entries(workspace.exports).map(([key, target]) => [key, target.endsWith(".js") ? { types: toDist(target).replace(/\.js$/, ".d.ts"), default: toDist(target) } : toDist(target)]));
const { name, version, description, license, dependencies } = workspace;
writeFileSync(resolve(stage, "package.json"), `${JSON.stringify({ name, version, description, license, type: "module", exports: exportsMap, types: "./dist/index.d.ts", files: ["dist", "README.md"], engines: { node: ">=20" }, dependencies }, null, 2)}\n`);
writeFileSync(resolve(stage, "README.md"), [
  "# @portcullis/sdk",
  "",
  "TypeScript SDK for the Portcullis firewall control plane (iptables, ipset, fail2ban) over gRPC with mutual TLS.",
  "",
  "```ts",
  'import { createClient } from "@portcullis/sdk";',
  'const client = createClient({ address: "firewall.example:50051", bundle: "/etc/portcullis/clients/ops" });',
  'await client.jails.ban("dovecot", "192.0.2.100");',
  "client.dispose();",
  "```",
  "",
  "See the Portcullis repository's README for the whole API.",
  "",
].join("\n"));

const tarball = execFileSync("npm", ["pack", "--silent", "--pack-destination", out], { cwd: stage, encoding: "utf8" }).trim().split("\n").pop();
console.log(resolve(out, tarball));
