import { Disposable } from "./disposable.js";
import { EventEmitter, type Event } from "./event.js";

/** Tells an operation that its caller no longer wants the result (VS Code's CancellationToken). */
export interface CancellationToken {
  /** Whether cancellation was requested. */
  readonly isCancellationRequested: boolean;
  /** Fires once, when cancellation is requested (at once for a listener that subscribes afterwards). */
  readonly onCancellationRequested: Event<void>;
}

const never: Event<void> = () => new Disposable(() => undefined);

/** Tokens that are never cancelled, and one that always is. */
export const CancellationToken = {
  /** A token that is never cancelled. */
  None: Object.freeze({ isCancellationRequested: false, onCancellationRequested: never }) as CancellationToken,
  /** A token that is cancelled already. */
  Cancelled: Object.freeze({
    isCancellationRequested: true,
    onCancellationRequested: (listener: (event: void) => unknown, thisArgs?: unknown) => {
      const timer = setTimeout(() => listener.call(thisArgs, undefined), 0);
      return new Disposable(() => clearTimeout(timer));
    },
  }) as CancellationToken,
};

/** Creates a {@link CancellationToken} and cancels it when asked. */
export class CancellationTokenSource {
  readonly #emitter = new EventEmitter<void>();
  #cancelled = false;
  #token: CancellationToken | undefined;

  /**
   * @param parent - a token whose cancellation cancels this one too.
   */
  constructor(parent?: CancellationToken) {
    if (parent?.isCancellationRequested) this.cancel();
    else parent?.onCancellationRequested(() => this.cancel());
  }

  /** The token to hand to operations. */
  get token(): CancellationToken {
    if (this.#token === undefined) {
      const source = this;
      const emitter = this.#emitter;
      this.#token = Object.freeze({
        get isCancellationRequested() {
          return source.#cancelled;
        },
        onCancellationRequested: ((listener, thisArgs, disposables) => {
          if (!source.#cancelled) return emitter.event(listener, thisArgs, disposables);
          // Already cancelled: the listener hears it at once (asynchronously, like any event).
          const timer = setTimeout(() => listener.call(thisArgs, undefined), 0);
          const subscription = new Disposable(() => clearTimeout(timer));
          disposables?.push(subscription);
          return subscription;
        }) as Event<void>,
      });
    }
    return this.#token;
  }

  /** Requests cancellation: the token's listeners hear it once. */
  cancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#emitter.fire();
    this.#emitter.dispose();
  }

  /** Releases the listeners (without cancelling). */
  dispose(): void {
    this.#emitter.dispose();
  }
}
