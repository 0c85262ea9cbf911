// Builds the console (console/src) into console/dist: one minified script and one stylesheet with content hashes in
// their names (cached for ever by browsers; a new build is a new name), the icon, and an index.html that loads them.
// index.html has no inline script or style, so the server can send `Content-Security-Policy: default-src 'self'`.
import { copyFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = fileURLToPath(new URL("./", import.meta.url));
/** Where the server serves the console: assets are named absolutely, so a deep link (/console/jails/sshd) finds them. */
const BASE = "/console/";

export async function buildConsole() {
  const outdir = join(here, "dist");
  rmSync(outdir, { recursive: true, force: true });
  const result = await build({
    entryPoints: { app: join(here, "src/main.tsx") },
    outdir,
    entryNames: "[name]-[hash]",
    assetNames: "[name]-[hash]",
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: ["chrome110", "firefox115", "safari16"],
    jsx: "automatic",
    jsxImportSource: "preact",
    metafile: true,
    legalComments: "none",
    logLevel: "warning",
  });
  const outputs = Object.keys(result.metafile.outputs).map((path) => basename(path));
  const script = outputs.find((name) => /^app-[A-Z0-9]+\.js$/.test(name));
  const style = outputs.find((name) => /^app-[A-Z0-9]+\.css$/.test(name));
  if (script === undefined || style === undefined) throw new Error(`console build: no app script or stylesheet in ${outputs.join(", ")}`);
  copyFileSync(join(here, "src/icon.svg"), join(outdir, "icon.svg"));
  writeFileSync(join(outdir, "index.html"), [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>Portcullis console</title>",
    `<link rel="icon" href="${BASE}icon.svg" type="image/svg+xml">`,
    `<link rel="stylesheet" href="${BASE}${style}">`,
    `<script type="module" src="${BASE}${script}"></script>`,
    "</head>",
    "<body>",
    '<div id="app"></div>',
    '<noscript>The Portcullis console needs JavaScript.</noscript>',
    "</body>",
    "</html>",
    "",
  ].join("\n"));
}

// `node console/build.mjs` builds the console alone.
if (process.argv[1] === fileURLToPath(import.meta.url)) await buildConsole();
