// Times the raw iptables tools inside the current network namespace (run with `ip netns exec NS node raw-iptables.mjs`),
// so the numbers carry no `ip netns exec` cost. Prints one JSON object.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

const [command, ...args] = process.argv.slice(2);
const time = (fn) => {
  const started = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - started) / 1e6;
};
const run = (file, argv, input) => {
  const result = spawnSync(file, argv, { input, stdio: [input === undefined ? "ignore" : "pipe", "ignore", "pipe"] });
  if (result.status !== 0) throw new Error(`${file} ${argv.join(" ")}: ${result.stderr}`);
};
const rule = (port) => ["INPUT", "-p", "tcp", "-m", "tcp", "--dport", String(port), "-j", "ACCEPT"];

let out;
switch (command) {
  case "append": { // append FIRST COUNT: iptables -A one process per rule
    const [first, count] = args.map(Number);
    out = { ms: Array.from({ length: count }, (_, i) => time(() => run("iptables", ["-A", ...rule(first + i)]))) };
    break;
  }
  case "delete": { // delete FIRST COUNT: iptables -D by spec
    const [first, count] = args.map(Number);
    out = { ms: Array.from({ length: count }, (_, i) => time(() => run("iptables", ["-D", ...rule(first + i)]))) };
    break;
  }
  case "restore": { // restore FILE [REPEAT]: iptables-restore of a whole table, each replacing the previous
    const text = readFileSync(args[0]);
    out = { ms: Array.from({ length: Number(args[1] ?? 1) }, () => time(() => run("iptables-restore", [], text))) };
    break;
  }
  case "restore-noflush": { // restore-noflush FILE1 FILE2 REPEAT: iptables-restore --noflush of the files in turn
    const texts = [readFileSync(args[0]), readFileSync(args[1])];
    out = { ms: Array.from({ length: Number(args[2]) }, (_, i) => time(() => run("iptables-restore", ["--noflush"], texts[i % 2]))) };
    break;
  }
  case "save": { // save REPEAT: iptables-save -t filter
    const repeat = Number(args[0]);
    out = { ms: Array.from({ length: repeat }, () => time(() => execFileSync("iptables-save", ["-t", "filter"], { maxBuffer: 1 << 28 }))) };
    break;
  }
  default:
    throw new Error(`unknown command ${command}`);
}
process.stdout.write(JSON.stringify(out));
