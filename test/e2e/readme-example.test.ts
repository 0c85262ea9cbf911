import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { startServerFixture, type ServerFixture } from "../harness/fixture.js";

const root = resolve(import.meta.dirname, "../..");
const readme = readFileSync(join(root, "README.md"), "utf8");

let f: ServerFixture;
before(async () => (f = await startServerFixture()));
after(async () => f?.close());

it("the README's example command works exactly as written against a real server", () => {
  const commands = readme.split("\n").filter((line) => line.startsWith("node --import tsx examples/"));
  assert.ok(commands.length > 0, "README must show an example command");
  for (const command of commands) {
    const [file, ...args] = command.split(/\s+/);
    // Only where the server and its admin bundle are differs from the demo.
    const output = execFileSync(file!, args, {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, PORTCULLIS_ADDRESS: f.server.address.replace("127.0.0.1", "localhost"), PORTCULLIS_BUNDLE: join(f.server.dataDir, "pki/clients/admin") },
    });
    const printed = /prints\n\n```\n([\s\S]*?)```/.exec(readme)![1]!;
    assert.equal(output, printed.replace(/600s/, /\t(\d+)s\t/.exec(output)![1]! + "s"));
    assert.ok(Number(/\t(\d+)s\t/.exec(output)![1]) >= 599);
  }
  assert.match(f.netns.exec("ipset", ["save", "blocklist"]), /^add blocklist 192\.0\.2\.100 timeout \d+ comment "example"$/m);
});
