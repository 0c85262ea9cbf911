// Text for `ipset restore`, streamed in chunks; every part of the ipset domain that deletes or rebuilds writes it so.

/** Entries recorded and rendered per step: small enough that one synchronous step never starves `ipset restore`. */
export const RESTORE_CHUNK = 2_000;

/** `del` lines for restore input (absent elements are not an error under -exist). */
export function delLines(set: string, elements: Iterable<string>): Generator<string> {
  return chunked(elements, (element) => `del ${set} ${element}\n`);
}

/** Restore text of items, RESTORE_CHUNK lines at a time (items may be a lazy iterable, such as a set's entries). */
export function* chunked<T>(items: Iterable<T>, render: (item: T) => string): Generator<string> {
  let text = "";
  let lines = 0;
  for (const item of items) {
    text += render(item);
    if (++lines === RESTORE_CHUNK) {
      yield text;
      text = "";
      lines = 0;
    }
  }
  if (text !== "") yield text;
}
