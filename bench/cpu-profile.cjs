// Preload for diagnosis only (bench/run.ts uses it when BENCH_SERVER_CPU_PROF is set): Node 20 refuses --cpu-prof in
// NODE_OPTIONS, so this starts the V8 profiler through the inspector module and writes a .cpuprofile when the process
// exits normally (the server exits with process.exit after SIGTERM). In-thread inspector sessions answer synchronously,
// which is what makes stopping the profiler inside an 'exit' handler work. Also samples process.memoryUsage() every
// 250 ms into memory-<pid>.jsonl, to tell V8 heap from native memory in the RSS.
"use strict";
const inspector = require("node:inspector");
const { appendFileSync, mkdirSync, writeFileSync } = require("node:fs");
const { join } = require("node:path");
const { isMainThread } = require("node:worker_threads");

// NODE_OPTIONS preloads also run in worker threads (tsx's module-loader thread among them): profile the main one only.
const dir = process.env.BENCH_CPU_PROF_DIR;
if (dir && isMainThread) {
  const session = new inspector.Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 1000 });
  session.post("Profiler.start");
  mkdirSync(dir, { recursive: true });
  const memoryFile = join(dir, `memory-${process.pid}.jsonl`);
  const mb = (bytes) => Math.round(bytes / 1048576);
  setInterval(() => {
    const m = process.memoryUsage();
    appendFileSync(memoryFile, `${JSON.stringify({ t: Date.now(), rss: mb(m.rss), heapTotal: mb(m.heapTotal), heapUsed: mb(m.heapUsed), external: mb(m.external), arrayBuffers: mb(m.arrayBuffers) })}\n`);
  }, 250).unref();
  process.on("exit", () => {
    session.post("Profiler.stop", (error, result) => {
      if (error) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `server-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
