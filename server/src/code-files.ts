import { basename, dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker, type WorkerOptions } from "node:worker_threads";

/** This code runs from the TypeScript sources (through tsx), not from the bundle scripts/build.mjs makes. */
const fromSources = import.meta.url.endsWith(".ts");

/** server/src when running the sources; server/dist (the bundle's folder, its chunks one below) otherwise. */
function codeRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return fromSources || basename(here) !== "chunks" ? here : dirname(here);
}

/**
 * A file or folder of the repository ("openapi/portcullis.v1.yaml", the built "console/dist"): two levels above
 * server/src and server/dist alike.
 */
export function repositoryPath(path: string): string {
  return join(codeRoot(), "..", "..", path);
}

/** A data file shipped with the code ("gen/portcullis.binpb"): under server/src, copied into server/dist by the build. */
export function shippedFile(path: string): string {
  return join(codeRoot(), path);
}

/**
 * A program of its own that the server runs in another process ("drivers/process-helper"): built beside the bundle
 * as `<name>.mjs`, or its TypeScript source with the arguments that make Node run it through tsx.
 */
export function entryFile(name: string): { readonly file: string; readonly execArgv: readonly string[] } {
  if (!fromSources) return { file: join(codeRoot(), `${name}.mjs`), execArgv: [] };
  return { file: join(codeRoot(), `${name}.ts`), execArgv: ["--import", import.meta.resolve("tsx")] };
}

/**
 * A worker thread running a module of its own ("store/generation-worker"): the one built beside the bundle, or its
 * TypeScript source imported through tsx (a worker does not take tsx's loader from `execArgv` on Node 20).
 */
export function startWorker(name: string, options: WorkerOptions): Worker {
  if (!fromSources) return new Worker(join(codeRoot(), `${name}.mjs`), options);
  const source = pathToFileURL(join(codeRoot(), `${name}.ts`)).href;
  const code = `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then(({ tsImport }) => tsImport(${JSON.stringify(source)}, ${JSON.stringify(import.meta.url)}));`;
  return new Worker(code, { ...options, eval: true });
}
