import { Disposable } from "./disposable.js";

/**
 * An event, VS Code style: a function to subscribe a listener, which returns the {@link Disposable} that ends the
 * subscription. `thisArgs` is the listener's `this`; a `disposables` array receives the subscription, for disposing
 * several together.
 */
export type Event<T> = (listener: (event: T) => unknown, thisArgs?: unknown, disposables?: Disposable[]) => Disposable;

/** Options of an {@link EventEmitter}. */
export interface EventEmitterOptions {
  /** Called when the first listener subscribes (e.g. to open the stream the events come from). */
  readonly onFirstListenerAdd?: () => void;
  /** Called when the last listener unsubscribes (e.g. to close that stream). */
  readonly onLastListenerRemove?: () => void;
  /** Called with what a listener threw (default: reported asynchronously, never breaking the other listeners). */
  readonly onListenerError?: (error: unknown) => void;
}

/** Owns an {@link Event}: `fire` delivers a value to every current listener, in subscription order. */
export class EventEmitter<T> {
  readonly #listeners = new Set<{ listener: (event: T) => unknown; thisArgs: unknown }>();
  readonly #options: EventEmitterOptions;
  #disposed = false;

  /** @param options - hooks for the first and last listener, and for listener errors. */
  constructor(options: EventEmitterOptions = {}) {
    this.#options = options;
  }

  /** The event others subscribe to. */
  readonly event: Event<T> = (listener, thisArgs, disposables) => {
    if (this.#disposed) return new Disposable(() => undefined);
    const entry = { listener, thisArgs };
    this.#listeners.add(entry);
    if (this.#listeners.size === 1) this.#options.onFirstListenerAdd?.();
    const subscription = new Disposable(() => {
      if (this.#listeners.delete(entry) && this.#listeners.size === 0) this.#options.onLastListenerRemove?.();
    });
    disposables?.push(subscription);
    return subscription;
  };

  /** Delivers a value to every listener subscribed now; a listener that throws does not stop the others. */
  fire(event: T): void {
    for (const { listener, thisArgs } of [...this.#listeners]) {
      try {
        listener.call(thisArgs, event);
      } catch (error) {
        if (this.#options.onListenerError !== undefined) this.#options.onListenerError(error);
        else queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  /** Whether anyone listens. */
  get hasListeners(): boolean {
    return this.#listeners.size > 0;
  }

  /** Drops every listener; the event then accepts no new ones. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const had = this.#listeners.size > 0;
    this.#listeners.clear();
    if (had) this.#options.onLastListenerRemove?.();
  }
}
