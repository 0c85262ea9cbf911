import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { api, unwrap } from "../api/client";
import { Problem } from "../components/problem";
import { formatTime } from "../format";
import { useLoad } from "../hooks";

const PAGE_SIZE = 100;

interface AuditFilters {
  readonly principal: string;
  readonly method: string;
  readonly resourcePrefix: string;
}

const NONE: AuditFilters = { principal: "", method: "", resourcePrefix: "" };

/** The filters as ListAuditRecords' query (empty ones left out); a method's short form gets its package. */
function auditQuery(filters: AuditFilters): { principal?: string; method?: string; resourcePrefix?: string } {
  const method = filters.method === "" || filters.method.startsWith("portcullis.") ? filters.method : `portcullis.v1.${filters.method}`;
  return {
    ...(filters.principal === "" ? {} : { principal: filters.principal }),
    ...(method === "" ? {} : { method }),
    ...(filters.resourcePrefix === "" ? {} : { resourcePrefix: filters.resourcePrefix }),
  };
}

/** The audit log: every write attempt, allowed or refused, newest first, a page at a time. */
export function AuditView(): JSX.Element {
  // tokens[i] is the page token of page i (the newest page has none); new filters start again at the newest.
  const [tokens, setTokens] = useState<readonly string[]>([""]);
  const [filters, setFilters] = useState<AuditFilters>(NONE);
  const [draft, setDraft] = useState<AuditFilters>(NONE);
  const page = tokens.length - 1;
  const records = useLoad(() => unwrap(api.GET("/v1/auditRecords", {
    params: { query: { pageSize: PAGE_SIZE, ...(tokens[page] === "" ? {} : { pageToken: tokens[page] }), ...auditQuery(filters) } },
  })), [tokens, filters]);
  const field = (key: keyof AuditFilters, label: string, placeholder: string): JSX.Element => (
    <label>{label}<input type="text" placeholder={placeholder} value={draft[key]} onInput={(event) => setDraft({ ...draft, [key]: event.currentTarget.value.trim() })} /></label>
  );
  const next = records.data?.nextPageToken ?? "";
  const list = records.data?.records ?? [];
  return (
    <section aria-labelledby="audit-title">
      <div class="page-head">
        <h1 id="audit-title" tabIndex={-1}>Audit</h1>
        <div class="actions"><button type="button" onClick={() => (page === 0 ? records.reload() : setTokens([""]))}>Newest</button></div>
      </div>
      <p class="hint">Every call that tried to change something, who made it with which role, and how it ended.</p>
      <form class="inline-form filters" aria-label="Audit filters" onSubmit={(event) => {
        event.preventDefault();
        setFilters(draft);
        setTokens([""]);
      }}>
        {field("principal", "By", "certificate name")}
        {field("method", "Method", "e.g. JailService/BanIp")}
        {field("resourcePrefix", "Resource starts with", "e.g. jails/sshd")}
        <button type="submit">Apply filters</button>
      </form>
      <Problem error={records.error} what="The audit log could not be read" />
      <table id="audit">
        <caption class="visually-hidden">Audit records, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Principal</th>
            <th scope="col">Role</th>
            <th scope="col">Method</th>
            <th scope="col">Resource</th>
            <th scope="col">Outcome</th>
          </tr>
        </thead>
        <tbody>
          {list.map((record, index) => (
            <tr key={`${page}-${index}`} class={record.code === "OK" ? undefined : "refused"}>
              <td>{formatTime(record.time)}</td>
              <td>{record.principal}{record.originNode === undefined || record.originNode === "" ? "" : ` (via ${record.originNode})`}</td>
              <td>{record.role}</td>
              <td>{(record.method ?? "").replace(/^portcullis\.v1\./, "")}</td>
              <td class="wrap">{record.resource}</td>
              <td>{record.code}{record.reason === undefined || record.reason === "" ? "" : `: ${record.reason}`}</td>
            </tr>
          ))}
          {list.length === 0 && !records.loading ? <tr><td colSpan={6}>No records.</td></tr> : null}
        </tbody>
      </table>
      <nav class="pager" aria-label="Audit pages">
        <button type="button" disabled={page === 0} onClick={() => setTokens(tokens.slice(0, -1))}>Newer</button>
        <span>Page {page + 1}</span>
        <button type="button" disabled={next === ""} onClick={() => setTokens([...tokens, next])}>Older</button>
      </nav>
    </section>
  );
}
