import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { api, messageOf, toNumber, unwrap, type Entry } from "../api/client";
import { useCan } from "../caller";
import { ActionButton } from "../components/action-button";
import { useNotify } from "../components/notices";
import { Problem } from "../components/problem";
import { formatBytes, formatCount, formatDuration } from "../format";
import { useLoad, useThrottled } from "../hooks";
import { useHostEvents } from "../live/host-events";
import { Link } from "../router";
import { ImportEntries } from "./import-entries";

const PAGE_SIZE = 100;

/** One set: its definition and its entries, a page at a time from the server (fast whatever the set's size). */
export function SetView(props: { set: string }): JSX.Element {
  const name = props.set;
  const set = useLoad(() => unwrap(api.GET("/v1/ipsets/{ipset}", { params: { path: { ipset: name } } })), [name]);
  // tokens[i] is the page token of page i (the first page has none); a new filter starts again at the first page.
  const [tokens, setTokens] = useState<readonly string[]>([""]);
  const [filter, setFilter] = useState("");
  const [filterText, setFilterText] = useState("");
  const page = tokens.length - 1;
  const entries = useLoad(() => unwrap(api.GET("/v1/ipsets/{ipset}/entries", {
    params: { path: { ipset: name }, query: { pageSize: PAGE_SIZE, ...(tokens[page] === "" ? {} : { pageToken: tokens[page] }), ...(filter === "" ? {} : { filter }) } },
  })), [name, tokens, filter]);
  const reloadSoon = useThrottled(() => {
    set.reload();
    entries.reload();
  }, 500);
  useHostEvents((event) => {
    if (event.resource === `ipsets/${name}` || event.resource?.startsWith(`ipsets/${name}/`) === true) reloadSoon();
  });
  const canOperate = useCan("operator");
  const data = set.data;
  const writable = canOperate && data?.managed === true;
  const total = toNumber(entries.data?.totalSize);
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const next = entries.data?.nextPageToken ?? "";
  const refresh = (): void => {
    set.reload();
    entries.reload();
  };
  return (
    <section aria-labelledby="set-title">
      <p class="breadcrumb"><Link to={{ view: "sets" }}>Sets</Link> /</p>
      <h1 id="set-title" tabIndex={-1}>Set {name}</h1>
      <Problem error={set.error} what="The set could not be read" />
      {data === undefined ? null : (
        <dl class="facts">
          <dt>Type</dt><dd>{data.typeName} ({data.family === "ADDRESS_FAMILY_INET6" ? "IPv6" : "IPv4"})</dd>
          <dt>Entries</dt><dd>{formatCount(data.entryCount)} of at most {formatCount(data.maxelem)}{data.autoGrow === true ? " (grows)" : ""}</dd>
          <dt>Default timeout</dt><dd>{data.defaultTimeout === undefined ? "none" : formatDuration(data.defaultTimeout)}</dd>
          <dt>Memory</dt><dd>{formatBytes(data.memoryBytes)}</dd>
          <dt>Rules using it</dt><dd>{formatCount(data.references)}</dd>
          <dt>Managed</dt><dd>{data.managed === true ? "yes: recorded and restored after a reboot" : "no: made by another tool, read-only"}</dd>
        </dl>
      )}
      <section aria-labelledby="entries-title" class="panel">
        <h2 id="entries-title">Entries</h2>
        <form class="inline-form filters" role="search" aria-label="Filter entries" onSubmit={(event) => {
          event.preventDefault();
          setFilter(filterText.trim());
          setTokens([""]);
        }}>
          <label>Address, network or text the entry starts with<input type="search" value={filterText} onInput={(event) => setFilterText(event.currentTarget.value)} /></label>
          <button type="submit">Filter</button>
        </form>
        <Problem error={entries.error} what="Entries could not be read" />
        <table id="entries">
          <caption class="visually-hidden">Entries of {name}, page {page + 1}</caption>
          <thead>
            <tr>
              <th scope="col">Element</th>
              <th scope="col">Time left</th>
              <th scope="col">Comment</th>
              {writable ? <th scope="col"><span class="visually-hidden">Actions</span></th> : null}
            </tr>
          </thead>
          <tbody>
            {(entries.data?.entries ?? []).map((entry) => (
              <EntryRow key={entry.element} set={name} entry={entry} writable={writable} onDeleted={refresh} />
            ))}
            {(entries.data?.entries ?? []).length === 0 && !entries.loading ? <tr><td colSpan={writable ? 4 : 3}>No entries.</td></tr> : null}
          </tbody>
        </table>
        <nav class="pager" aria-label="Entry pages">
          <button type="button" disabled={page === 0} onClick={() => setTokens(tokens.slice(0, -1))}>Previous page</button>
          <span>{filter === "" ? `Page ${formatCount(page + 1)} of ${formatCount(pages)} (${formatCount(total)} entries)` : `Page ${formatCount(page + 1)} of the entries matching “${filter}” (${formatCount(total)} entries in the set)`}</span>
          <button type="button" disabled={next === ""} onClick={() => setTokens([...tokens, next])}>Next page</button>
        </nav>
        {writable ? <AddEntryForm set={name} comments={data?.comments === true} onAdded={refresh} /> : null}
      </section>
      {writable ? <ImportEntries set={name} comments={data?.comments === true} onImported={refresh} /> : null}
    </section>
  );
}

function EntryRow(props: { set: string; entry: Entry; writable: boolean; onDeleted: () => void }): JSX.Element {
  const { entry } = props;
  const element = entry.element ?? "";
  return (
    <tr>
      <th scope="row"><Link to={{ view: "address", address: element }}>{element}</Link></th>
      <td>{entry.timeout === undefined ? "permanent" : formatDuration(entry.timeout)}</td>
      <td>{entry.comment}</td>
      {props.writable ? (
        <td>
          <ActionButton label={`Delete ${element}`} done={`${element} deleted from ${props.set}.`} run={async () => {
            await unwrap(api.DELETE("/v1/ipsets/{ipset}/entries/{entry}", { params: { path: { ipset: props.set, entry: element } } }));
            props.onDeleted();
          }}>Delete</ActionButton>
        </td>
      ) : null}
    </tr>
  );
}

function AddEntryForm(props: { set: string; comments: boolean; onAdded: () => void }): JSX.Element {
  const notify = useNotify();
  const [element, setElement] = useState("");
  const [timeout, setEntryTimeout] = useState("");
  const [comment, setComment] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = (event: SubmitEvent): void => {
    event.preventDefault();
    setBusy(true);
    const entry = { element: element.trim(), ...(timeout === "" ? {} : { timeout: Number(timeout) }), ...(comment === "" ? {} : { comment }) };
    unwrap(api.POST("/v1/ipsets/{ipset}/entries", { params: { path: { ipset: props.set } }, body: { entry } })).then(
      () => {
        notify("ok", `${entry.element} added to ${props.set}.`);
        setElement("");
        setComment("");
        props.onAdded();
      },
      (error: unknown) => notify("error", messageOf(error)),
    ).finally(() => setBusy(false));
  };
  return (
    <form class="inline-form" onSubmit={submit} aria-label="Add an entry">
      <label>Address or network<input type="text" required value={element} onInput={(event) => setElement(event.currentTarget.value)} /></label>
      <label>Timeout (seconds)<input type="number" min={0} value={timeout} onInput={(event) => setEntryTimeout(event.currentTarget.value)} /></label>
      {props.comments ? <label>Comment<input type="text" maxLength={255} value={comment} onInput={(event) => setComment(event.currentTarget.value)} /></label> : null}
      <button type="submit" class="button-primary" disabled={busy}>Add</button>
    </form>
  );
}
