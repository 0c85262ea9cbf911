// The error catalogue (server/src/errors.ts), its documented table (docs/errors.md) and the SDK's ErrorReason type
// hold the same reasons, in both directions, and the table's codes are the catalogue's: a reason added, renamed or
// dropped in one place and not the others fails here.
import { it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { status } from "@grpc/grpc-js";
import ts from "typescript";
import { httpStatusOf, reasons } from "../../server/src/errors.js";

const root = resolve(import.meta.dirname, "../..");
const catalogue = Object.keys(reasons).sort();
const codeName = (code: number): string => Object.entries(status).find(([, value]) => value === code)![0];

/** The rows of docs/errors.md's table: reason, gRPC code name, HTTP statuses. */
function documented(): Array<{ reason: string; code: string; http: number[] }> {
  const rows = readFileSync(resolve(root, "docs/errors.md"), "utf8").split("\n").filter((line) => line.startsWith("| `"));
  return rows.map((row) => {
    const [reason, code, http] = row.split("|").slice(1, 4).map((cell) => cell.trim());
    return { reason: reason!.replace(/`/g, ""), code: code!, http: http!.split(",").map(Number) };
  });
}

/** The members of the ErrorReason union that @portcullis/sdk exports, as the compiler reads them from its entry. */
function sdkReasons(): string[] {
  const entry = resolve(root, "sdk/src/index.ts");
  const program = ts.createProgram([entry], { strict: true, noEmit: true, skipLibCheck: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext });
  const checker = program.getTypeChecker();
  const exported = checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(entry)!)!).find((symbol) => symbol.name === "ErrorReason");
  assert.ok(exported !== undefined, "@portcullis/sdk exports a type ErrorReason");
  const type = checker.getDeclaredTypeOfSymbol(exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported);
  return (type.isUnion() ? type.types : [type]).map((member) => {
    assert.ok(member.isStringLiteral(), `ErrorReason holds only string literals, not ${checker.typeToString(member)}`);
    return member.value;
  }).sort();
}

/** The server's TypeScript, generated code left out. */
function serverSources(dir = resolve(root, "server/src")): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "gen" ? [] : serverSources(path);
    return entry.name.endsWith(".ts") ? [readFileSync(path, "utf8")] : [];
  });
}

it("docs/errors.md documents every reason of the catalogue, each once, and no other", () => {
  const rows = documented();
  assert.deepEqual(rows.map((row) => row.reason).sort(), catalogue);
});

it("docs/errors.md gives each reason the catalogue's gRPC code and its HTTP status", () => {
  for (const row of documented()) {
    const code = reasons[row.reason as keyof typeof reasons];
    assert.equal(row.code, codeName(code), `${row.reason}: gRPC code`);
    assert.equal(row.http[0], httpStatusOf[code], `${row.reason}: HTTP status (first listed)`);
  }
});

it("the SDK's ErrorReason type is the catalogue's reasons, no more and no fewer", () => {
  assert.deepEqual(sdkReasons(), catalogue);
});

it("the server gives every reason of the catalogue somewhere (none is documented that no call can meet)", () => {
  const sources = serverSources().join("\n");
  assert.deepEqual(catalogue.filter((reason) => !sources.includes(`"${reason}"`)), []);
});
