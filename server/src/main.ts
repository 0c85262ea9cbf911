import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { Config } from "./config.js";
import type { Logger } from "./logger.js";
import { resolveTls } from "./auth/server-tls.js";
import { CrlWatcher } from "./auth/crl-watcher.js";
import { checkNetns, Executor } from "./drivers/exec.js";
import { HelperStarter } from "./drivers/process-starter.js";
import { IpsetDriver } from "./drivers/ipset-driver.js";
import { IptablesDriver } from "./drivers/iptables-driver.js";
import { parseRuleLine } from "./drivers/parse/iptables-save.js";
import { renderRuleLine } from "./drivers/iptables-render.js";
import { openDatabase } from "./store/database.js";
import { IpsetStore } from "./store/ipset-store.js";
import { AuditStore } from "./store/audit-store.js";
import { GroupCommit } from "./store/group-commit.js";
import { RequestStore } from "./store/request-store.js";
import { IpsetService } from "./ipsets/ipset-service.js";
import { Invoker } from "./api/invoker.js";
import { ipsetOperations } from "./api/ipset-api.js";
import { firewallOperations } from "./api/firewall-api.js";
import { firewallServiceWithKeptRules } from "./grpc/kept-rule-bytes.js";
import { IpsetServiceService } from "./gen/portcullis/v1/ipset.js";
import { FirewallService } from "./firewall/firewall-service.js";
import { FirewallStore } from "./store/firewall-store.js";
import { EventStore } from "./store/event-store.js";
import { EventLog } from "./events/event-log.js";
import { eventOperations } from "./api/event-api.js";
import { EventServiceService } from "./gen/portcullis/v1/events.js";
import { JailServiceService } from "./gen/portcullis/v1/jail.js";
import { Fail2banClient } from "./drivers/fail2ban-client.js";
import { Fail2banCli } from "./drivers/fail2ban-cli.js";
import { JailService } from "./jails/jail-service.js";
import { jailOperations } from "./api/jail-api.js";
import { BanWatcher } from "./jails/ban-watcher.js";
import { BanExpiry } from "./jails/ban-expiry.js";
import { JailBanStore } from "./store/jail-ban-store.js";
import { AllowlistStore } from "./store/allowlist-store.js";
import { Allowlist } from "./jails/allowlist.js";
import { AllowlistService } from "./jails/allowlist-service.js";
import { JailEnforcement } from "./jails/jail-enforcement.js";
import { ActionSocket } from "./jails/action-socket.js";
import { startGrpcServer } from "./grpc/grpc-server.js";
import type { ContractService } from "./api/contract.js";
import { startRestServer } from "./rest/rest-server.js";
import { Metrics } from "./metrics/metrics.js";
import { startMetricsServer, type RunningMetricsServer } from "./metrics/metrics-server.js";
import { SinkStore } from "./store/sink-store.js";
import { SinkRunner } from "./sinks/sink-runner.js";
import { createSink } from "./sinks/sinks.js";
import { FleetServiceService } from "./gen/portcullis/v1/fleet.js";
import { fleetOperations } from "./api/fleet-api.js";
import { HostServiceService } from "./gen/portcullis/v1/host.js";
import { hostOperations } from "./api/host-api.js";
import { HostView } from "./host/host-view.js";
import { BanHistory } from "./events/ban-history.js";
import { FleetStore } from "./store/fleet-store.js";
import { JetStreamLink } from "./fleet/jetstream-link.js";
import { FleetApplier } from "./fleet/fleet-applier.js";
import { FleetPublisher } from "./fleet/fleet-publisher.js";
import { FleetConsumer } from "./fleet/fleet-consumer.js";
import { FleetNodes } from "./fleet/fleet-nodes.js";
import { Fleet, localOnly, type FleetSharing } from "./fleet/fleet.js";
import { apiEndpoint } from "./listen-address.js";
import { FeedStore } from "./store/feed-store.js";
import { FeedService } from "./feeds/feed-service.js";
import { feedOperations } from "./api/feed-api.js";
import { FeedServiceService } from "./gen/portcullis/v1/feed.js";
import { BouncerServiceService } from "./gen/portcullis/v1/bouncer.js";
import { BouncerStore } from "./store/bouncer-store.js";
import { startWalCheckpoints } from "./store/wal-checkpoints.js";
import { ActiveDecisions } from "./bouncers/active-decisions.js";
import { BouncerService } from "./bouncers/bouncer-service.js";
import { bouncerOperations } from "./api/bouncer-api.js";
import { startBouncerListener, type RunningBouncerListener } from "./rest/bouncer-listener.js";

export interface RunningServer {
  readonly grpcAddress: string;
  /** Re-reads the server certificate, key and CA (SIGHUP): new connections use them, open ones go on. */
  reloadTls(): void;
  close(): Promise<void>;
}

const DAY_MS = 86_400_000;

/** The composition root: config → certificates → store → drivers → services → listeners, and orderly shutdown. */
export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const tls = await resolveTls(config, log);

  const metrics = new Metrics();
  // Programs are started from a small helper process: see process-starter.ts for why.
  const exec = new Executor(log, config.netns, metrics, new HelperStarter(log, config.netns));
  if (config.netns !== undefined) await checkNetns(exec, config.netns);
  const db = openDatabase(join(config.dataDir, "portcullis.db"));
  const checkpoints = startWalCheckpoints(db, log);
  const ipsetDriver = new IpsetDriver(exec, log);
  const iptables = new IptablesDriver(exec, log);
  const eventStore = new EventStore(db);
  const events = new EventLog(eventStore);
  events.subscribe((event) => metrics.eventRecorded(event));
  // The bans and unbans of the last 30 days, followed from now on; loaded once the server listens (below).
  const banHistory = new BanHistory();
  events.subscribe((event) => banHistory.record(event));
  const audit = new AuditStore(db);
  const firewallStore = new FirewallStore(db, renderRuleLine, parseRuleLine);
  const feedStore = new FeedStore(db);
  const jailBans = new JailBanStore(db);
  // Fleet mode only with a `cluster` section: otherwise nothing connects and fleet-scope requests are refused.
  const fleetSharing = config.cluster === undefined ? undefined : (() => {
    const cluster = config.cluster;
    const store = new FleetStore(db);
    const link = new JetStreamLink(cluster, log);
    const publisher = new FleetPublisher({ link, store, node: cluster.node, log });
    const nodes = new FleetNodes({ link, node: cluster.node, version: serverVersion(), heartbeatSeconds: cluster.heartbeatSeconds, store, jailBans, log });
    return { cluster, store, link, publisher, nodes, fleet: new Fleet({ config: cluster, store, publisher, nodes }) };
  })();
  const fleet: FleetSharing = fleetSharing?.fleet ?? localOnly;
  const ipsets = new IpsetService({ kernel: ipsetDriver, rules: iptables, store: new IpsetStore(db), events, log, fleet, pendingRollbacks: () => firewallStore.rollbacks(), owners: (set) => feedStore.ownerOf(set) });
  const requests = new RequestStore(db);
  // fail2ban may be down or absent: the jail service answers UNAVAILABLE then, and recovers when it comes back.
  const fail2ban = new Fail2banClient(config.fail2ban.socket, log);
  const allowlistStore = new AllowlistStore(db);
  const allowlist = new Allowlist(allowlistStore);
  const cli = new Fail2banCli(exec, log, config.fail2ban.socket, config.fail2ban.configDir);
  const banExpiry = new BanExpiry({ store: jailBans, events, log });
  const jails = new JailService({ fail2ban, bans: jailBans, configDir: config.fail2ban.configDir, cli, allowlist, fleet, expiry: banExpiry });
  const allowlistService = new AllowlistService({ allowlist, store: allowlistStore, jails, events, log });
  const banWatcher = new BanWatcher({ jails, bans: jailBans, allowlist: allowlistService, events, log, socket: config.fail2ban.socket });

  // A batch cut short by a stop is taken back out, then the kernel, which may have lost managed state while we were
  // down (reboot, manual flush) or gained some by hand, is made to match the store, before serving.
  const rolledBack = await ipsets.rollBackInterruptedBatches();
  if (rolledBack > 0) log.warn({ entries: rolledBack }, "entries of interrupted batches rolled back");
  const repaired = await ipsets.reconcile(true);
  log.info({ ...repaired }, "managed ipsets reconciled with the kernel");
  // Feeds' sets too, before the firewall's rules (which may match them) are put back.
  const feeds = new FeedService({ store: feedStore, kernel: ipsetDriver, ipsets, allowlist, managementAddresses: config.firewall.managementAddresses, fileRoots: config.feeds.fileRoots, events, log });
  log.info({ ...(await feeds.reconcile()) }, "feed sets reconciled with the kernel");

  const crl = new CrlWatcher(tls.crl, log);
  // The API endpoint the anti-lockout check protects: the port is known once bound, so it is read lazily.
  const api = { port: 0, address: undefined as string | undefined };
  const firewall = new FirewallService({ iptables, ipsets: ipsetDriver, store: firewallStore, events, log, api, managementAddresses: config.firewall.managementAddresses });

  metrics.readFrom({
    ipsets: async () => (await ipsets.list()).map((set) => ({ name: set.definition.name, entryCount: set.entryCount })),
    rules: async () => {
      const tables = await Promise.all((["ipv4", "ipv6"] as const).map(async (family) => ({ family, snapshot: await firewall.snapshot(family, "filter") })));
      return tables.flatMap(({ family, snapshot }) => snapshot.chains.map((chain) => ({ family, chain: chain.name, count: chain.ruleCount })));
    },
    fail2banUp: async () => (await jails.status()).up,
    eventSequence: () => events.lastSequence(),
    eventSubscribers: () => events.watcherCount,
    feeds: () => feeds.metrics(),
  });
  // The other hosts' changes are applied here through the same services.
  const fleetParts = fleetSharing === undefined ? undefined : {
    ...fleetSharing,
    consumer: new FleetConsumer({
      link: fleetSharing.link,
      applier: new FleetApplier({ jails, ipsets, allowlist, managementAddresses: config.firewall.managementAddresses, store: fleetSharing.store, events, audit, log }),
      node: fleetSharing.cluster.node,
      log,
    }),
  };
  // CrowdSec bouncers read every jail's bans and the published sets' entries as decisions.
  const decisions = new ActiveDecisions({
    jailBans,
    banTime: (jail) => jails.banTime(jail),
    listEntries: (set, after, limit) => ipsets.listEntries(set, after, limit),
  }, config.bouncer.sets, log);
  const bouncers = new BouncerService({ store: new BouncerStore(db), decisions });
  const groupCommit = new GroupCommit(db);
  const invoker = new Invoker(audit, events, log, metrics, (work) => groupCommit.write(work));
  const services: ContractService[] = [
    { name: "portcullis.v1.IpsetService", definition: IpsetServiceService, operations: ipsetOperations(ipsets, requests) },
    { name: "portcullis.v1.FirewallService", definition: firewallServiceWithKeptRules, operations: firewallOperations(firewall, requests) },
    { name: "portcullis.v1.EventService", definition: EventServiceService, operations: eventOperations(events, audit, banHistory) },
    { name: "portcullis.v1.JailService", definition: JailServiceService, operations: jailOperations(jails, allowlistService) },
    { name: "portcullis.v1.FleetService", definition: FleetServiceService, operations: fleetOperations(fleet) },
    { name: "portcullis.v1.HostService", definition: HostServiceService, operations: hostOperations(new HostView({ jails, ipsets, firewall, allowlist, events, history: banHistory, fleet })) },
    { name: "portcullis.v1.FeedService", definition: FeedServiceService, operations: feedOperations(feeds, requests) },
    { name: "portcullis.v1.BouncerService", definition: BouncerServiceService, operations: bouncerOperations(bouncers) },
  ];
  // Before any request can change a table: a change a stop cut short is recorded or dropped first.
  await firewall.finishInterruptedChanges();
  const grpc = await startGrpcServer({ address: config.grpc.address, tls: tls.context(crl.pem), crl, invoker, services, log });
  const rest = await startRestServer({
    address: config.rest.address,
    tls: tls.context(crl.pem),
    crl,
    invoker,
    services,
    log,
    metrics: () => metrics.scrape(),
    consoleDir: config.console.dir,
    // Ready when the kernel tools answer and fail2ban does (the jail service needs it).
    readiness: async () => {
      const checks: Record<string, string> = {};
      const check = async (name: string, probe: () => Promise<unknown>): Promise<void> => {
        try {
          await probe();
          checks[name] = "ok";
        } catch (error) {
          checks[name] = error instanceof Error ? error.message : String(error);
        }
      };
      await check("iptables", () => iptables.command("ipv4", ["-S", "OUTPUT", "1"]));
      await check("ipset", () => ipsetDriver.list());
      await check("fail2ban", async () => {
        if (!(await jails.status()).up) throw new Error(`fail2ban-server does not answer on ${config.fail2ban.socket}`);
      });
      return { ready: Object.values(checks).every((value) => value === "ok"), checks };
    },
  });
  const bouncerListener: RunningBouncerListener | undefined = config.bouncer.address === undefined
    ? undefined
    : await startBouncerListener({ address: config.bouncer.address, tls: tls.context(undefined), bouncers, log });
  crl.onChange((pem) => {
    grpc.updateTls(tls.context(pem));
    rest.updateTls(tls.context(pem));
  });
  Object.assign(api, apiEndpoint(grpc.address));
  const firewallRepaired = await firewall.reconcile();
  log.info({ ...firewallRepaired }, "managed firewall rules reconciled with the kernel");
  // After reconciliation: the action and the watcher may create a jail's sets and rule.
  const enforcement = new JailEnforcement({ ipsets, firewall, jails, allowlist, events, log });
  const actionSocket = await ActionSocket.listen(config.fail2ban.actionSocket ?? join(config.dataDir, "fail2ban-action.sock"), enforcement, log);
  banWatcher.start(config.fail2ban.pollIntervalMs, enforcement);
  // Once the action socket listens (an unban waits for its report): bans whose duration ended while down go first.
  banExpiry.start(jails);
  feeds.start();
  if (fleetParts !== undefined) {
    fleetParts.fleet.start(events);
    fleetParts.nodes.start();
    fleetParts.publisher.start();
    fleetParts.consumer.start();
    fleetParts.link.start();
  }
  const sinkStore = new SinkStore(db);
  const sinks = config.sinks.map((sink) => new SinkRunner(sink.name, createSink(sink), { events, store: sinkStore, log }, sink.startAt));
  for (const sink of sinks) sink.start();
  const metricsServer: RunningMetricsServer | undefined = config.metrics.address === undefined ? undefined : await startMetricsServer(config.metrics.address, metrics, log);
  log.info({ grpc: grpc.address, rest: rest.address, bouncer: bouncerListener?.address ?? null, metrics: metricsServer?.address ?? null, netns: config.netns ?? null, dataDir: config.dataDir }, "listening");
  // In the background: a million events take seconds to read, which must not delay serving.
  banHistory.load((after, since, limit) => eventStore.bans(after, since, limit), events.lastSequence()).then(
    () => log.info({}, "ban history loaded"),
    (error: unknown) => log.error({ err: error }, "the ban history could not be loaded; timelines and top offenders fail until a restart"),
  );

  let reconciling = false;
  const timers = [
    config.reconcile.intervalSeconds > 0
      ? setInterval(() => {
          if (reconciling) return;
          reconciling = true;
          Promise.all([ipsets.reconcile(false), feeds.reconcile(), firewall.reconcile()])
            .catch((error: unknown) => log.error({ err: error }, "reconciliation failed"))
            .finally(() => (reconciling = false));
        }, config.reconcile.intervalSeconds * 1000)
      : undefined,
    setInterval(() => {
      requests.purgeOlderThan(DAY_MS);
      events.prune(config.events.maxEvents, config.events.maxAgeDays * DAY_MS);
      banHistory.dropBefore(events.firstSequence());
    }, 3_600_000),
  ];
  for (const timer of timers) timer?.unref();

  return {
    grpcAddress: grpc.address,
    reloadTls() {
      tls.reload();
      crl.reload();
      grpc.updateTls(tls.context(crl.pem));
      rest.updateTls(tls.context(crl.pem));
      bouncerListener?.updateTls(tls.context(undefined));
      log.info({}, "TLS certificate, key and CA reloaded");
    },
    async close() {
      for (const timer of timers) clearInterval(timer);
      grpc.health.setStatus("", "NOT_SERVING");
      await grpc.close(5_000);
      await rest.close();
      await bouncerListener?.close();
      await metricsServer?.close();
      await Promise.all(sinks.map((sink) => sink.close()));
      if (fleetParts !== undefined) {
        fleetParts.fleet.close();
        fleetParts.consumer.close();
        fleetParts.publisher.close();
        fleetParts.nodes.close();
        await fleetParts.link.close();
      }
      await actionSocket.close();
      feeds.close();
      crl.close();
      firewall.close();
      iptables.close();
      banWatcher.close();
      banExpiry.close();
      allowlistService.close();
      fail2ban.close();
      ipsetDriver.close();
      await firewallStore.close();
      await checkpoints.close();
      db.close();
      exec.close();
    },
  };
}

/** The server package's version, for the fleet's heartbeats: by package name, so that the bundle finds it too. */
function serverVersion(): string {
  return (createRequire(import.meta.url)("@portcullis/server/package.json") as { version: string }).version;
}
