// Raw-tool baseline for bench/run.ts. Runs INSIDE the benchmark's namespace (`ip netns exec NS node bench/raw-ipset.mjs …`),
// so the timings below contain the ipset tool itself and not the `ip netns exec` wrapper or node's start-up.
// Plain JS on purpose: no loader, no dependencies. Argument arrays only, never a shell. Prints one JSON object on stdout.
//
//   node bench/raw-ipset.mjs add <set> <first-index> <count> [warmup]
//       `ipset add <set> <addr>` once per address (addresses 10.a.b.c from the index), warmup calls first (untimed,
//       at indexes below first-index … first-index+count+warmup never overlap with the measured ones).
//       → {"timingsMs":[…]}
//   node bench/raw-ipset.mjs restore <file>
//       `ipset restore` with stdin read from <file>. → {"seconds":…}
//   node bench/raw-ipset.mjs restore-swap <file> <set-a> <set-b>
//       `ipset restore` from <file> (which creates <set-a> and fills it), then `ipset swap <set-a> <set-b>`.
//       → {"seconds":…} for both together
//   node bench/raw-ipset.mjs save <set>
//       `ipset save <set>` into a pipe that is read to the end. → {"seconds":…,"bytes":…}
import { spawnSync } from "node:child_process";
import { closeSync, openSync } from "node:fs";

const [mode, ...args] = process.argv.slice(2);

function address(i) {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

function ipset(argv, stdin) {
  const result = spawnSync("ipset", argv, { stdio: [stdin ?? "ignore", "ignore", "pipe"], encoding: "utf8" });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`ipset ${argv.slice(0, 3).join(" ")} exited ${result.status ?? result.signal}: ${result.stderr}`);
}

if (mode === "add") {
  const [set, firstText, countText, warmupText] = args;
  const first = Number(firstText);
  const count = Number(countText);
  const warmup = Number(warmupText ?? 0);
  if (!set || !Number.isInteger(first) || !Number.isInteger(count) || !Number.isInteger(warmup)) throw new Error("usage: add <set> <first-index> <count> [warmup]");
  for (let i = 0; i < warmup; i++) ipset(["add", set, address(first + count + i)]);
  const timingsMs = new Array(count);
  for (let i = 0; i < count; i++) {
    const argv = ["add", set, address(first + i)];
    const started = process.hrtime.bigint();
    ipset(argv);
    timingsMs[i] = Number(process.hrtime.bigint() - started) / 1e6;
  }
  process.stdout.write(`${JSON.stringify({ timingsMs })}\n`);
} else if (mode === "restore") {
  const [file] = args;
  if (!file) throw new Error("usage: restore <file>");
  const fd = openSync(file, "r");
  try {
    const started = process.hrtime.bigint();
    ipset(["restore"], fd);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    process.stdout.write(`${JSON.stringify({ seconds })}\n`);
  } finally {
    closeSync(fd);
  }
} else if (mode === "restore-swap") {
  const [file, a, b] = args;
  if (!file || !a || !b) throw new Error("usage: restore-swap <file> <set-a> <set-b>");
  const fd = openSync(file, "r");
  try {
    const started = process.hrtime.bigint();
    ipset(["restore"], fd);
    ipset(["swap", a, b]);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    process.stdout.write(`${JSON.stringify({ seconds })}\n`);
  } finally {
    closeSync(fd);
  }
} else if (mode === "save") {
  const [set] = args;
  if (!set) throw new Error("usage: save <set>");
  const started = process.hrtime.bigint();
  const result = spawnSync("ipset", ["save", set], { stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1024 * 1024 * 1024 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`ipset save exited ${result.status ?? result.signal}: ${result.stderr}`);
  process.stdout.write(`${JSON.stringify({ seconds, bytes: result.stdout.length })}\n`);
} else {
  process.stderr.write("usage: raw-ipset.mjs add <set> <first-index> <count> [warmup] | restore <file> | restore-swap <file> <set-a> <set-b> | save <set>\n");
  process.exit(2);
}
