import { it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");
const sdkGen = join(root, "sdk/src/gen");
const serverGen = join(root, "server/src/gen");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

it("sdk/src/gen, server/src/gen, openapi/ and server/src/rest/gen are exactly what `npm run generate` makes from proto/ (regenerate and commit if this fails)", () => {
  const fresh = mkdtempSync(join(tmpdir(), "pc-gen-"));
  try {
    execFileSync("bash", [join(root, "scripts/generate.sh"), fresh], { cwd: root, stdio: "pipe", env: { ...process.env, PATH: `${join(root, "node_modules/.bin")}:${process.env.PATH}` } });
    assert.ok(readFileSync(join(fresh, "openapi.yaml")).equals(readFileSync(join(root, "openapi/portcullis.v1.yaml"))), "openapi/portcullis.v1.yaml is stale");
    assert.ok(readFileSync(join(fresh, "openapi.d.ts")).equals(readFileSync(join(root, "server/src/rest/gen/openapi.d.ts"))), "server/src/rest/gen/openapi.d.ts is stale");
    rmSync(join(fresh, "openapi.yaml"));
    rmSync(join(fresh, "openapi.d.ts"));
    const want = files(fresh).map((path) => relative(fresh, path)).sort();
    for (const committed of [sdkGen, serverGen]) {
      const have = files(committed).map((path) => relative(committed, path)).sort();
      assert.deepEqual(have, want, `${relative(root, committed)}: generated file list differs`);
      for (const path of want) {
        assert.ok(readFileSync(join(committed, path)).equals(readFileSync(join(fresh, path))), `${relative(root, committed)}/${path} is stale`);
      }
    }
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
});

it("the protos pass buf lint", () => {
  execFileSync(join(root, "node_modules/.bin/buf"), ["lint"], { cwd: root, stdio: "pipe" });
});
