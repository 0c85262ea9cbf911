import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { api, idOf, unwrap, type Chain, type Rule } from "../api/client";
import { useCan } from "../caller";
import { ConfirmDialog } from "../components/confirm-dialog";
import { useNotify } from "../components/notices";
import { Problem } from "../components/problem";
import { formatBytes, formatCount } from "../format";
import { useLoad, useThrottled } from "../hooks";
import { useHostEvents } from "../live/host-events";
import { Link, type Family } from "../router";
import { ApplyDialog } from "./apply-dialog";
import { PanicControls } from "./panic-controls";
import { RuleForm } from "./rule-form";
import { matchText, targetText } from "./rule-text";
import { rememberPending, SafeModeBanner } from "./safe-mode";

const TABLES = ["filter", "raw", "mangle", "nat"];
const FIREWALL_EVENTS = new Set(["EVENT_TYPE_RULE_CREATED", "EVENT_TYPE_RULE_REPLACED", "EVENT_TYPE_RULE_DELETED", "EVENT_TYPE_CHAIN_CREATED", "EVENT_TYPE_CHAIN_DELETED", "EVENT_TYPE_POLICY_SET", "EVENT_TYPE_RULESET_APPLIED", "EVENT_TYPE_RULESET_ROLLED_BACK", "EVENT_TYPE_PANIC_ENABLED", "EVENT_TYPE_PANIC_DISABLED", "EVENT_TYPE_STATE_REPAIRED"]);

/** A managed rule of the draft: `key` tells rows apart (new rules have no id yet). */
interface DraftRule {
  readonly key: string;
  readonly rule: Rule;
  readonly fresh: boolean;
}

interface Draft {
  readonly rules: readonly DraftRule[];
  readonly changes: number;
}

/** A row of the chain as shown: the kernel's rules, or with a draft, the draft's managed rules in their place. */
interface Row {
  readonly key: string;
  readonly rule: Rule;
  readonly fresh: boolean;
}

let nextKey = 0;

/**
 * The rows of a chain with the draft's managed rules in place of the current ones, as the server's managed-scope apply
 * will place them: the other tools' rules before the first managed rule stay first, the rest follow.
 */
function previewRows(current: readonly Rule[], managed: readonly DraftRule[]): Row[] {
  const first = current.findIndex((rule) => rule.managed === true);
  const foreign = (rules: readonly Rule[]): Row[] => rules.filter((rule) => rule.managed !== true).map((rule) => ({ key: rule.id ?? String(nextKey++), rule, fresh: false }));
  if (first === -1) return [...foreign(current), ...managed];
  return [...foreign(current.slice(0, first)), ...managed, ...foreign(current.slice(first))];
}

/**
 * A table's chains (policies, counters) and the rules of one chain. Admins change the filter table through a draft:
 * rules added, deleted and moved are reviewed (the server's dry run) and applied at once, in safe mode with a
 * countdown and a Confirm button; the rollback shows if the countdown ends unconfirmed.
 */
export function RulesView(props: { family: Family; table: string; chain: string }): JSX.Element {
  const { family, table, chain } = props;
  const ruleset = useLoad(() => unwrap(api.GET("/v1/firewall/{family}/tables/{table}:export", { params: { path: { family, table } } })), [family, table]);
  const reloadSoon = useThrottled(ruleset.reload, 300);
  useHostEvents((event) => {
    if (event.type !== undefined && FIREWALL_EVENTS.has(event.type) && (event.resource?.startsWith(`firewall/${family}/tables/${table}`) === true || event.resource?.startsWith("firewall/panic") === true)) reloadSoon();
  });
  const canAdmin = useCan("admin");
  const canEdit = canAdmin && table === "filter";
  const [draft, setDraft] = useState<Draft | undefined>(undefined);
  const [applying, setApplying] = useState(false);
  const chains = ruleset.data?.chains ?? [];
  const rules = ruleset.data?.rules ?? [];
  const chainRules = rules.filter((rule) => rule.chain === chain);
  const managedOf = (list: readonly DraftRule[]): DraftRule[] => list.filter((item) => item.rule.chain === chain);
  const rows: Row[] = draft === undefined
    ? chainRules.map((rule) => ({ key: rule.id ?? String(nextKey++), rule, fresh: false }))
    : previewRows(chainRules, managedOf(draft.rules));
  /** Starts a draft from the table's managed rules on the first change. */
  const change = (update: (list: DraftRule[]) => DraftRule[]): void => {
    setDraft((previous) => {
      const base = previous?.rules ?? rules.filter((rule) => rule.managed === true).map((rule) => ({ key: rule.id ?? String(nextKey++), rule, fresh: false }));
      return { rules: update([...base]), changes: (previous?.changes ?? 0) + 1 };
    });
  };
  const remove = (key: string): void => change((list) => list.filter((item) => item.key !== key));
  const move = (key: string, by: -1 | 1): void => change((list) => {
    const mine = list.map((item, index) => ({ item, index })).filter(({ item }) => item.rule.chain === chain);
    const at = mine.findIndex(({ item }) => item.key === key);
    const other = mine[at + by];
    const self = mine[at];
    if (other === undefined || self === undefined) return list;
    list[self.index] = other.item;
    list[other.index] = self.item;
    return list;
  });
  const add = (rule: Rule, atTop: boolean): void => change((list) => {
    const item = { key: `new-${nextKey++}`, rule, fresh: true };
    const first = list.findIndex((entry) => entry.rule.chain === chain);
    let last = -1;
    list.forEach((entry, index) => {
      if (entry.rule.chain === chain) last = index;
    });
    if (atTop && first !== -1) list.splice(first, 0, item);
    else if (last !== -1) list.splice(last + 1, 0, item);
    else list.push(item);
    return list;
  });
  const managedKeys = draft === undefined ? [] : managedOf(draft.rules).map((item) => item.key);
  const userChains = chains.filter((item) => item.builtin !== true).map((item) => idOf(item.name, `firewall/${family}/tables/${table}/chains`));
  return (
    <section aria-labelledby="rules-title">
      <div class="page-head">
        <h1 id="rules-title" tabIndex={-1}>Rules</h1>
        {canAdmin ? <PanicControls /> : null}
      </div>
      <nav class="tabs" aria-label="Tables">
        {(["ipv4", "ipv6"] as const).map((item) => (
          <Link key={item} to={{ view: "rules", family: item, table, chain }} aria-current={item === family ? "page" : undefined}>{item === "ipv4" ? "IPv4" : "IPv6"}</Link>
        ))}
        <span class="tabs-gap" />
        {TABLES.map((item) => (
          <Link key={item} to={{ view: "rules", family, table: item, chain: item === table ? chain : item === "nat" ? "PREROUTING" : "INPUT" }} aria-current={item === table ? "page" : undefined}>{item}</Link>
        ))}
      </nav>
      <SafeModeBanner family={family} table={table} onSettled={ruleset.reload} />
      <Problem error={ruleset.error} what="The table could not be read" />
      <ChainsTable family={family} table={table} selected={chain} chains={chains} editable={canEdit} />
      <section aria-labelledby="chain-title" class="panel">
        <h2 id="chain-title">Chain {chain}</h2>
        {draft === undefined ? null : (
          <div class="draft-bar" role="status">
            <span>{draft.changes} pending change{draft.changes === 1 ? "" : "s"} (not applied yet)</span>
            <button type="button" class="button-primary" onClick={() => setApplying(true)}>Review and apply…</button>
            <button type="button" onClick={() => setDraft(undefined)}>Discard</button>
          </div>
        )}
        <table id="rules">
          <caption class="visually-hidden">Rules of chain {chain}{draft === undefined ? "" : " with pending changes"}</caption>
          <thead>
            <tr>
              <th scope="col" class="number">#</th>
              <th scope="col">Target</th>
              <th scope="col">Matches</th>
              <th scope="col">Comment</th>
              <th scope="col" class="number">Packets</th>
              <th scope="col" class="number">Bytes</th>
              <th scope="col">Owner</th>
              {canEdit ? <th scope="col"><span class="visually-hidden">Actions</span></th> : null}
            </tr>
          </thead>
          <tbody>
            {rows.map((row, index) => {
              const managed = row.fresh || row.rule.managed === true;
              const at = managedKeys.indexOf(row.key);
              const mineIndex = draft === undefined ? chainRules.filter((rule) => rule.managed === true).findIndex((rule) => rule.id === row.rule.id) : at;
              const mineCount = draft === undefined ? chainRules.filter((rule) => rule.managed === true).length : managedKeys.length;
              const label = `rule ${index + 1} (${targetText(row.rule)} ${matchText(row.rule)})`;
              return (
                <tr key={row.key} class={row.fresh ? "fresh" : undefined}>
                  <td class="number">{row.fresh ? "new" : index + 1}</td>
                  <td>{targetText(row.rule)}</td>
                  <td>{matchText(row.rule)}</td>
                  <td>{row.rule.comment}</td>
                  <td class="number">{row.fresh ? "" : formatCount(row.rule.packets)}</td>
                  <td class="number">{row.fresh ? "" : formatBytes(row.rule.bytes)}</td>
                  <td>{managed ? "Portcullis" : "another tool"}</td>
                  {canEdit ? (
                    <td class="row-actions">
                      {managed ? (
                        <>
                          <button type="button" aria-label={`Move ${label} up`} disabled={mineIndex <= 0} onClick={() => move(row.key, -1)}>↑</button>
                          <button type="button" aria-label={`Move ${label} down`} disabled={mineIndex === -1 || mineIndex >= mineCount - 1} onClick={() => move(row.key, 1)}>↓</button>
                          <button type="button" aria-label={`Delete ${label}`} onClick={() => remove(row.key)}>Delete</button>
                        </>
                      ) : null}
                    </td>
                  ) : null}
                </tr>
              );
            })}
            {rows.length === 0 && !ruleset.loading ? <tr><td colSpan={canEdit ? 8 : 7}>No rules: every packet meets the chain's policy.</td></tr> : null}
          </tbody>
        </table>
        {canEdit ? <RuleForm chain={chain} onAdd={add} /> : null}
      </section>
      {applying && draft !== undefined ? (
        <ApplyDialog family={family} table={table} changes={draft.changes} ruleset={{ chains: userChains, rules: draft.rules.map((item) => item.rule) }} onClose={() => setApplying(false)} onApplied={() => {
          setDraft(undefined);
          ruleset.reload();
        }} />
      ) : null}
    </section>
  );
}

function ChainsTable(props: { family: Family; table: string; selected: string; chains: readonly Chain[]; editable: boolean }): JSX.Element {
  const { family, table } = props;
  const [policyChange, setPolicyChange] = useState<{ chain: string; policy: "CHAIN_POLICY_ACCEPT" | "CHAIN_POLICY_DROP" } | undefined>(undefined);
  return (
    <section aria-labelledby="chains-title" class="panel">
      <h2 id="chains-title">Chains of {family} {table}</h2>
      <table id="chains">
        <caption class="visually-hidden">Chains with policies and counters</caption>
        <thead>
          <tr>
            <th scope="col">Chain</th>
            <th scope="col">Policy</th>
            <th scope="col" class="number">Packets</th>
            <th scope="col" class="number">Bytes</th>
            <th scope="col" class="number">Rules</th>
            <th scope="col" class="number">References</th>
          </tr>
        </thead>
        <tbody>
          {props.chains.map((item) => {
            const id = idOf(item.name, `firewall/${family}/tables/${table}/chains`);
            const policy = item.policy === "CHAIN_POLICY_DROP" ? "DROP" : item.policy === "CHAIN_POLICY_ACCEPT" ? "ACCEPT" : "";
            return (
              <tr key={id} aria-current={id === props.selected ? "true" : undefined}>
                <th scope="row"><Link to={{ view: "rules", family, table, chain: id }}>{id}</Link></th>
                <td>
                  {item.builtin !== true ? "(user chain)" : props.editable ? (
                    <label>
                      <span class="visually-hidden">Policy of {id}</span>
                      <select value={item.policy} onChange={(event) => {
                        const value = event.currentTarget.value === "CHAIN_POLICY_DROP" ? "CHAIN_POLICY_DROP" : "CHAIN_POLICY_ACCEPT";
                        event.currentTarget.value = item.policy ?? "";
                        setPolicyChange({ chain: id, policy: value });
                      }}>
                        <option value="CHAIN_POLICY_ACCEPT">ACCEPT</option>
                        <option value="CHAIN_POLICY_DROP">DROP</option>
                      </select>
                    </label>
                  ) : policy}
                </td>
                <td class="number">{formatCount(item.packets)}</td>
                <td class="number">{formatBytes(item.bytes)}</td>
                <td class="number">{formatCount(item.ruleCount)}</td>
                <td class="number">{formatCount(item.references)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {policyChange === undefined ? null : <PolicyDialog family={family} table={table} {...policyChange} onClose={() => setPolicyChange(undefined)} />}
    </section>
  );
}

/** A built-in chain's policy, changed in safe mode (a DROP policy is the classic way to lock oneself out). */
function PolicyDialog(props: { family: Family; table: string; chain: string; policy: "CHAIN_POLICY_ACCEPT" | "CHAIN_POLICY_DROP"; onClose: () => void }): JSX.Element {
  const notify = useNotify();
  const [seconds, setSeconds] = useState("60");
  const word = props.policy === "CHAIN_POLICY_DROP" ? "DROP" : "ACCEPT";
  return (
    <ConfirmDialog title={`Set ${props.chain}'s policy to ${word}`} confirmLabel="Set policy in safe mode" onClose={props.onClose} onConfirm={async () => {
      const confirmWithin = Number(seconds);
      await unwrap(api.POST("/v1/firewall/{family}/tables/{table}/chains/{chain}:setPolicy", {
        params: { path: { family: props.family, table: props.table, chain: props.chain } },
        body: { policy: props.policy, confirmWithin },
      }));
      rememberPending(props.family, props.table, { rollbackTime: new Date(Date.now() + confirmWithin * 1000).toISOString(), what: `the ${word} policy of ${props.chain}` });
      notify("ok", `${props.chain}'s policy is ${word} until confirmed.`);
    }}>
      <p>Packets that reach the end of {props.chain} will be {word === "DROP" ? "dropped" : "accepted"}. The previous policy comes back unless you confirm in time.</p>
      <label>Confirm within (seconds)<input type="number" min={1} max={3600} value={seconds} onInput={(event) => setSeconds(event.currentTarget.value)} /></label>
    </ConfirmDialog>
  );
}

