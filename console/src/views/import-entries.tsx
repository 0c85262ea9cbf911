import type { JSX } from "preact";
import { useState } from "preact/hooks";
import { api, messageOf, toNumber, unwrap } from "../api/client";
import { useNotify } from "../components/notices";
import { formatCount } from "../format";

/** Entries per BatchAddEntries call: small enough for a smooth progress bar, large enough to be fast. */
const CHUNK = 5000;

/** The addresses and networks of a list file: one per line (the first word), `#` and `;` comments and blank lines skipped. */
export function elementsOf(text: string): string[] {
  const elements: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const word = line.replace(/[#;].*$/, "").trim().split(/\s+/)[0];
    if (word !== undefined && word !== "") elements.push(word);
  }
  return elements;
}

/** Imports a blocklist file into a set, in chunks, with progress; stops at the first chunk the server refuses. */
export function ImportEntries(props: { set: string; comments: boolean; onImported: () => void }): JSX.Element {
  const notify = useNotify();
  const [file, setFile] = useState<File | undefined>(undefined);
  const [timeout, setImportTimeout] = useState("");
  const [comment, setComment] = useState("");
  const [progress, setProgress] = useState<{ done: number; total: number } | undefined>(undefined);
  const [running, setRunning] = useState(false);
  const submit = (event: SubmitEvent): void => {
    event.preventDefault();
    if (file === undefined) return;
    setRunning(true);
    void (async () => {
      let added = 0;
      try {
        const elements = elementsOf(await file.text());
        setProgress({ done: 0, total: elements.length });
        for (let at = 0; at < elements.length; at += CHUNK) {
          const chunk = elements.slice(at, at + CHUNK);
          const answer = await unwrap(api.POST("/v1/ipsets/{ipset}/entries:batchAdd", {
            params: { path: { ipset: props.set } },
            body: { elements: chunk, ...(timeout === "" ? {} : { timeout: Number(timeout) }), ...(comment === "" ? {} : { comment }) },
          }));
          added += toNumber(answer.addedCount);
          setProgress({ done: at + chunk.length, total: elements.length });
        }
        notify("ok", `Imported ${formatCount(elements.length)} lines into ${props.set} (${formatCount(added)} new entries).`);
      } catch (error) {
        notify("error", `Import stopped after ${formatCount(added)} new entries: ${messageOf(error)}`);
      } finally {
        setRunning(false);
        props.onImported();
      }
    })();
  };
  return (
    <section aria-labelledby="import-title" class="panel">
      <h2 id="import-title">Import a list</h2>
      <p class="hint">A text file with one address or network per line; comments after # or ; are skipped.</p>
      <form class="inline-form" onSubmit={submit}>
        <label>File<input type="file" accept=".txt,.list,.netset,.ipset,text/plain" required onChange={(event) => setFile(event.currentTarget.files?.[0])} /></label>
        <label>Timeout (seconds)<input type="number" min={0} value={timeout} onInput={(event) => setImportTimeout(event.currentTarget.value)} /></label>
        {props.comments ? <label>Comment<input type="text" maxLength={255} value={comment} onInput={(event) => setComment(event.currentTarget.value)} /></label> : null}
        <button type="submit" class="button-primary" disabled={file === undefined || running}>Import</button>
      </form>
      {progress === undefined ? null : (
        <p class="progress">
          <label for="import-progress">Imported {formatCount(progress.done)} of {formatCount(progress.total)}</label>
          <progress id="import-progress" max={Math.max(1, progress.total)} value={progress.done} />
        </p>
      )}
    </section>
  );
}
