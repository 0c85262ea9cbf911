// Compiles the server (and the SDK code it uses) into one ES module, server/dist/cli.mjs, with esbuild. npm packages
// stay external (native better-sqlite3, grpc-js…). server/bin/portcullis runs this bundle when it is newer than every
// source file, and the sources through tsx otherwise, so an edit is never hidden behind a stale build.
// Then the console (console/src) into console/dist, which the server serves at /console/.
import { copyFileSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { build } from "esbuild";
import { buildConsole } from "../console/build.mjs";

const root = new URL("../", import.meta.url);
const dependencies = (path) => Object.keys(JSON.parse(readFileSync(new URL(path, root), "utf8")).dependencies ?? {});
const external = [...dependencies("server/package.json"), ...dependencies("sdk/package.json")]
  .filter((name) => name !== "@portcullis/sdk")
  .flatMap((name) => [name, `${name}/*`]);

// Split into chunks: the server's modules (imported dynamically by `serve`) are only loaded when a server command
// runs, so a client command (`portcullis status`) starts in a fraction of the time.
const outdir = new URL("server/dist/", root).pathname;
rmSync(outdir, { recursive: true, force: true });
await build({
  // Besides the CLI, the programs the server runs in a process or thread of their own (see server/src/code-files.ts).
  entryPoints: {
    cli: new URL("server/src/cli.ts", root).pathname,
    "drivers/process-helper": new URL("server/src/drivers/process-helper.ts", root).pathname,
    "store/generation-worker": new URL("server/src/store/generation-worker.ts", root).pathname,
    "store/checkpoint-worker": new URL("server/src/store/checkpoint-worker.ts", root).pathname,
  },
  outdir,
  outExtension: { ".js": ".mjs" },
  chunkNames: "chunks/[name]-[hash]",
  splitting: true,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: true,
  external,
  logLevel: "warning",
});
// The contract's descriptor set (gRPC reflection, the REST routes), read at run time beside the bundle.
mkdirSync(new URL("gen/", `file://${outdir}`), { recursive: true });
copyFileSync(new URL("server/src/gen/portcullis.binpb", root), new URL("gen/portcullis.binpb", `file://${outdir}`));
await buildConsole();
