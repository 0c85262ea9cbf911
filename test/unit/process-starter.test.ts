import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { Executor } from "../../server/src/drivers/exec.js";
import { HelperStarter, type StartedProcess } from "../../server/src/drivers/process-starter.js";
import { createLogger } from "../../server/src/logger.js";
import { Netns, sh } from "../harness/netns.js";
import { waitFor } from "../harness/wait.js";
import type { ServerError } from "../../server/src/errors.js";

const log = createLogger("silent");

/** Everything a started program writes to one stream, once it ends. */
async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: string[] = [];
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => chunks.push(chunk));
  await once(stream, "end");
  return chunks.join("");
}

// The server's way of starting programs: from a helper process, with the program's stdio connected straight back.
describe("HelperStarter: programs started from a helper process", () => {
  const starter = new HelperStarter(log);
  const exec = new Executor(log, undefined, undefined, starter);
  after(() => exec.close());

  it("starts the program from the helper, not from this process (which therefore never forks)", async () => {
    const result = await exec.run("sh", ["-c", 'echo "$PPID"']);
    const parent = Number(result.stdout.trim());
    assert.ok(parent > 0);
    assert.notEqual(parent, process.pid, "the program's parent is the helper");
    // …and the helper is this process's child.
    const status = await exec.run("cat", [`/proc/${parent}/status`]);
    assert.match(status.stdout, new RegExp(`^PPid:\\s+${process.pid}$`, "m"));
  });

  it("gives stdout, stderr and the exit code apart", async () => {
    const result = await exec.run("sh", ["-c", "echo out; echo err >&2; exit 3"]);
    assert.deepEqual(result, { exitCode: 3, stdout: "out\n", stderr: "err\n" });
  });

  it("passes input in and a large output out whole (1 MiB, more than any socket buffer)", async () => {
    const input = Array.from({ length: 16_384 }, (_, i) => `line ${String(i).padStart(58, "0")}\n`).join("");
    assert.equal(input.length, 1 << 20);
    const result = await exec.run("cat", [], { input });
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, input);
  });

  it("feeds a long-lived program in turns, as the ipset and iptables-restore sessions do", async () => {
    const child: StartedProcess = exec.spawn("cat", []);
    child.stdout.setEncoding("utf8");
    let received = "";
    child.stdout.on("data", (chunk: string) => (received += chunk));
    for (const word of ["one\n", "two\n", "three\n"]) {
      child.stdin.write(word);
      while (!received.endsWith(word)) await once(child.stdout, "data");
    }
    child.stdin.end();
    assert.deepEqual(await child.ended, { exitCode: 0, notStarted: false });
    assert.equal(received, "one\ntwo\nthree\n");
  });

  it("stops a program on kill, with its signal", async () => {
    const child = exec.spawn("sleep", ["30"]);
    const output = readAll(child.stdout);
    setTimeout(() => child.kill("SIGKILL"), 50);
    const end = await child.ended;
    assert.equal(end.signal, "SIGKILL");
    assert.equal(end.exitCode, undefined);
    assert.equal(await output, "");
  });

  it("reports a program that is not installed as not started (KERNEL_UNAVAILABLE from run)", async () => {
    const child = exec.spawn("pc-no-such-program", []);
    assert.deepEqual(await child.ended, { notStarted: true });
    await assert.rejects(exec.run("pc-no-such-program", []), { reason: "KERNEL_UNAVAILABLE" });
  });

  it("leaves no connection open behind a program that ended, whether its input was closed or not", async () => {
    // This process's sockets and pipes, by inode: unique while open, unlike descriptor numbers, which are reused.
    const channels = (): string[] => readdirSync("/proc/self/fd").flatMap((fd) => {
      try {
        const target = readlinkSync(`/proc/self/fd/${fd}`);
        return /^(socket|pipe):/.test(target) ? [target] : [];
      } catch {
        return []; // the directory's own descriptor, closed by now
      }
    });
    await exec.run("true", []); // the helper and its listening socket exist from here on
    // Earlier tests' connections may still be closing: they can only leave this set, never join it.
    const before = new Set(channels());
    for (let i = 0; i < 30; i++) await exec.run("true", []);
    for (let i = 0; i < 10; i++) {
      const child = exec.spawn("sleep", ["30"]); // its input stays open: it is killed
      setTimeout(() => child.kill("SIGKILL"), 20);
      await child.ended;
    }
    // The programs' connections close (asynchronously after they end): none of them may stay open.
    await waitFor(() => `the programs' connections closed (still open: ${channels().filter((channel) => !before.has(channel)).join(", ")})`,
      () => channels().every((channel) => before.has(channel)));
  });

  it("runs many programs at once, each with its own output", async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => exec.run("sh", ["-c", `echo ${i}; echo e${i} >&2`])));
    results.forEach((result, i) => assert.deepEqual(result, { exitCode: 0, stdout: `${i}\n`, stderr: `e${i}\n` }));
  });
});

// A server managing a namespace (config `netns`): the helper is started in it once, and its programs need no `ip` each.
describe("HelperStarter in a network namespace", () => {
  let netns: Netns;
  let exec: Executor;
  before(() => {
    netns = new Netns("pc-starter");
    exec = new Executor(log, netns.name, undefined, new HelperStarter(log, netns.name));
  });
  after(() => {
    exec.close();
    netns.destroy();
  });

  it("runs programs in the namespace, started by the helper itself (no `ip netns exec` process per program)", async () => {
    const result = await exec.run("sh", ["-c", 'readlink /proc/self/ns/net; echo "$PPID"']);
    const [namespace, parent] = result.stdout.trim().split("\n");
    assert.equal(namespace, `net:[${statSync(`/run/netns/${netns.name}`).ino}]`);
    assert.notEqual(namespace, readlinkSync("/proc/self/ns/net"));
    // The program's parent is the helper (node, this process's child), not an `ip` in between.
    const status = readFileSync(`/proc/${parent}/status`, "utf8");
    assert.match(status, /^Name:\s+node$/m);
    assert.match(status, new RegExp(`^PPid:\\s+${process.pid}$`, "m"));
  });

  it("follows the namespace when it is deleted and made again under the same name (a new helper starts there)", async () => {
    const inode = async (): Promise<string> => (await exec.run("readlink", ["/proc/self/ns/net"])).stdout.trim();
    const before = await inode();
    // A long-lived program of the old helper keeps running until it ends.
    const sleeper = exec.spawn("sleep", ["30"]);
    netns.destroy();
    sh("ip", ["netns", "add", netns.name]);
    const after = await inode();
    assert.notEqual(after, before);
    assert.equal(after, `net:[${statSync(`/run/netns/${netns.name}`).ino}]`);
    sleeper.kill("SIGKILL");
    assert.equal((await sleeper.ended).signal, "SIGKILL");
  });

  it("gives a program to a new helper when the first ended before reaching it (a namespace file not mounted yet)", async () => {
    // What `ip netns exec` meets while a namespace of that name is being made again: the file is there, the namespace
    // is not (setns: Invalid argument), and the helper ends at once. Made real 30 ms later, before the retry.
    const name = `pc-late-${process.pid}`;
    const late = new Executor(log, name, undefined, new HelperStarter(log, name));
    writeFileSync(`/run/netns/${name}`, "");
    try {
      const run = late.run("readlink", ["/proc/self/ns/net"]);
      setTimeout(() => {
        rmSync(`/run/netns/${name}`);
        sh("ip", ["netns", "add", name]);
      }, 30);
      assert.equal((await run).stdout.trim(), `net:[${statSync(`/run/netns/${name}`).ino}]`);
    } finally {
      late.close();
      try {
        sh("ip", ["netns", "del", name]);
      } catch {
        rmSync(`/run/netns/${name}`, { force: true });
      }
    }
  });

  it("reports a program as not started once the namespace is gone (KERNEL_UNAVAILABLE naming the namespace)", async () => {
    netns.destroy();
    await assert.rejects(exec.run("true", []), (error: ServerError) => error.reason === "KERNEL_UNAVAILABLE" && error.message.includes(`network namespace ${netns.name}`));
    sh("ip", ["netns", "add", netns.name]);
    assert.equal((await exec.run("true", [])).exitCode, 0);
  });

  it("sees the namespace's own kernel state (its sets, not the host's)", async () => {
    netns.exec("ipset", ["create", "pc-starter-probe", "hash:ip"]);
    const listed = await exec.run("ipset", ["list", "-n"]);
    assert.deepEqual(listed, { exitCode: 0, stdout: "pc-starter-probe\n", stderr: "" });
  });
});
