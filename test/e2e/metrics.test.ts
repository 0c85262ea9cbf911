// Prometheus metrics: a real Prometheus server (Debian's) scrapes the plain loopback port, and its own query API
// shows the ban counters after an API ban and a ban fail2ban made itself; GET /metrics on the REST port needs a client
// certificate (any role) and carries the RPC, kernel-command and state metrics.
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VictimAttacker } from "../harness/netns.js";
import { canConnect, freePort } from "../harness/tcp.js";
import { rest } from "../harness/rest.js";
import { dovecotFailures } from "../harness/fail2ban.js";
import { JailTestClient } from "../harness/grpc-clients.js";
import { startJailHosts, type JailHosts } from "../harness/jail-hosts.js";
import { waitFor } from "../harness/wait.js";

const { victimV4, attackerV4 } = VictimAttacker;


let setup: JailHosts;
let metricsAddress: string;
let prometheus: ChildProcess | undefined;
let prometheusPort: number;
let scratch: string;

before(async () => {
  setup = await startJailHosts(["maxretry = 5", "findtime = 600", "bantime = 600"], (socket) => `portcullis.py[socket="${socket}"]`, ["--metrics-address", "127.0.0.1:0"]);
  metricsAddress = /"metrics":"([^"]+)"/.exec(setup.f.server.output)![1]!;
  scratch = mkdtempSync(join(tmpdir(), "pc-prometheus-"));
  prometheusPort = await freePort();
  writeFileSync(join(scratch, "prometheus.yml"), [
    "global: { scrape_interval: 1s, evaluation_interval: 1s }",
    "scrape_configs:",
    "  - job_name: portcullis",
    `    static_configs: [{ targets: ["${metricsAddress}"] }]`,
    "",
  ].join("\n"));
  prometheus = spawn("prometheus", [
    `--config.file=${join(scratch, "prometheus.yml")}`,
    `--storage.tsdb.path=${join(scratch, "data")}`,
    `--web.listen-address=127.0.0.1:${prometheusPort}`,
  ], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  prometheus.stderr!.on("data", (chunk: Buffer) => (log += chunk.toString()));
  await waitFor(() => `prometheus starting:\n${log}`, () => log.includes("Server is ready to receive web requests"), { every: 100 });
});
after(async () => {
  if (prometheus !== undefined && prometheus.exitCode === null) {
    prometheus.kill("SIGTERM");
    await new Promise((resolve) => prometheus!.once("exit", resolve));
  }
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  await setup?.close();
});

/** An instant query through Prometheus' HTTP API: the value of each series, by its labels. */
async function query(expression: string): Promise<Array<{ metric: Record<string, string>; value: number }>> {
  const response = await fetch(`http://127.0.0.1:${prometheusPort}/api/v1/query?query=${encodeURIComponent(expression)}`);
  const body = (await response.json()) as { status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
  assert.equal(body.status, "success");
  return body.data.result.map((series) => ({ metric: series.metric, value: Number(series.value[1]) }));
}

async function eventually(expression: string, predicate: (series: Array<{ metric: Record<string, string>; value: number }>) => boolean): Promise<Array<{ metric: Record<string, string>; value: number }>> {
  let last: Array<{ metric: Record<string, string>; value: number }> = [];
  return waitFor(() => `${expression} matching (last: ${JSON.stringify(last)})`, async () => {
    last = await query(expression);
    return predicate(last) && last;
  }, { every: 200 });
}

it("Prometheus scrapes the ban counters: an API ban (origin api) and fail2ban's own ban (origin fail2ban)", async () => {
  const jails = new JailTestClient(setup.f.server.address, setup.f.server.credentials());
  try {
    await eventually('up{job="portcullis"}', (series) => series[0]?.value === 1);
    await eventually("portcullis_fail2ban_up", (series) => series[0]?.value === 1);

    await jails.call("banIp", { jail: "jails/dovecot", address: "203.0.113.7" });
    const apiBans = await eventually('portcullis_jail_bans_total{jail="dovecot"}', (series) => series.some((s) => s.metric.origin === "api" && s.value === 1));
    assert.equal(apiBans.find((s) => s.metric.origin === "api")?.metric.job, "portcullis");

    appendFileSync(setup.fail2ban.mailLog, dovecotFailures(attackerV4, victimV4, 5));
    await eventually('portcullis_jail_bans_total{jail="dovecot",origin="fail2ban"}', (series) => series[0]?.value === 1);
    assert.equal(await canConnect(setup.hosts.attacker.name, victimV4, 143), false, "the ban Prometheus counted drops the attacker");

    // The jail's managed set holds both bans, as Prometheus sees it.
    await eventually('portcullis_set_entries{set="fail2ban-dovecot"}', (series) => series[0]?.value === 2);
    const rpc = await eventually('portcullis_rpc_duration_seconds_count{method="portcullis.v1.JailService/BanIp"}', (series) => series.length > 0);
    assert.deepEqual([rpc[0]!.metric.transport, rpc[0]!.metric.code, rpc[0]!.value], ["grpc", "OK", 1]);
  } finally {
    jails.close();
  }
});

it("GET /metrics on the REST port: any client certificate (viewer too), none refused; the plain port serves only /metrics", async () => {
  await setup.f.server.cli(["certs", "issue", "--name", "grafana", "--role", "viewer"]);
  const scraped = await rest(setup.f.server, "GET", "/metrics", undefined, { as: "grafana" });
  assert.equal(scraped.status, 200);
  assert.match(String(scraped.headers["content-type"]), /^text\/plain; version=0\.0\.4/);
  const text = scraped.text;
  assert.match(text, /^# TYPE portcullis_rpc_duration_seconds histogram$/m);
  // One BanIp, in the +Inf bucket; whether also in the 0.5 s one depends on the machine's speed, not on the code.
  assert.match(text, /^portcullis_rpc_duration_seconds_bucket\{le="0\.5",method="portcullis\.v1\.JailService\/BanIp",transport="grpc",code="OK"\} [01]$/m);
  assert.match(text, /^portcullis_rpc_duration_seconds_bucket\{le="\+Inf",method="portcullis\.v1\.JailService\/BanIp",transport="grpc",code="OK"\} 1$/m);
  assert.match(text, /^portcullis_kernel_command_duration_seconds_count\{command="iptables-save"\} \d+$/m);
  // Requests to the long-lived sessions count as kernel commands too: the ban's set entry, the jail's DROP rule.
  assert.match(text, /^portcullis_kernel_command_duration_seconds_count\{command="ipset session"\} [1-9]\d*$/m);
  assert.match(text, /^portcullis_kernel_command_duration_seconds_count\{command="iptables-restore session"\} [1-9]\d*$/m);
  assert.match(text, /^portcullis_rules\{family="ipv4",chain="INPUT"\} 1$/m, "the jail's managed DROP rule");
  assert.match(text, /^portcullis_events_total\{type="BAN",origin="api"\} 1$/m);
  assert.match(text, /^portcullis_event_log_sequence \d+$/m);
  assert.match(text, /^portcullis_process_resident_memory_bytes \d+/m);

  const anonymous = await rest(setup.f.server, "GET", "/metrics", undefined, { as: null });
  assert.equal(anonymous.status, 401);
  const plain = await fetch(`http://${metricsAddress}/metrics`);
  assert.equal(plain.status, 200);
  assert.match(await plain.text(), /^portcullis_jail_bans_total\{jail="dovecot",origin="api"\} 1$/m);
  assert.equal((await fetch(`http://${metricsAddress}/v1/jails`)).status, 404);
});
