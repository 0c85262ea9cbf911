// The SDK's public API surface as declarations: what `@portcullis/sdk` exports, file by file (generated and transport
// code left out). `npm run api-report` rewrites sdk/api-report.d.ts; test/contract/sdk-api.test.ts fails when the
// surface changes without that file being updated with it (an unintended change shows up in review).
import { writeFileSync } from "node:fs";
import { relative, resolve } from "node:path";
import ts from "typescript";

const root = resolve(import.meta.dirname, "..");

export function apiReport(): string {
  const entry = resolve(root, "sdk/src/index.ts");
  const files = new Map<string, string>();
  const program = ts.createProgram([entry], {
    declaration: true,
    emitDeclarationOnly: true,
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    skipLibCheck: true,
    stripInternal: true,
  });
  program.emit(undefined, (fileName, text) => {
    const source = relative(resolve(root, "sdk/src"), fileName.replace(/\.d\.ts$/, ".ts"));
    if (source.startsWith("..") || source.startsWith("gen/") || source.startsWith("transport/")) return;
    files.set(source, text);
  });
  return [...files.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([file, text]) => `// ---- ${file}\n${text.trim()}\n`)
    .join("\n");
}

if (process.argv[1] === import.meta.filename) {
  writeFileSync(resolve(root, "sdk/api-report.d.ts"), `// The public API of @portcullis/sdk (npm run api-report). Review changes to this file like code.\n${apiReport()}`);
}
