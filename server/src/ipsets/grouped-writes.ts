import type { KeyedLock } from "../keyed-lock.js";

/** A change of one element of a keyed thing (an entry of a set). */
export interface ElementWrite {
  readonly element: string;
}

interface Queued<W, R> {
  readonly write: W;
  readonly resolve: (result: R) => void;
  readonly reject: (error: unknown) => void;
}

/** The most writes applied as one group (one session write, one SQLite transaction). */
const GROUP_MAX = 512;

/**
 * Groups single-element writes to the same key that arrive together: while one group holds the key's lock, the writes
 * that come meanwhile wait, and are applied together as the next group — one store transaction and one kernel write
 * instead of one each, which is what lets concurrent callers of one set go faster than one caller alone. `apply`
 * answers each write of a group separately, so one caller's refusal never fails another's write. A group holds at
 * most one write per element (a later one waits for the next group), so each write can be undone exactly.
 */
export class GroupedWrites<W extends ElementWrite, R> {
  readonly #lock: KeyedLock;
  readonly #apply: (key: string, writes: readonly W[]) => Promise<Array<PromiseSettledResult<R>>>;
  readonly #queues = new Map<string, Array<Queued<W, R>>>();

  constructor(lock: KeyedLock, apply: (key: string, writes: readonly W[]) => Promise<Array<PromiseSettledResult<R>>>) {
    this.#lock = lock;
    this.#apply = apply;
  }

  submit(key: string, write: W): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let queue = this.#queues.get(key);
      const idle = queue === undefined;
      if (queue === undefined) this.#queues.set(key, (queue = []));
      queue.push({ write, resolve, reject });
      if (idle) void this.#drain(key, queue);
    });
  }

  async #drain(key: string, queue: Array<Queued<W, R>>): Promise<void> {
    while (queue.length > 0) {
      // The group is taken once the lock is held, so everything that arrived while waiting for it joins.
      await this.#lock.with([key], async () => {
        const group = takeGroup(queue);
        let results: Array<PromiseSettledResult<R>>;
        try {
          results = await this.#apply(key, group.map((queued) => queued.write));
        } catch (error) {
          for (const queued of group) queued.reject(error);
          return;
        }
        group.forEach((queued, i) => {
          const result = results[i]!;
          if (result.status === "fulfilled") queued.resolve(result.value);
          else queued.reject(result.reason);
        });
      });
    }
    this.#queues.delete(key);
  }
}

/** Takes the oldest writes, one per element, up to GROUP_MAX, out of the queue; the rest keep their order. */
function takeGroup<W extends ElementWrite, R>(queue: Array<Queued<W, R>>): Array<Queued<W, R>> {
  const group: Array<Queued<W, R>> = [];
  const rest: Array<Queued<W, R>> = [];
  const elements = new Set<string>();
  for (const queued of queue) {
    if (group.length < GROUP_MAX && !elements.has(queued.write.element)) {
      elements.add(queued.write.element);
      group.push(queued);
    } else {
      rest.push(queued);
    }
  }
  queue.splice(0, queue.length, ...rest);
  return group;
}
