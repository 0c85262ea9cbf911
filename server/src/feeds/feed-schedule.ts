import type { FeedDefinition, FeedState } from "./feed-model.js";

/** After a failure the next try comes sooner than the interval: a minute, doubling per failure, at most the interval. */
const FIRST_RETRY_MS = 60_000;
/** Feeds overdue at start are spread over at most this (or their jitter, if smaller). */
const START_SPREAD_MS = 60_000;

/**
 * When the next refresh is due after one that ended at `now` (`failures` since the last success): the wait plus a
 * random part of the jitter, at most the wait itself (a retry a minute later is not put off by five).
 */
export function nextDueAt(definition: Pick<FeedDefinition, "intervalSeconds" | "jitterSeconds">, now: number, failures: number, random = Math.random): number {
  const interval = definition.intervalSeconds * 1000;
  const wait = failures === 0 ? interval : Math.min(interval, FIRST_RETRY_MS * 2 ** Math.min(failures - 1, 20));
  return now + wait + Math.floor(random() * Math.min(wait, definition.jitterSeconds * 1000));
}

/**
 * When a feed's refresh is due once the server has started: as recorded, so that a restart refetches nothing early;
 * a feed that fell due while the server was down waits a random part of its jitter, so that they do not all go at
 * once.
 */
export function dueAtStart(definition: Pick<FeedDefinition, "jitterSeconds">, state: Pick<FeedState, "nextDueAt">, now: number, random = Math.random): number {
  if (state.nextDueAt > now) return state.nextDueAt;
  return now + Math.floor(random() * Math.min(START_SPREAD_MS, definition.jitterSeconds * 1000));
}
