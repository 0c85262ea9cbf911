import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import type { IncomingMessage } from "node:http";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { pino } from "pino";
import request, { type Response } from "supertest";
import { startServer, type RunningServer } from "../../server/src/main.js";
import { loadConfig } from "../../server/src/config.js";
import { clientBundlePaths, issueClientCertificate } from "../../server/src/auth/cert-authority.js";
import { Fail2banServer } from "../harness/fail2ban.js";
import { NatsCluster } from "../harness/nats.js";
import { operationOfRequest, responseOf, schemaValidator, specOperations, type SpecOperation } from "../harness/openapi-spec.js";

/**
 * Every operation of openapi/portcullis.v1.yaml through supertest, against the real composition root in this process
 * (kernel commands inside a throwaway namespace, a real fail2ban-server beside them): its happy path and each error
 * class that applies, every answer checked against the response the spec declares for its status.
 */

type Caller = "admin" | "operator" | "viewer" | "anonymous";
type Role = Exclude<Caller, "anonymous">;
/** The error classes each operation is checked for (UNAUTHENTICATED and PERMISSION_DENIED are derived for all). */
type ErrorClass = "INVALID_ARGUMENT" | "NOT_FOUND" | "ALREADY_EXISTS" | "FAILED_PRECONDITION";

/** A request of the operation under test; the path is computed when sent, so it can use what earlier answers said. */
interface Call {
  readonly path: string | (() => string);
  readonly body?: object;
  readonly headers?: Readonly<Record<string, string>>;
}

interface Refusal extends Call {
  readonly code: ErrorClass;
  readonly reason: string;
}

interface Case {
  /** The least role the operation needs. */
  readonly role: Role;
  /** The happy call (made with the least role that may make it); `check` looks at what it answered. */
  readonly ok: Call & { readonly check?: (reply: Response) => void };
  /** Made after the happy call, in order. */
  readonly refusals: readonly Refusal[];
  /** Why an error class that would otherwise be required (see required()) does not apply. */
  readonly notApplicable?: Partial<Record<ErrorClass, string>>;
}

/** The design's HTTP mapping (grpc-gateway's table). */
const HTTP_STATUS: Readonly<Record<ErrorClass | "UNAUTHENTICATED" | "PERMISSION_DENIED", number>> = {
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 400,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
};
const RANK: Readonly<Record<Role, number>> = { viewer: 0, operator: 1, admin: 2 };

const FILTER = "/v1/firewall/ipv4/tables/filter";
const ACCEPT_SMTP = { protocol: "tcp", destinationPort: { ports: [{ first: 25, last: 25 }] }, target: { kind: "TARGET_KIND_ACCEPT" } };
const DROP_SPAM = { matchSet: { set: "spam", directions: ["SET_DIRECTION_SRC"] }, target: { kind: "TARGET_KIND_DROP" } };
/** The list of the feed the Feed cases make (written in "before"). */
const FEED_LIST = join(tmpdir(), `pc-supertest-feed-${process.pid}.list`);
/** What earlier answers said, for later paths. */
const state = { ruleId: "" };

/** The operations in a working order: each one's happy call leaves what the next ones need. */
const CASES: ReadonlyArray<readonly [string, Case]> = [
  // Ipsets.
  ["CreateIpset", {
    role: "admin",
    ok: { path: "/v1/ipsets", body: { ipsetId: "spam", ipset: { type: "IPSET_TYPE_HASH_NET", family: "ADDRESS_FAMILY_INET", defaultTimeout: 0, comments: true } } },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_IPSET_NAME", path: "/v1/ipsets", body: { ipsetId: "no spaces", ipset: { type: "IPSET_TYPE_HASH_IP", family: "ADDRESS_FAMILY_INET" } } },
      { code: "ALREADY_EXISTS", reason: "IPSET_ALREADY_EXISTS", path: "/v1/ipsets", body: { ipsetId: "spam", ipset: { type: "IPSET_TYPE_HASH_IP", family: "ADDRESS_FAMILY_INET" } } },
    ],
  }],
  ["ImportIpsets", {
    role: "admin",
    ok: { path: "/v1/ipsets:import", body: { content: "create imp hash:net family inet\nadd imp 198.51.100.0/24\n" } },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_IMPORT", path: "/v1/ipsets:import", body: { content: "this is not ipset save output\n" } },
      { code: "FAILED_PRECONDITION", reason: "IPSET_INCOMPATIBLE", path: "/v1/ipsets:import", body: { content: "create spam hash:ip family inet\n" } },
    ],
    notApplicable: { ALREADY_EXISTS: "an existing managed set of the same type receives the entries (documented)" },
  }],
  ["ListIpsets", {
    role: "viewer",
    ok: { path: "/v1/ipsets?pageSize=10", check: (reply) => assert.deepEqual(names(reply.body.ipsets), ["ipsets/foreign", "ipsets/imp", "ipsets/spam"]) },
    refusals: [{ code: "INVALID_ARGUMENT", reason: "INVALID_PAGE_TOKEN", path: "/v1/ipsets?pageToken=not-a-token" }],
  }],
  ["GetIpset", {
    role: "viewer",
    ok: { path: "/v1/ipsets/spam", check: (reply) => assert.equal(reply.body.name, "ipsets/spam") },
    refusals: [
      { code: "NOT_FOUND", reason: "IPSET_NOT_FOUND", path: "/v1/ipsets/nope" },
      { code: "INVALID_ARGUMENT", reason: "INVALID_IPSET_NAME", path: "/v1/ipsets/no%20spaces" },
    ],
  }],
  ["AddEntry", {
    role: "operator",
    ok: { path: "/v1/ipsets/spam/entries", body: { entry: { element: "203.0.113.0/24", timeout: 60, comment: "ops" } }, check: (reply) => assert.equal(reply.body.element, "203.0.113.0/24") },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_ELEMENT", path: "/v1/ipsets/spam/entries", body: { entry: { element: "not-an-address" } } },
      { code: "NOT_FOUND", reason: "IPSET_NOT_FOUND", path: "/v1/ipsets/nope/entries", body: { entry: { element: "203.0.113.1" } } },
      { code: "FAILED_PRECONDITION", reason: "COMMENT_NOT_SUPPORTED", path: "/v1/ipsets/imp/entries", body: { entry: { element: "203.0.113.1", comment: "imp has no comments" } } },
    ],
    notApplicable: { ALREADY_EXISTS: "adding an element that is in the set updates its timeout and comment" },
  }],
  ["ListEntries", {
    role: "viewer",
    ok: { path: "/v1/ipsets/spam/entries?pageSize=10", check: (reply) => assert.deepEqual(reply.body.entries.map((entry: { element: string }) => entry.element), ["203.0.113.0/24"]) },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_REQUEST", path: "/v1/ipsets/spam/entries?pageSize=ten" },
      { code: "NOT_FOUND", reason: "IPSET_NOT_FOUND", path: "/v1/ipsets/nope/entries" },
    ],
  }],
  ["TestEntry", {
    role: "viewer",
    ok: { path: "/v1/ipsets/spam/entries:test?element=203.0.113.5", check: (reply) => assert.equal(reply.body.matched, true) },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_ELEMENT", path: "/v1/ipsets/spam/entries:test?element=not-an-address" },
      { code: "NOT_FOUND", reason: "IPSET_NOT_FOUND", path: "/v1/ipsets/nope/entries:test?element=203.0.113.5" },
    ],
  }],
  ["DeleteEntry", {
    role: "operator",
    ok: { path: "/v1/ipsets/spam/entries/203.0.113.0%2F24" },
    refusals: [
      { code: "NOT_FOUND", reason: "ENTRY_NOT_FOUND", path: "/v1/ipsets/spam/entries/203.0.113.0%2F24" },
      { code: "NOT_FOUND", reason: "IPSET_NOT_FOUND", path: "/v1/ipsets/nope/entries/203.0.113.1" },
      { code: "INVALID_ARGUMENT", reason: "INVALID_ELEMENT", path: "/v1/ipsets/spam/entries/not-an-address" },
    ],
  }],
  ["BatchAddEntries", {
    role: "operator",
    ok: { path: "/v1/ipsets/spam/entries:batchAdd", body: { elements: ["203.0.113.1", "203.0.113.2"], timeout: 60 }, check: (reply) => assert.equal(reply.body.addedCount, 2) },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_ELEMENT", path: "/v1/ipsets/spam/entries:batchAdd", body: { elements: ["203.0.113.3", "not-an-address"] } },
      { code: "NOT_FOUND", reason: "IPSET_NOT_FOUND", path: "/v1/ipsets/nope/entries:batchAdd", body: { elements: ["203.0.113.3"] } },
      { code: "FAILED_PRECONDITION", reason: "TIMEOUT_NOT_SUPPORTED", path: "/v1/ipsets/imp/entries:batchAdd", body: { elements: ["203.0.113.3"], timeout: 60 } },
    ],
  }],
  ["BatchDeleteEntries", {
    role: "operator",
    ok: { path: "/v1/ipsets/spam/entries:batchDelete", body: { elements: ["203.0.113.1"] } },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_ELEMENT", path: "/v1/ipsets/spam/entries:batchDelete", body: { elements: ["not-an-address"] } },
      { code: "NOT_FOUND", reason: "IPSET_NOT_FOUND", path: "/v1/ipsets/nope/entries:batchDelete", body: { elements: ["203.0.113.1"] } },
    ],
  }],
  ["ExportIpsets", {
    role: "viewer",
    ok: { path: "/v1/ipsets:export?names=ipsets%2Fspam", check: (reply) => assert.match(reply.body.content, /^add spam 203\.0\.113\.2 /m) },
    refusals: [
      { code: "NOT_FOUND", reason: "IPSET_NOT_FOUND", path: "/v1/ipsets:export?names=ipsets%2Fnope" },
      { code: "INVALID_ARGUMENT", reason: "INVALID_RESOURCE_NAME", path: "/v1/ipsets:export?names=spam" },
    ],
  }],
  ["RenameIpset", {
    role: "admin",
    ok: { path: "/v1/ipsets/imp:rename", body: { newIpsetId: "imp2" }, check: (reply) => assert.equal(reply.body.name, "ipsets/imp2") },
    refusals: [
      { code: "NOT_FOUND", reason: "IPSET_NOT_FOUND", path: "/v1/ipsets/imp:rename", body: { newIpsetId: "imp3" } },
      { code: "INVALID_ARGUMENT", reason: "INVALID_IPSET_NAME", path: "/v1/ipsets/imp2:rename", body: { newIpsetId: "no spaces" } },
      { code: "ALREADY_EXISTS", reason: "IPSET_ALREADY_EXISTS", path: "/v1/ipsets/imp2:rename", body: { newIpsetId: "spam" } },
    ],
  }],
  ["AdoptIpset", {
    role: "admin",
    // `foreign` was made with the ipset tool itself (see before()).
    ok: { path: "/v1/ipsets/foreign:adopt", body: {}, check: (reply) => assert.equal(reply.body.name, "ipsets/foreign") },
    refusals: [
      { code: "FAILED_PRECONDITION", reason: "IPSET_ALREADY_MANAGED", path: "/v1/ipsets/spam:adopt", body: {} },
      { code: "NOT_FOUND", reason: "IPSET_NOT_FOUND", path: "/v1/ipsets/nope:adopt", body: {} },
    ],
  }],
  ["SwapIpsets", {
    role: "admin",
    ok: { path: "/v1/ipsets/imp2:swap", body: { other: "ipsets/spam" } },
    refusals: [
      { code: "FAILED_PRECONDITION", reason: "IPSET_INCOMPATIBLE", path: "/v1/ipsets/spam:swap", body: { other: "ipsets/foreign" } },
      { code: "NOT_FOUND", reason: "IPSET_NOT_FOUND", path: "/v1/ipsets/spam:swap", body: { other: "ipsets/nope" } },
      { code: "INVALID_ARGUMENT", reason: "INVALID_RESOURCE_NAME", path: "/v1/ipsets/spam:swap", body: { other: "spam" } },
    ],
  }],
  ["FlushIpset", {
    role: "admin",
    ok: { path: "/v1/ipsets/spam:flush", body: {}, check: (reply) => assert.equal(reply.body.entryCount ?? 0, 0) },
    refusals: [{ code: "NOT_FOUND", reason: "IPSET_NOT_FOUND", path: "/v1/ipsets/nope:flush", body: {} }],
  }],

  // Firewall.
  ["ListChains", {
    role: "viewer",
    ok: { path: `${FILTER}/chains`, check: (reply) => assert.ok(reply.body.chains.some((chain: { name: string }) => chain.name.endsWith("/chains/INPUT"))) },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_RESOURCE_NAME", path: "/v1/firewall/ipv5/tables/filter/chains" },
      { code: "INVALID_ARGUMENT", reason: "INVALID_RESOURCE_NAME", path: "/v1/firewall/ipv4/tables/nope/chains" },
    ],
    notApplicable: { NOT_FOUND: "the tables are a fixed set (filter, raw, mangle, nat): another name is INVALID_RESOURCE_NAME" },
  }],
  ["CreateChain", {
    role: "admin",
    ok: { path: `${FILTER}/chains`, body: { chainId: "OPS" } },
    refusals: [
      { code: "ALREADY_EXISTS", reason: "CHAIN_ALREADY_EXISTS", path: `${FILTER}/chains`, body: { chainId: "OPS" } },
      { code: "INVALID_ARGUMENT", reason: "INVALID_CHAIN_NAME", path: `${FILTER}/chains`, body: { chainId: "no spaces" } },
    ],
    notApplicable: { NOT_FOUND: "the tables are a fixed set (filter, raw, mangle, nat): another name is INVALID_RESOURCE_NAME" },
  }],
  ["GetChain", {
    role: "viewer",
    ok: { path: `${FILTER}/chains/OPS` },
    refusals: [{ code: "NOT_FOUND", reason: "CHAIN_NOT_FOUND", path: `${FILTER}/chains/NOPE` }],
  }],
  ["CreateRule", {
    role: "admin",
    ok: { path: `${FILTER}/chains/OPS/rules`, body: { rule: DROP_SPAM }, check: (reply) => void (state.ruleId = reply.body.id) },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "UNKNOWN_REFERENCE", path: `${FILTER}/chains/OPS/rules`, body: { rule: { ...DROP_SPAM, matchSet: { set: "nope" } } } },
      { code: "NOT_FOUND", reason: "CHAIN_NOT_FOUND", path: `${FILTER}/chains/NOPE/rules`, body: { rule: ACCEPT_SMTP } },
    ],
    notApplicable: { ALREADY_EXISTS: "each rule gets a new id; the same rule twice is two rules, as in iptables" },
  }],
  ["ListRules", {
    role: "viewer",
    ok: { path: `${FILTER}/chains/OPS/rules?pageSize=10`, check: (reply) => assert.deepEqual(reply.body.rules.map((rule: { id: string }) => rule.id), [state.ruleId]) },
    refusals: [
      { code: "NOT_FOUND", reason: "CHAIN_NOT_FOUND", path: `${FILTER}/chains/NOPE/rules` },
      { code: "INVALID_ARGUMENT", reason: "INVALID_PAGE_TOKEN", path: `${FILTER}/chains/OPS/rules?pageToken=not-a-token` },
    ],
  }],
  ["GetRule", {
    role: "viewer",
    ok: { path: () => `${FILTER}/chains/OPS/rules/${state.ruleId}`, check: (reply) => assert.equal(reply.body.id, state.ruleId) },
    refusals: [{ code: "NOT_FOUND", reason: "RULE_NOT_FOUND", path: `${FILTER}/chains/OPS/rules/999999` }],
  }],
  ["ReplaceRule", {
    role: "admin",
    // Still matching `spam`, so that DeleteIpset below finds it in use.
    ok: { path: () => `${FILTER}/chains/OPS/rules/${state.ruleId}`, body: { rule: { ...DROP_SPAM, protocol: "tcp" } }, check: (reply) => void (state.ruleId = reply.body.id) },
    refusals: [
      { code: "NOT_FOUND", reason: "RULE_NOT_FOUND", path: `${FILTER}/chains/OPS/rules/999999`, body: { rule: ACCEPT_SMTP } },
      { code: "INVALID_ARGUMENT", reason: "INVALID_RULE", path: () => `${FILTER}/chains/OPS/rules/${state.ruleId}`, body: { rule: { ...ACCEPT_SMTP, destinationPort: { ports: [{ first: 70000, last: 70000 }] } } } },
    ],
  }],
  ["DeleteIpset", {
    role: "admin",
    ok: { path: "/v1/ipsets/imp2" },
    refusals: [
      { code: "FAILED_PRECONDITION", reason: "IPSET_IN_USE", path: "/v1/ipsets/spam" },
      { code: "NOT_FOUND", reason: "IPSET_NOT_FOUND", path: "/v1/ipsets/imp2" },
    ],
  }],
  ["DeleteRule", {
    role: "admin",
    ok: { path: () => `${FILTER}/chains/OPS/rules/${state.ruleId}` },
    refusals: [{ code: "NOT_FOUND", reason: "RULE_NOT_FOUND", path: () => `${FILTER}/chains/OPS/rules/${state.ruleId}` }],
  }],
  ["DeleteChain", {
    role: "admin",
    ok: { path: `${FILTER}/chains/OPS` },
    refusals: [
      { code: "NOT_FOUND", reason: "CHAIN_NOT_FOUND", path: `${FILTER}/chains/OPS` },
      { code: "FAILED_PRECONDITION", reason: "CHAIN_BUILTIN", path: `${FILTER}/chains/INPUT` },
    ],
  }],
  ["SetChainPolicy", {
    role: "admin",
    ok: { path: `${FILTER}/chains/INPUT:setPolicy`, body: { policy: "CHAIN_POLICY_ACCEPT" } },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_POLICY", path: `${FILTER}/chains/INPUT:setPolicy`, body: { policy: "CHAIN_POLICY_UNSPECIFIED" } },
      { code: "NOT_FOUND", reason: "CHAIN_NOT_FOUND", path: `${FILTER}/chains/NOPE:setPolicy`, body: { policy: "CHAIN_POLICY_ACCEPT" } },
      { code: "FAILED_PRECONDITION", reason: "LOCKOUT", path: `${FILTER}/chains/INPUT:setPolicy`, body: { policy: "CHAIN_POLICY_DROP" } },
    ],
  }],
  ["ListServices", {
    role: "viewer",
    ok: { path: "/v1/firewall/services", check: (reply) => assert.ok(reply.body.services.some((service: { name: string }) => service.name === "ssh")) },
    refusals: [],
  }],
  ["AllowService", {
    role: "admin",
    ok: { path: `${FILTER}/chains/INPUT:allowService`, body: { services: ["ssh"] } },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "UNKNOWN_SERVICE", path: `${FILTER}/chains/INPUT:allowService`, body: { services: ["nope"] } },
      { code: "NOT_FOUND", reason: "CHAIN_NOT_FOUND", path: `${FILTER}/chains/NOPE:allowService`, body: { services: ["ssh"] } },
    ],
  }],
  ["ExportRuleset", {
    role: "viewer",
    ok: { path: `${FILTER}:export`, check: (reply) => assert.match(reply.body.text, /--dport 22 .*-j ACCEPT/) },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_RESOURCE_NAME", path: "/v1/firewall/ipv5/tables/filter:export" },
    ],
    notApplicable: { NOT_FOUND: "the tables are a fixed set (filter, raw, mangle, nat): another name is INVALID_RESOURCE_NAME" },
  }],
  ["ApplyRuleset", {
    role: "admin",
    ok: { path: `${FILTER}:apply`, body: { rules: [{ chain: "INPUT", ...ACCEPT_SMTP }], confirmWithin: 60 } },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_RULE", path: `${FILTER}:apply`, body: { rules: [{ chain: "INPUT", ...ACCEPT_SMTP, destinationPort: { ports: [{ first: 70000, last: 70000 }] } }] } },
    ],
    notApplicable: { NOT_FOUND: "the tables are a fixed set (filter, raw, mangle, nat): another name is INVALID_RESOURCE_NAME" },
  }],
  ["ConfirmRuleset", {
    role: "admin",
    ok: { path: `${FILTER}:confirm`, body: {} },
    refusals: [
      { code: "FAILED_PRECONDITION", reason: "NO_PENDING_ROLLBACK", path: `${FILTER}:confirm`, body: {} },
    ],
    notApplicable: { NOT_FOUND: "the tables are a fixed set (filter, raw, mangle, nat): another name is INVALID_RESOURCE_NAME" },
  }],
  ["EnablePanicMode", {
    role: "admin",
    ok: { path: "/v1/firewall/panic:enable", body: {} },
    refusals: [{ code: "FAILED_PRECONDITION", reason: "PANIC_MODE", path: "/v1/firewall/panic:enable", body: {} }],
  }],
  ["DisablePanicMode", {
    role: "admin",
    ok: { path: "/v1/firewall/panic:disable", body: {} },
    refusals: [{ code: "FAILED_PRECONDITION", reason: "PANIC_MODE", path: "/v1/firewall/panic:disable", body: {} }],
  }],
  ["GetPanicMode", {
    role: "viewer",
    // proto3 JSON leaves a false out.
    ok: { path: "/v1/firewall/panic", check: (reply) => assert.notEqual(reply.body.enabled, true) },
    refusals: [],
  }],

  // Jails and the allowlist.
  ["ListJails", {
    role: "viewer",
    ok: { path: "/v1/jails", check: (reply) => assert.deepEqual(names(reply.body.jails), ["jails/bulk", "jails/dovecot"]) },
    refusals: [],
  }],
  ["GetJail", {
    role: "viewer",
    ok: { path: "/v1/jails/dovecot?view=JAIL_VIEW_FULL", check: (reply) => assert.equal(reply.body.name, "jails/dovecot") },
    refusals: [
      { code: "NOT_FOUND", reason: "JAIL_NOT_FOUND", path: "/v1/jails/nope" },
      { code: "INVALID_ARGUMENT", reason: "INVALID_REQUEST", path: "/v1/jails/dovecot?view=JAIL_VIEW_HUGE" },
    ],
  }],
  ["GetFail2banStatus", {
    role: "viewer",
    ok: { path: "/v1/fail2ban", check: (reply) => assert.equal(reply.body.up, true) },
    refusals: [],
  }],
  ["AddAllowlistEntry", {
    role: "operator",
    ok: { path: "/v1/allowlist", body: { network: "198.51.100.7", comment: "monitoring", timeout: 600 } },
    refusals: [{ code: "INVALID_ARGUMENT", reason: "INVALID_ELEMENT", path: "/v1/allowlist", body: { network: "not-a-network" } }],
    notApplicable: { ALREADY_EXISTS: "adding a network that is on the allowlist updates its comment and timeout" },
  }],
  ["ListAllowlist", {
    role: "viewer",
    ok: { path: "/v1/allowlist", check: (reply) => assert.deepEqual(reply.body.entries.map((entry: { network: string }) => entry.network), ["198.51.100.7"]) },
    refusals: [],
  }],
  ["AddIgnoreIp", {
    role: "operator",
    ok: { path: "/v1/jails/dovecot:addIgnoreIp", body: { entry: "192.0.2.128/25" } },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_ELEMENT", path: "/v1/jails/dovecot:addIgnoreIp", body: { entry: "not-an-address" } },
      { code: "NOT_FOUND", reason: "JAIL_NOT_FOUND", path: "/v1/jails/nope:addIgnoreIp", body: { entry: "192.0.2.128/25" } },
    ],
    notApplicable: { ALREADY_EXISTS: "fail2ban keeps one copy of an ignore entry added twice" },
  }],
  ["BanIp", {
    role: "operator",
    ok: { path: "/v1/jails/dovecot:ban", body: { address: "203.0.113.7" } },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_ELEMENT", path: "/v1/jails/dovecot:ban", body: { address: "not-an-address" } },
      { code: "NOT_FOUND", reason: "JAIL_NOT_FOUND", path: "/v1/jails/nope:ban", body: { address: "203.0.113.7" } },
      { code: "FAILED_PRECONDITION", reason: "ADDRESS_ALLOWLISTED", path: "/v1/jails/dovecot:ban", body: { address: "198.51.100.7" } },
      { code: "FAILED_PRECONDITION", reason: "ADDRESS_IGNORED", path: "/v1/jails/dovecot:ban", body: { address: "192.0.2.200" } },
    ],
  }],
  // Fleet (of one).
  ["ListNodes", {
    role: "viewer",
    ok: { path: "/v1/nodes", check: (reply) => assert.deepEqual(reply.body.nodes.map((node: { name: string }) => node.name), ["nodes/supertest"]) },
    refusals: [],
  }],
  ["SearchBans", {
    role: "viewer",
    ok: { path: "/v1/nodes/-/bans:search?address=203.0.113.7", check: (reply) => assert.deepEqual(reply.body.bans.map((ban: { resource: string }) => ban.resource), ["jails/dovecot/bans/203.0.113.7"]) },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_ELEMENT", path: "/v1/nodes/-/bans:search?address=not-an-address" },
      { code: "INVALID_ARGUMENT", reason: "INVALID_TIMEOUT", path: "/v1/nodes/-/bans:search?address=203.0.113.7&timeoutMs=60000" },
    ],
  }],
  ["RemoveIgnoreIp", {
    role: "operator",
    ok: { path: "/v1/jails/dovecot:removeIgnoreIp", body: { entry: "192.0.2.128/25" } },
    refusals: [
      // Any entry fail2ban holds can be removed (its configuration may have host names), so only presence is checked.
      { code: "NOT_FOUND", reason: "ENTRY_NOT_FOUND", path: "/v1/jails/dovecot:removeIgnoreIp", body: { entry: "192.0.2.128/25" } },
      { code: "NOT_FOUND", reason: "JAIL_NOT_FOUND", path: "/v1/jails/nope:removeIgnoreIp", body: { entry: "192.0.2.128/25" } },
    ],
  }],
  ["BatchBanIp", {
    role: "operator",
    ok: { path: "/v1/jails/dovecot:batchBan", body: { addresses: ["203.0.113.8", "2001:db8:5::1"] } },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_ELEMENT", path: "/v1/jails/dovecot:batchBan", body: { addresses: ["203.0.113.9", "not-an-address"] } },
      { code: "NOT_FOUND", reason: "JAIL_NOT_FOUND", path: "/v1/jails/nope:batchBan", body: { addresses: ["203.0.113.9"] } },
    ],
  }],
  ["UnbanIp", {
    role: "operator",
    ok: { path: "/v1/jails/dovecot:unban", body: { address: "203.0.113.7" } },
    refusals: [
      { code: "NOT_FOUND", reason: "BAN_NOT_FOUND", path: "/v1/jails/dovecot:unban", body: { address: "203.0.113.7" } },
      { code: "NOT_FOUND", reason: "JAIL_NOT_FOUND", path: "/v1/jails/nope:unban", body: { address: "203.0.113.7" } },
      { code: "INVALID_ARGUMENT", reason: "INVALID_ELEMENT", path: "/v1/jails/dovecot:unban", body: { address: "not-an-address" } },
    ],
  }],
  ["UnbanAll", {
    role: "operator",
    ok: { path: "/v1/jails:unbanAll", body: {} },
    refusals: [],
  }],
  ["ReportFailure", {
    role: "operator",
    ok: { path: "/v1/jails/dovecot:reportFailure", body: { address: "203.0.113.9", message: "imap auth failed" } },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_ELEMENT", path: "/v1/jails/dovecot:reportFailure", body: { address: "not-an-address" } },
      { code: "NOT_FOUND", reason: "JAIL_NOT_FOUND", path: "/v1/jails/nope:reportFailure", body: { address: "203.0.113.9" } },
    ],
  }],
  ["UpdateJail", {
    role: "admin",
    ok: { path: "/v1/jails/dovecot", body: { banTime: 700 }, check: (reply) => assert.equal(reply.body.name, "jails/dovecot") },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "NOTHING_TO_UPDATE", path: "/v1/jails/dovecot", body: {} },
      { code: "INVALID_ARGUMENT", reason: "INVALID_REQUEST", path: "/v1/jails/dovecot", body: { maxRetry: -1 } },
      { code: "NOT_FOUND", reason: "JAIL_NOT_FOUND", path: "/v1/jails/nope", body: { banTime: 700 } },
    ],
  }],
  ["RemoveAllowlistEntry", {
    role: "operator",
    ok: { path: "/v1/allowlist:remove", body: { network: "198.51.100.7" } },
    refusals: [
      { code: "NOT_FOUND", reason: "ENTRY_NOT_FOUND", path: "/v1/allowlist:remove", body: { network: "198.51.100.7" } },
      { code: "INVALID_ARGUMENT", reason: "INVALID_ELEMENT", path: "/v1/allowlist:remove", body: { network: "not-a-network" } },
    ],
  }],
  ["StopJail", {
    role: "admin",
    ok: { path: "/v1/jails/dovecot:stop", body: {} },
    refusals: [{ code: "NOT_FOUND", reason: "JAIL_NOT_FOUND", path: "/v1/jails/dovecot:stop", body: {} }],
  }],
  ["StartJail", {
    role: "admin",
    ok: { path: "/v1/jails/dovecot:start", body: {}, check: (reply) => assert.equal(reply.body.name, "jails/dovecot") },
    refusals: [
      { code: "FAILED_PRECONDITION", reason: "JAIL_RUNNING", path: "/v1/jails/dovecot:start", body: {} },
      { code: "NOT_FOUND", reason: "JAIL_NOT_FOUND", path: "/v1/jails/nope:start", body: {} },
    ],
  }],
  ["ReloadJails", {
    role: "admin",
    ok: { path: "/v1/jails/-:reload", body: {} },
    refusals: [{ code: "NOT_FOUND", reason: "JAIL_NOT_FOUND", path: "/v1/jails/nope:reload", body: {} }],
  }],

  // Feeds (a file source: FEED_LIST, written before the run).
  ["CreateFeed", {
    role: "admin",
    ok: { path: "/v1/feeds", body: { feedId: "sf", feed: { source: pathToFileURL(FEED_LIST).href, format: "FEED_FORMAT_PLAIN", ipset: "ipsets/sf", intervalSeconds: 3600 } }, check: (reply) => assert.equal(reply.body.ipsetV6, "ipsets/sf-v6") },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_FEED_NAME", path: "/v1/feeds", body: { feedId: "no spaces", feed: { source: "https://127.0.0.1/x", format: "FEED_FORMAT_PLAIN", ipset: "ipsets/sf2" } } },
      { code: "INVALID_ARGUMENT", reason: "INVALID_FEED_SOURCE", path: "/v1/feeds", body: { feedId: "sf2", feed: { source: "gopher://127.0.0.1/x", format: "FEED_FORMAT_PLAIN", ipset: "ipsets/sf2" } } },
      { code: "ALREADY_EXISTS", reason: "FEED_ALREADY_EXISTS", path: "/v1/feeds", body: { feedId: "sf", feed: { source: "https://127.0.0.1/x", format: "FEED_FORMAT_PLAIN", ipset: "ipsets/sf2" } } },
      { code: "ALREADY_EXISTS", reason: "IPSET_ALREADY_EXISTS", path: "/v1/feeds", body: { feedId: "sf2", feed: { source: "https://127.0.0.1/x", format: "FEED_FORMAT_PLAIN", ipset: "ipsets/spam" } } },
    ],
  }],
  ["ListFeeds", {
    role: "viewer",
    ok: { path: "/v1/feeds", check: (reply) => assert.deepEqual(names(reply.body.feeds), ["feeds/sf"]) },
    refusals: [{ code: "INVALID_ARGUMENT", reason: "INVALID_PAGE_TOKEN", path: "/v1/feeds?pageToken=not-a-token" }],
  }],
  ["GetFeed", {
    role: "viewer",
    ok: { path: "/v1/feeds/sf", check: (reply) => assert.equal(reply.body.format, "FEED_FORMAT_PLAIN") },
    refusals: [
      { code: "NOT_FOUND", reason: "FEED_NOT_FOUND", path: "/v1/feeds/nope" },
      { code: "INVALID_ARGUMENT", reason: "INVALID_FEED_NAME", path: "/v1/feeds/-nope" },
    ],
  }],
  ["RefreshFeed", {
    role: "operator",
    ok: { path: "/v1/feeds/sf:refresh", body: { force: true }, check: (reply) => assert.deepEqual([reply.body.changed, reply.body.feed.status.entryCount], [true, 2]) },
    refusals: [{ code: "NOT_FOUND", reason: "FEED_NOT_FOUND", path: "/v1/feeds/nope:refresh", body: {} }],
  }],
  ["UpdateFeed", {
    role: "admin",
    ok: { path: "/v1/feeds/sf", body: { intervalSeconds: 600, maxShrink: 0.2 }, check: (reply) => assert.deepEqual([reply.body.intervalSeconds, reply.body.maxShrink], [600, 0.2]) },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "NOTHING_TO_UPDATE", path: "/v1/feeds/sf", body: {} },
      { code: "INVALID_ARGUMENT", reason: "INVALID_SETTING", path: "/v1/feeds/sf", body: { intervalSeconds: 5 } },
      { code: "NOT_FOUND", reason: "FEED_NOT_FOUND", path: "/v1/feeds/nope", body: { intervalSeconds: 600 } },
    ],
  }],
  ["DeleteFeed", {
    role: "admin",
    ok: { path: "/v1/feeds/sf" },
    refusals: [{ code: "NOT_FOUND", reason: "FEED_NOT_FOUND", path: "/v1/feeds/sf" }],
  }],

  // Bouncers: admin only (keys to the bouncer listener).
  ["CreateBouncer", {
    role: "admin",
    ok: { path: "/v1/bouncers", body: { bouncerId: "sb" }, check: (reply) => assert.deepEqual([reply.body.bouncer.name, /^[0-9a-f]{64}$/.test(reply.body.apiKey)], ["bouncers/sb", true]) },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_BOUNCER_NAME", path: "/v1/bouncers", body: { bouncerId: "no spaces" } },
      { code: "ALREADY_EXISTS", reason: "BOUNCER_ALREADY_EXISTS", path: "/v1/bouncers", body: { bouncerId: "sb" } },
    ],
  }],
  ["ListBouncers", {
    role: "admin",
    ok: { path: "/v1/bouncers", check: (reply) => assert.deepEqual([names(reply.body.bouncers), reply.body.bouncers[0].apiKey], [["bouncers/sb"], undefined]) },
    refusals: [{ code: "INVALID_ARGUMENT", reason: "INVALID_PAGE_TOKEN", path: "/v1/bouncers?pageToken=not-a-token" }],
  }],
  ["DeleteBouncer", {
    role: "admin",
    ok: { path: "/v1/bouncers/sb" },
    refusals: [
      { code: "NOT_FOUND", reason: "BOUNCER_NOT_FOUND", path: "/v1/bouncers/sb" },
      { code: "INVALID_ARGUMENT", reason: "INVALID_BOUNCER_NAME", path: "/v1/bouncers/-sb" },
    ],
  }],

  // Events and audit.
  ["ListEvents", {
    role: "viewer",
    ok: { path: "/v1/events:list?afterSequence=0&pageSize=100&types=EVENT_TYPE_IPSET_CREATED", check: (reply) => assert.ok(reply.body.events.some((event: { resource: string }) => event.resource === "ipsets/spam")) },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_REQUEST", path: "/v1/events:list?types=EVENT_TYPE_NONSENSE" },
      { code: "INVALID_ARGUMENT", reason: "INVALID_REQUEST", path: "/v1/events:list?afterSequence=soon" },
      { code: "INVALID_ARGUMENT", reason: "INVALID_ORDER_BY", path: "/v1/events:list?orderBy=time%20desc" },
    ],
  }],
  ["ListAuditRecords", {
    role: "viewer",
    ok: { path: "/v1/auditRecords?pageSize=10", check: (reply) => assert.equal(reply.body.records.length, 10) },
    refusals: [{ code: "INVALID_ARGUMENT", reason: "INVALID_PAGE_TOKEN", path: "/v1/auditRecords?pageToken=not-a-token" }],
  }],
  ["WatchEvents", {
    role: "viewer",
    ok: { path: "/v1/events?afterSequence=0&resourcePrefix=ipsets%2Fspam", check: (reply) => {
      const [first] = serverSentEvents(reply.body as string);
      assert.ok(first !== undefined, "an event was replayed");
      assert.equal(first.data.resource, "ipsets/spam");
      assert.equal(first.id, String(first.data.sequence));
      const validate = schemaValidator("portcullis.v1.Event");
      assert.ok(validate(first.data), JSON.stringify(validate.errors));
    } },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_REQUEST", path: "/v1/events?afterSequence=soon" },
      { code: "INVALID_ARGUMENT", reason: "INVALID_REQUEST", path: "/v1/events", headers: { "last-event-id": "yesterday" } },
    ],
  }],

  ["ExportEvents", {
    role: "viewer",
    ok: { path: "/v1/events:export?resourcePrefix=ipsets%2Fspam&types=EVENT_TYPE_IPSET_CREATED", check: (reply) => {
      assert.equal(reply.headers["content-disposition"], 'attachment; filename="events.csv"');
      const [header, first] = textOf(reply).split("\r\n");
      assert.equal(header, "sequence,time,type,resource,principal,origin,jail,address,attributes");
      assert.match(first ?? "", /^\d+,[^,]+,IPSET_CREATED,ipsets\/spam,admin,api,,,"\{""type"":""hash:net""\}"$/);
    } },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_FILTER", path: "/v1/events:export?jail=dovecot" },
      { code: "INVALID_ARGUMENT", reason: "INVALID_ELEMENT", path: "/v1/events:export?address=not-an-address" },
    ],
  }],
  ["GetBanTimeline", {
    role: "viewer",
    ok: { path: "/v1/events:banTimeline?window=ACTIVITY_WINDOW_HOUR&jail=jails%2Fdovecot", check: (reply) => {
      assert.equal(reply.body.buckets.length, 60);
      assert.ok(reply.body.buckets.reduce((sum: number, bucket: { bans?: number }) => sum + (bucket.bans ?? 0), 0) >= 3, "the bans made above");
    } },
    refusals: [{ code: "INVALID_ARGUMENT", reason: "INVALID_FILTER", path: "/v1/events:banTimeline?jail=dovecot" }],
  }],
  ["GetTopOffenders", {
    role: "viewer",
    ok: { path: "/v1/events:topOffenders?window=ACTIVITY_WINDOW_DAY&limit=100", check: (reply) => assert.ok(reply.body.addresses.some((offender: { address: string }) => offender.address === "203.0.113.7")) },
    refusals: [{ code: "INVALID_ARGUMENT", reason: "INVALID_PAGE_SIZE", path: "/v1/events:topOffenders?limit=101" }],
  }],

  // The host.
  ["GetCallerIdentity", {
    role: "viewer",
    ok: { path: "/v1/caller", check: (reply) => assert.deepEqual(reply.body, { principal: "test-viewer", role: "viewer", address: "127.0.0.1" }) },
    refusals: [],
  }],
  ["GetOverview", {
    role: "viewer",
    ok: { path: "/v1/overview", check: (reply) => assert.deepEqual([reply.body.fail2banUp, reply.body.jailCount, reply.body.fleet], [true, 2, true]) },
    refusals: [],
  }],
  ["GetJailActivity", {
    role: "viewer",
    ok: { path: "/v1/jails:activity?window=ACTIVITY_WINDOW_DAY", check: (reply) => assert.deepEqual(reply.body.jails.map((jail: { jail: string }) => jail.jail), ["jails/bulk", "jails/dovecot"]) },
    refusals: [{ code: "INVALID_ARGUMENT", reason: "INVALID_REQUEST", path: "/v1/jails:activity?window=ACTIVITY_WINDOW_YEAR" }],
  }],
  ["InspectAddress", {
    role: "viewer",
    ok: { path: "/v1/addresses:inspect?address=2001:DB8:5:0::1", check: (reply) => assert.equal(reply.body.address, "2001:db8:5::1") },
    refusals: [
      { code: "INVALID_ARGUMENT", reason: "INVALID_ELEMENT", path: "/v1/addresses:inspect?address=not-an-address" },
      { code: "INVALID_ARGUMENT", reason: "INVALID_PAGE_SIZE", path: "/v1/addresses:inspect?address=192.0.2.1&eventLimit=1001" },
    ],
  }],

  // Not RPCs: liveness and readiness.
  ["Healthz", { role: "viewer", ok: { path: "/healthz", check: (reply) => assert.equal(reply.text, "ok\n") }, refusals: [] }],
  ["Readyz", { role: "viewer", ok: { path: "/readyz", check: (reply) => assert.deepEqual(reply.body, { ready: true, checks: { iptables: "ok", ipset: "ok", fail2ban: "ok" } }) }, refusals: [] }],
];

/**
 * The error classes a case must list (or say why not): a missing resource where the path names one, a duplicate for
 * creates. INVALID_ARGUMENT (an unknown field), UNAUTHENTICATED and PERMISSION_DENIED are checked for every operation.
 */
function required(operation: SpecOperation): ErrorClass[] {
  return [
    ...(operation.path.includes("{") ? ["NOT_FOUND" as const] : []),
    ...(/^(Create|Import|Add)/.test(operation.operationId) ? ["ALREADY_EXISTS" as const] : []),
  ];
}

let fail2ban: Fail2banServer | undefined;
let nats: NatsCluster | undefined;
let server: RunningServer | undefined;
let dataDir: string | undefined;
let restUrl = "";
const bundles: Partial<Record<Role, { cert: Buffer; key: Buffer }>> = {};
let ca: Buffer;
const serverLog: string[] = [];

before(async () => {
  fail2ban = new Fail2banServer();
  await fail2ban.start();
  dataDir = mkdtempSync(join(tmpdir(), "pc-data-"));
  // A one-server NATS: the fleet operations answer about a fleet of one.
  nats = await NatsCluster.start(1);
  writeFileSync(join(dataDir, "config.json"), JSON.stringify({ cluster: { servers: nats.urls, node: "supertest", heartbeatSeconds: 1 } }));
  const config = loadConfig({ dataDir, netns: fail2ban.netns.name, grpcAddress: "127.0.0.1:0", restAddress: "127.0.0.1:0", logLevel: "info" }, {
    PORTCULLIS_CONFIG: join(dataDir, "config.json"),
    PORTCULLIS_FAIL2BAN_SOCKET: fail2ban.socket,
    PORTCULLIS_FAIL2BAN_CONFIG_DIR: fail2ban.configDir,
    PORTCULLIS_FAIL2BAN_ACTION_SOCKET: join(fail2ban.dir, "action.sock"),
    PORTCULLIS_FEEDS_FILE_ROOTS: tmpdir(),
  });
  // The composition root in this process; its log lines are kept (the "listening" one says where REST is bound).
  server = await startServer(config, pino({ level: "info" }, { write: (line: string) => void serverLog.push(line) }));
  const listening = serverLog.map((line) => JSON.parse(line) as { msg: string; rest?: string }).find((line) => line.msg === "listening");
  restUrl = `https://${listening!.rest!}`;
  const pki = join(dataDir, "pki");
  for (const role of ["admin", "operator", "viewer"] as const) {
    const bundle = role === "admin" ? clientBundlePaths(pki, "admin") : await issueClientCertificate(pki, { name: `test-${role}`, role });
    bundles[role] = { cert: readFileSync(bundle.certPath), key: readFileSync(bundle.keyPath) };
  }
  ca = readFileSync(clientBundlePaths(pki, "admin").caPath);
  // A set made by another tool, for AdoptIpset.
  fail2ban.netns.exec("ipset", ["create", "foreign", "hash:ip"]);
  writeFileSync(FEED_LIST, "198.51.100.0/24\n2001:db8:9::/48\n");
});

after(async () => {
  try {
    await server?.close();
  } finally {
    await fail2ban?.destroy(); // and its namespace
    await nats?.stop();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
    rmSync(FEED_LIST, { force: true });
  }
});

it("has a case for every operation in the spec, and each case the error classes that apply", () => {
  const cased = new Set(CASES.map(([operationId]) => operationId));
  const specified = new Set(specOperations.map((operation) => operation.operationId));
  assert.deepEqual(specOperations.filter((operation) => !cased.has(operation.operationId)).map((operation) => operation.operationId), [], "operations in the spec without a case");
  assert.deepEqual([...cased].filter((operationId) => !specified.has(operationId)), [], "cases for operations the spec does not have");
  assert.equal(cased.size, CASES.length, "one case per operation");
  for (const [operationId, testCase] of CASES) {
    const operation = specOperations.find((candidate) => candidate.operationId === operationId)!;
    const covered = new Set<string>([...testCase.refusals.map((refusal) => refusal.code), ...Object.keys(testCase.notApplicable ?? {})]);
    const missing = required(operation).filter((code) => !covered.has(code));
    assert.deepEqual(missing, [], `${operationId}: no case for ${missing.join(", ")}`);
  }
});

for (const [operationId, testCase] of CASES) {
  describe(operationId, () => {
    const operation = specOperations.find((candidate) => candidate.operationId === operationId);
    if (operation === undefined) return; // the first test names it
    const ok = testCase.ok;
    const lesser = (["viewer", "operator"] as const).filter((role) => RANK[role] < RANK[testCase.role]);

    it("refuses a caller without a client certificate: 401 UNAUTHENTICATED", async () => {
      expectProblem(await send(operation, ok, "anonymous"), operation, "UNAUTHENTICATED", "CERTIFICATE_REQUIRED");
    });

    for (const caller of lesser) {
      it(`refuses ${article(caller)}: 403 PERMISSION_DENIED`, async () => {
        expectProblem(await send(operation, ok, caller), operation, "PERMISSION_DENIED", "ROLE_REQUIRED");
      });
    }

    const missing = testCase.refusals.find((refusal) => refusal.code === "NOT_FOUND");
    if (lesser.length > 0 && missing !== undefined) {
      it("checks the role before the resource: 403, not 404, for a missing one", async () => {
        expectProblem(await send(operation, missing, "viewer"), operation, "PERMISSION_DENIED", "ROLE_REQUIRED");
      });
    }

    it(`answers ${article(testCase.role)} with the 200 the spec describes`, async () => {
      const reply = await send(operation, ok, testCase.role);
      assert.equal(reply.status, 200, `${operation.verb} ${pathOf(ok)}: ${textOf(reply).slice(0, 500)}`);
      const declared = responseOf(operation, 200)!;
      assert.ok(reply.headers["content-type"]?.startsWith(declared.mediaType), `content-type ${reply.headers["content-type"]}, spec: ${declared.mediaType}`);
      const body: unknown = declared.mediaType === "application/json" ? reply.body : textOf(reply);
      assert.ok(declared.validate(body), `${operationId}: ${JSON.stringify(declared.validate.errors)} in ${textOf(reply).slice(0, 300)}`);
      testCase.ok.check?.(reply);
    });

    if (isRpc(operation)) {
      it(`refuses an unknown ${operation.hasBody ? "field" : "query parameter"}: 400 INVALID_ARGUMENT`, async () => {
        const unknown = operation.hasBody ? { ...ok, body: { ...ok.body, colour: "red" } } : { ...ok, path: () => `${pathOf(ok)}${pathOf(ok).includes("?") ? "&" : "?"}colour=red` };
        const problem = expectProblem(await send(operation, unknown, testCase.role), operation, "INVALID_ARGUMENT", "INVALID_REQUEST");
        assert.match(problem.detail, /colour/);
      });
    }

    for (const refusal of testCase.refusals) {
      it(`${HTTP_STATUS[refusal.code]} ${refusal.code} ${refusal.reason}: ${typeof refusal.path === "string" ? refusal.path : "…"}${refusal.headers === undefined ? "" : ` (${Object.keys(refusal.headers).join(", ")})`}`, async () => {
        expectProblem(await send(operation, refusal, testCase.role), operation, refusal.code, refusal.reason);
      });
    }
  });
}

/** Sends a call of the operation through supertest, with the caller's client certificate (none for anonymous). */
async function send(operation: SpecOperation, call: Call, caller: Caller): Promise<Response> {
  const path = pathOf(call);
  // The table's paths must reach the operation they are listed under (a slip would test another one).
  assert.equal(operationOfRequest(operation.verb, path)?.operationId, operation.operationId, `${operation.verb} ${path}`);
  let test = request(restUrl)[operation.verb as "get" | "post" | "put" | "patch" | "delete"](path).ca(ca).timeout(15_000);
  if (caller !== "anonymous") test = test.cert(bundles[caller]!.cert).key(bundles[caller]!.key);
  if (call.headers !== undefined) test = test.set(call.headers);
  if (operation.operationId === "WatchEvents") test = test.buffer(true).parse(firstServerSentEvent);
  return call.body === undefined ? await test : await test.send(call.body);
}

/** Checks an error answer against what the spec declares for its status and the design's mapping; returns the problem. */
function expectProblem(reply: Response, operation: SpecOperation, code: ErrorClass | "UNAUTHENTICATED" | "PERMISSION_DENIED", reason: string): { detail: string } {
  const where = `${reply.request.method} ${reply.request.url}: ${textOf(reply).slice(0, 500)}`;
  assert.equal(reply.status, HTTP_STATUS[code], where);
  assert.match(reply.headers["content-type"] ?? "", /^application\/problem\+json(;|$)/, where);
  const declared = responseOf(operation, reply.status);
  assert.equal(declared?.mediaType, "application/problem+json", `${operation.operationId} declares problem JSON for ${reply.status}`);
  assert.ok(declared.validate(reply.body), `${operation.operationId}: ${JSON.stringify(declared.validate.errors)} in ${where}`);
  const problem = reply.body as { status: number; code: string; reason: string; type: string; detail: string };
  assert.deepEqual({ status: problem.status, code: problem.code, reason: problem.reason }, { status: reply.status, code, reason }, where);
  assert.equal(problem.type, `urn:portcullis:error:${reason.toLowerCase().replaceAll("_", "-")}`);
  assert.ok(problem.detail.length > 0, "the detail says what to change");
  return problem;
}

/**
 * The body of a WatchEvents answer: an event stream is read until its first event, then closed (it never ends by
 * itself); anything else (problem JSON) is read whole and parsed as superagent would.
 */
function firstServerSentEvent(response: Response, done: (error: Error | null, body: unknown) => void): void {
  const res = response as unknown as IncomingMessage; // superagent hands parsers the node response
  const stream = String(res.headers["content-type"]).startsWith("text/event-stream");
  let text = "";
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    if (stream) {
      res.destroy();
      done(null, text);
      return;
    }
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      done(error as Error, text);
    }
  };
  res.setEncoding("utf8");
  res.on("data", (chunk: string) => {
    text += chunk;
    if (stream && /^data: /m.test(text) && text.includes("\n\n")) finish();
  });
  res.on("end", finish);
}

function serverSentEvents(text: string): Array<{ id: string; data: { resource: string; sequence: string } }> {
  return text.split("\n\n").flatMap((block) => {
    const id = /^id: (.*)$/m.exec(block)?.[1];
    const data = /^data: (.*)$/m.exec(block)?.[1];
    return id === undefined || data === undefined ? [] : [{ id, data: JSON.parse(data) }];
  });
}

/** The body as text: superagent's `text`, or what firstServerSentEvent read (an event stream, or parsed JSON). */
function textOf(reply: Response): string {
  if (typeof reply.text === "string") return reply.text;
  return typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body);
}

function pathOf(call: Call): string {
  return typeof call.path === "string" ? call.path : call.path();
}

function article(role: Role): string {
  return `${role === "viewer" ? "a" : "an"} ${role}`;
}

function isRpc(operation: SpecOperation): boolean {
  return operation.path.startsWith("/v1/");
}

function names(items: ReadonlyArray<{ name: string }>): string[] {
  return items.map((item) => item.name).sort();
}
