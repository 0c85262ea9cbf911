import type { JSX } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, unwrap, messageOf, type Rule, type RulesetDiff } from "../api/client";
import { ConfirmDialog } from "../components/confirm-dialog";
import type { Family } from "../router";
import { rememberPending } from "./safe-mode";

/** The managed rules of a table as they should be, and the user chains (named so that none is dropped). */
export interface ManagedRuleset {
  readonly chains: readonly string[];
  readonly rules: readonly Rule[];
}

function request(family: Family, table: string, ruleset: ManagedRuleset, options: { dryRun: boolean; confirmWithin: number }) {
  return api.POST("/v1/firewall/{family}/tables/{table}:apply", {
    params: { path: { family, table } },
    body: {
      chains: ruleset.chains.map((name) => ({ name })),
      rules: [...ruleset.rules],
      scope: "RULESET_SCOPE_MANAGED",
      ...(options.dryRun ? { dryRun: true } : {}),
      ...(options.confirmWithin > 0 ? { confirmWithin: options.confirmWithin } : {}),
    },
  });
}

function DiffList(props: { title: string; lines: readonly string[] | undefined }): JSX.Element | null {
  const lines = props.lines ?? [];
  if (lines.length === 0) return null;
  return (
    <>
      <h3>{props.title}</h3>
      <ul class="diff">{lines.map((line, i) => <li key={i}><code>{line}</code></li>)}</ul>
    </>
  );
}

/**
 * Review and apply a draft: the server's dry run shows what would change (and refuses what it would refuse), then the
 * apply replaces the table's managed rules in one transaction, in safe mode unless unticked.
 */
export function ApplyDialog(props: { family: Family; table: string; ruleset: ManagedRuleset; changes: number; onApplied: () => void; onClose: () => void }): JSX.Element {
  const { family, table, ruleset } = props;
  const [diff, setDiff] = useState<RulesetDiff | undefined>(undefined);
  const [problem, setProblem] = useState<string | undefined>(undefined);
  const [safe, setSafe] = useState(true);
  const [seconds, setSeconds] = useState("60");
  useEffect(() => {
    unwrap(request(family, table, ruleset, { dryRun: true, confirmWithin: 0 })).then(
      (answer) => setDiff(answer.diff ?? {}),
      (error: unknown) => setProblem(messageOf(error)),
    );
  }, []);
  const apply = async (): Promise<void> => {
    const confirmWithin = safe ? Number(seconds) : 0;
    const answer = await unwrap(request(family, table, ruleset, { dryRun: false, confirmWithin }));
    if (answer.rollbackTime !== undefined) rememberPending(family, table, { rollbackTime: answer.rollbackTime, what: `${props.changes} change${props.changes === 1 ? "" : "s"} to ${family} ${table}` });
    props.onApplied();
  };
  return (
    <ConfirmDialog title={`Apply ${props.changes} change${props.changes === 1 ? "" : "s"} to ${family} ${table}`} confirmLabel={safe ? "Apply in safe mode" : "Apply"} onConfirm={apply} onClose={props.onClose}>
      {problem !== undefined ? <p class="problem" role="alert">{problem}</p> : diff === undefined ? <p>Asking the server what would change…</p> : (
        <div class="diff-box">
          <DiffList title="Rules added" lines={diff.added} />
          <DiffList title="Rules removed" lines={diff.removed} />
          <DiffList title="Rules changed" lines={(diff.changed ?? []).map((change) => `${change.before ?? ""} → ${change.after ?? ""}`)} />
          <DiffList title="Chains created" lines={diff.chainsCreated} />
          <DiffList title="Chains deleted" lines={diff.chainsDeleted} />
          <p>{diff.unchanged ?? 0} managed rules stay as they are; rules of other tools are left alone.</p>
        </div>
      )}
      <fieldset>
        <legend>Safe mode</legend>
        <label class="check"><input type="checkbox" checked={safe} onChange={(event) => setSafe(event.currentTarget.checked)} />Roll back unless confirmed</label>
        <label>Confirm within (seconds)<input type="number" min={1} max={3600} value={seconds} disabled={!safe} onInput={(event) => setSeconds(event.currentTarget.value)} /></label>
      </fieldset>
    </ConfirmDialog>
  );
}
