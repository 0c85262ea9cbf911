import { it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { apiReport } from "../../scripts/sdk-api-report.js";

const root = resolve(import.meta.dirname, "../..");

it("the SDK's public API is what sdk/api-report.d.ts records (run `npm run api-report` and review the diff if this fails)", () => {
  const recorded = readFileSync(resolve(root, "sdk/api-report.d.ts"), "utf8").split("\n").slice(1).join("\n");
  assert.equal(apiReport(), recorded);
});

it("every exported declaration of the SDK has a doc comment", () => {
  const lines = apiReport().split("\n");
  const undocumented = lines.flatMap((line, i) =>
    /^export (declare )?(class|interface|function|type [A-Z]|const|abstract class) /.test(line) && !/\*\/\s*$/.test(lines[i - 1] ?? "") ? [line] : []);
  assert.deepEqual(undocumented, []);
});

it("every public member of the SDK's classes (methods, properties, events) has a doc comment", () => {
  const lines = apiReport().split("\n");
  let inClass = false;
  const undocumented: string[] = [];
  for (const [i, line] of lines.entries()) {
    if (/^export (declare )?(abstract )?class /.test(line)) inClass = true;
    else if (inClass && line.startsWith("}")) inClass = false;
    else if (inClass && /^ {4}(static |readonly |get |set )*[A-Za-z]\w*[(<:?]/.test(line) && !/^\s+constructor\(/.test(line) && !/\*\/\s*$/.test(lines[i - 1] ?? "")) undocumented.push(line.trim());
  }
  assert.deepEqual(undocumented, []);
});
