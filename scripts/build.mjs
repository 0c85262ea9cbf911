// Compiles the server (and the SDK code it uses) into one ES module, server/dist/cli.mjs, with esbuild. npm packages
// stay external (native better-sqlite3, grpc-js…). server/bin/portcullis runs this bundle when it is newer than every
// source file, and the sources through tsx otherwise, so an edit is never hidden behind a stale build.
// Then the console (console/src) into console/dist, which the server serves at /console/.
import { readFileSync, rmSync } from "node:fs";
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
  entryPoints: { cli: new URL("server/src/cli.ts", root).pathname },
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
await buildConsole();
