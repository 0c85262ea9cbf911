// Preload for diagnosis only (bench/run.ts uses it when BENCH_SERVER_CPU_PROF is set): Node 20 refuses --cpu-prof in
// NODE_OPTIONS, so this starts the V8 profiler through the inspector module and writes a .cpuprofile when the process
// exits normally (the server exits with process.exit after SIGTERM). In-thread inspector sessions answer synchronously,
// which is what makes stopping the profiler inside an 'exit' handler work.
"use strict";
const inspector = require("node:inspector");
const { mkdirSync, writeFileSync } = require("node:fs");
const { join } = require("node:path");

const dir = process.env.BENCH_CPU_PROF_DIR;
if (dir) {
  const session = new inspector.Session();
  session.connect();
  session.post("Profiler.enable");
  session.post("Profiler.setSamplingInterval", { interval: 1000 });
  session.post("Profiler.start");
  process.on("exit", () => {
    session.post("Profiler.stop", (error, result) => {
      if (error) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `server-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
