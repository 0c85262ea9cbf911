/**
 * Something that holds a resource (a subscription, a stream, a connection) until it is disposed, as in VS Code's API.
 * Disposing twice is harmless.
 */
export class Disposable {
  #dispose: (() => void) | undefined;

  /** Combines several disposables into one that disposes them all (in order; a throwing one does not stop the rest). */
  static from(...disposables: ReadonlyArray<{ dispose(): unknown }>): Disposable {
    return new Disposable(() => {
      const errors: unknown[] = [];
      for (const disposable of disposables) {
        try {
          disposable.dispose();
        } catch (error) {
          errors.push(error);
        }
      }
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) throw new AggregateError(errors, "several disposables failed to dispose");
    });
  }

  /** @param callOnDispose - what disposing does; called once. */
  constructor(callOnDispose: () => void) {
    this.#dispose = callOnDispose;
  }

  /** Releases the resource; later calls do nothing. */
  dispose(): void {
    const dispose = this.#dispose;
    this.#dispose = undefined;
    dispose?.();
  }
}
