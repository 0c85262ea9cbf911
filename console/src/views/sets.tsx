import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { api, idOf, messageOf, unwrap, type Ipset, type IpsetType } from "../api/client";
import { useCan } from "../caller";
import { ConfirmDialog } from "../components/confirm-dialog";
import { useNotify } from "../components/notices";
import { Problem } from "../components/problem";
import { formatBytes, formatCount, formatDuration } from "../format";
import { useLoad, useThrottled } from "../hooks";
import { useHostEvents } from "../live/host-events";
import { Link } from "../router";

const SET_EVENTS = new Set(["EVENT_TYPE_IPSET_CREATED", "EVENT_TYPE_IPSET_DELETED", "EVENT_TYPE_IPSET_FLUSHED", "EVENT_TYPE_IPSET_RENAMED", "EVENT_TYPE_IPSETS_SWAPPED", "EVENT_TYPE_IPSET_ADOPTED", "EVENT_TYPE_ENTRIES_ADDED", "EVENT_TYPE_ENTRIES_DELETED", "EVENT_TYPE_IPSET_GROWN"]);

/** Every set (a page of the API's pages is all of them but for very large hosts), made by Portcullis or by other tools. */
async function listSets(): Promise<Ipset[]> {
  const sets: Ipset[] = [];
  let pageToken = "";
  do {
    const page = await unwrap(api.GET("/v1/ipsets", { params: { query: { pageSize: 1000, ...(pageToken === "" ? {} : { pageToken }) } } }));
    sets.push(...(page.ipsets ?? []));
    pageToken = page.nextPageToken ?? "";
  } while (pageToken !== "");
  return sets;
}

export function SetsView(): JSX.Element {
  const sets = useLoad(listSets, []);
  const reloadSoon = useThrottled(sets.reload, 500);
  useHostEvents((event) => {
    if (event.type !== undefined && SET_EVENTS.has(event.type)) reloadSoon();
  });
  const canAdmin = useCan("admin");
  const notify = useNotify();
  const [deleting, setDeleting] = useState<string | undefined>(undefined);
  const list = sets.data ?? [];
  return (
    <section aria-labelledby="sets-title">
      <h1 id="sets-title" tabIndex={-1}>Sets</h1>
      <Problem error={sets.error} what="Sets could not be read" />
      <table>
        <caption class="visually-hidden">IP sets</caption>
        <thead>
          <tr>
            <th scope="col">Set</th>
            <th scope="col">Type</th>
            <th scope="col" class="number">Entries</th>
            <th scope="col" class="number">Max entries</th>
            <th scope="col">Default timeout</th>
            <th scope="col" class="number">Memory</th>
            <th scope="col" class="number">Rules using it</th>
            <th scope="col">Managed</th>
            {canAdmin ? <th scope="col"><span class="visually-hidden">Actions</span></th> : null}
          </tr>
        </thead>
        <tbody>
          {list.map((set) => {
            const id = idOf(set.name, "ipsets");
            return (
              <tr key={id}>
                <th scope="row"><Link to={{ view: "set", set: id }}>{id}</Link></th>
                <td>{set.typeName} {set.family === "ADDRESS_FAMILY_INET6" ? "inet6" : "inet"}</td>
                <td class="number">{formatCount(set.entryCount)}</td>
                <td class="number">{formatCount(set.maxelem)}</td>
                <td>{set.defaultTimeout === undefined ? "none" : formatDuration(set.defaultTimeout)}</td>
                <td class="number">{formatBytes(set.memoryBytes)}</td>
                <td class="number">{formatCount(set.references)}</td>
                <td>{set.managed === true ? "yes" : "no (another tool's)"}</td>
                {canAdmin ? (
                  <td>
                    {set.managed === true ? <button type="button" aria-label={`Delete set ${id}`} onClick={() => setDeleting(id)}>Delete</button> : null}
                  </td>
                ) : null}
              </tr>
            );
          })}
          {list.length === 0 && !sets.loading ? <tr><td colSpan={canAdmin ? 9 : 8}>No sets.</td></tr> : null}
        </tbody>
      </table>
      {canAdmin ? <CreateSetForm onCreated={sets.reload} /> : null}
      {deleting === undefined ? null : (
        <ConfirmDialog title={`Delete set ${deleting}?`} confirmLabel="Delete set" danger onClose={() => setDeleting(undefined)} onConfirm={async () => {
          await unwrap(api.DELETE("/v1/ipsets/{ipset}", { params: { path: { ipset: deleting } } }));
          notify("ok", `Set ${deleting} deleted.`);
          sets.reload();
        }}>
          <p>The set and all its entries go. A set that a rule still uses cannot be deleted.</p>
        </ConfirmDialog>
      )}
    </section>
  );
}

const TYPES: ReadonlyArray<readonly [IpsetType, string]> = [
  ["IPSET_TYPE_HASH_IP", "hash:ip (addresses)"],
  ["IPSET_TYPE_HASH_NET", "hash:net (networks)"],
  ["IPSET_TYPE_HASH_IP_PORT", "hash:ip,port"],
  ["IPSET_TYPE_HASH_NET_PORT", "hash:net,port"],
];

function CreateSetForm(props: { onCreated: () => void }): JSX.Element {
  const notify = useNotify();
  const [name, setName] = useState("");
  const [type, setType] = useState<IpsetType>("IPSET_TYPE_HASH_IP");
  const [family, setFamily] = useState<"ADDRESS_FAMILY_INET" | "ADDRESS_FAMILY_INET6">("ADDRESS_FAMILY_INET");
  const [timeout, setDefaultTimeout] = useState("");
  const [comments, setComments] = useState(true);
  const [busy, setBusy] = useState(false);
  const submit = (event: SubmitEvent): void => {
    event.preventDefault();
    setBusy(true);
    const ipset = { type, family, comments, ...(timeout === "" ? {} : { defaultTimeout: Number(timeout) }) };
    unwrap(api.POST("/v1/ipsets", { body: { ipsetId: name.trim(), ipset } })).then(
      () => {
        notify("ok", `Set ${name.trim()} created.`);
        setName("");
        props.onCreated();
      },
      (error: unknown) => notify("error", messageOf(error)),
    ).finally(() => setBusy(false));
  };
  return (
    <section aria-labelledby="create-set-title" class="panel">
      <h2 id="create-set-title">New set</h2>
      <form class="inline-form" onSubmit={submit}>
        <label>Name<input type="text" required value={name} onInput={(event) => setName(event.currentTarget.value)} /></label>
        <label>Type
          <select value={type} onChange={(event) => setType(event.currentTarget.value as IpsetType)}>
            {TYPES.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
          </select>
        </label>
        <label>Family
          <select value={family} onChange={(event) => setFamily(event.currentTarget.value === "ADDRESS_FAMILY_INET6" ? "ADDRESS_FAMILY_INET6" : "ADDRESS_FAMILY_INET")}>
            <option value="ADDRESS_FAMILY_INET">IPv4</option>
            <option value="ADDRESS_FAMILY_INET6">IPv6</option>
          </select>
        </label>
        <label>Default timeout (seconds)<input type="number" min={0} value={timeout} onInput={(event) => setDefaultTimeout(event.currentTarget.value)} /></label>
        <label class="check"><input type="checkbox" checked={comments} onChange={(event) => setComments(event.currentTarget.checked)} />Comments</label>
        <button type="submit" class="button-primary" disabled={busy}>Create</button>
      </form>
    </section>
  );
}
