/**
 * Serializes async work per key (set names): a change to one set waits for the previous change to that set, while
 * different sets proceed in parallel. Multi-key holders lock in sorted order, so two of them cannot deadlock.
 */
export class KeyedLock {
  readonly #tails = new Map<string, Promise<void>>();

  async with<T>(keys: readonly string[], work: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const previous = sorted.map((key) => this.#tails.get(key) ?? Promise.resolve());
    const tails = sorted.map((key, i) => {
      const tail = previous[i]!.then(() => held);
      this.#tails.set(key, tail);
      return tail;
    });
    try {
      await Promise.all(previous);
      return await work();
    } finally {
      release();
      sorted.forEach((key, i) => {
        if (this.#tails.get(key) === tails[i]) this.#tails.delete(key);
      });
    }
  }
}
