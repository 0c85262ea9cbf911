import { formatAddress, networkBase, parseAddressStrict } from "../addresses.js";
import type { BanRow } from "../store/event-store.js";
import { subjectOf, type HostEvent } from "./event-model.js";

/** The spans the console charts: how far back, and how wide each bucket of the timeline is. */
export const WINDOWS = {
  hour: { spanMs: 3_600_000, bucketMs: 60_000 },
  day: { spanMs: 86_400_000, bucketMs: 3_600_000 },
  week: { spanMs: 7 * 86_400_000, bucketMs: 6 * 3_600_000 },
  month: { spanMs: 30 * 86_400_000, bucketMs: 86_400_000 },
} as const;
export type WindowName = keyof typeof WINDOWS;

/** How far back the history reaches: the longest window. */
const KEPT_MS = WINDOWS.month.spanMs;

/** The buckets of a window ending now: aligned to multiples of the bucket width (UTC), the last one holding now. */
export function windowBuckets(window: WindowName, now: number): { start: number; bucketMs: number; count: number } {
  const { spanMs, bucketMs } = WINDOWS[window];
  const count = spanMs / bucketMs;
  return { start: Math.floor(now / bucketMs) * bucketMs - (count - 1) * bucketMs, bucketMs, count };
}

export interface TimelineBucket {
  readonly start: number;
  readonly bans: number;
  readonly unbans: number;
}

export interface Offender {
  /** An address, or a network (/24 for IPv4, /64 for IPv6) in CIDR notation. */
  readonly address: string;
  readonly bans: number;
  /** ms since the epoch. */
  readonly lastBan: number;
  readonly jails: readonly string[];
  /** For a network: how many of its addresses were banned. */
  readonly addresses: number;
}

export interface JailCounts {
  readonly jail: string;
  readonly bans: number;
  readonly unbans: number;
}

/** Interned strings with reference counts, so that ids of strings no longer referenced are reused. */
class Interned {
  readonly ids = new Map<string, number>();
  names: string[] = [];
  refs = new Int32Array(1024);
  readonly #free: number[] = [];

  take(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.#free.pop() ?? this.names.length;
      if (id >= this.refs.length) this.refs = grow(this.refs, id + 1);
      this.names[id] = name;
      this.ids.set(name, id);
    }
    this.refs[id]!++;
    return id;
  }

  release(id: number): boolean {
    if (--this.refs[id]! > 0) return false;
    this.ids.delete(this.names[id]!);
    this.#free.push(id);
    return true;
  }

  get size(): number {
    return this.names.length;
  }
}

/**
 * The bans and unbans of the last 30 days, in memory as columns (≈ 30 bytes per event plus each distinct address
 * once), for the aggregates a console shows: a timeline, top offenders and per-jail counts over a window answer in
 * one pass over typed arrays instead of grouping a million rows in SQL. Loaded from the event log at startup and fed
 * by it afterwards; what the log prunes is dropped here too.
 */
export class BanHistory {
  #sequence = new Float64Array(1024);
  #time = new Float64Array(1024);
  #address = new Int32Array(1024);
  #jail = new Uint16Array(1024);
  /** 1 for a ban, 0 for an unban. */
  #ban = new Uint8Array(1024);
  #start = 0;
  #end = 0;
  readonly #addresses = new Interned();
  readonly #networks = new Interned();
  /** Address id → network id. */
  #networkOf = new Int32Array(1024);
  readonly #jails = new Map<string, number>();
  readonly #jailNames: string[] = [];

  /** Loads what the log holds (pages of `read`, oldest first) and follows `subscribe`'s events from then on. */
  constructor(read: (afterSequence: number, since: number, limit: number) => BanRow[], now = Date.now()) {
    let after = 0;
    for (;;) {
      const page = read(after, now - KEPT_MS, 10_000);
      for (const row of page) this.#push(row.sequence, row.time, row.type === "BAN", row.jail, row.address);
      if (page.length < 10_000) break;
      after = page[page.length - 1]!.sequence;
    }
  }

  /** Takes a recorded event (the event log's listener). */
  record(event: HostEvent): void {
    if (event.type !== "BAN" && event.type !== "UNBAN") return;
    const { jail, address } = subjectOf(event);
    if (jail === undefined || address === undefined) return;
    this.#push(event.sequence, event.time, event.type === "BAN", jail, address);
    this.#dropOlder(event.time - KEPT_MS);
  }

  /** Forgets events the log no longer holds (pruned by count). */
  dropBefore(firstSequence: number): void {
    while (this.#start < this.#end && this.#sequence[this.#start]! < firstSequence) this.#drop();
  }

  /** Bans and unbans per bucket of the window (empty buckets included), of one jail or all. */
  timeline(window: WindowName, jail: string | undefined, now = Date.now()): TimelineBucket[] {
    const { start, bucketMs, count } = windowBuckets(window, now);
    const bans = new Float64Array(count);
    const unbans = new Float64Array(count);
    const jailId = jail === undefined ? -1 : this.#jails.get(jail) ?? -2;
    if (jailId !== -2) {
      for (let i = this.#firstAtOrAfter(start); i < this.#end; i++) {
        if (jailId >= 0 && this.#jail[i] !== jailId) continue;
        const bucket = Math.floor((this.#time[i]! - start) / bucketMs);
        if (bucket >= count) continue;
        if (this.#ban[i] === 1) bans[bucket]!++;
        else unbans[bucket]!++;
      }
    }
    return Array.from({ length: count }, (_, i) => ({ start: start + i * bucketMs, bans: bans[i]!, unbans: unbans[i]! }));
  }

  /** The most banned addresses and networks since `since` (ms), most bans first, then the latest ban first. */
  topOffenders(since: number, jail: string | undefined, limit: number): { addresses: Offender[]; networks: Offender[] } {
    const jailId = jail === undefined ? -1 : this.#jails.get(jail) ?? -2;
    if (jailId === -2) return { addresses: [], networks: [] };
    const first = this.#firstAtOrAfter(since);
    const counts = new Int32Array(this.#addresses.size);
    const lastBan = new Float64Array(this.#addresses.size);
    const touched: number[] = [];
    for (let i = first; i < this.#end; i++) {
      if (this.#ban[i] !== 1 || (jailId >= 0 && this.#jail[i] !== jailId)) continue;
      const id = this.#address[i]!;
      if (counts[id]!++ === 0) touched.push(id);
      if (this.#time[i]! > lastBan[id]!) lastBan[id] = this.#time[i]!;
    }
    const networkCounts = new Int32Array(this.#networks.size);
    const networkLast = new Float64Array(this.#networks.size);
    const networkAddresses = new Int32Array(this.#networks.size);
    const networksTouched: number[] = [];
    for (const id of touched) {
      const network = this.#networkOf[id]!;
      if (networkAddresses[network]!++ === 0) networksTouched.push(network);
      networkCounts[network]! += counts[id]!;
      if (lastBan[id]! > networkLast[network]!) networkLast[network] = lastBan[id]!;
    }
    const topAddresses = top(touched, counts, lastBan, this.#addresses.names, limit);
    const topNetworks = top(networksTouched, networkCounts, networkLast, this.#networks.names, limit);
    // The jails of the few offenders shown: a second pass over the window.
    const addressJails = new Map(topAddresses.map((id) => [id, new Set<number>()]));
    const networkJails = new Map(topNetworks.map((id) => [id, new Set<number>()]));
    for (let i = first; i < this.#end; i++) {
      if (this.#ban[i] !== 1 || (jailId >= 0 && this.#jail[i] !== jailId)) continue;
      addressJails.get(this.#address[i]!)?.add(this.#jail[i]!);
      networkJails.get(this.#networkOf[this.#address[i]!]!)?.add(this.#jail[i]!);
    }
    const jailNames = (ids: Set<number>): string[] => [...ids].map((id) => this.#jailNames[id]!).sort();
    return {
      addresses: topAddresses.map((id) => ({ address: this.#addresses.names[id]!, bans: counts[id]!, lastBan: lastBan[id]!, jails: jailNames(addressJails.get(id)!), addresses: 1 })),
      networks: topNetworks.map((id) => ({ address: this.#networks.names[id]!, bans: networkCounts[id]!, lastBan: networkLast[id]!, jails: jailNames(networkJails.get(id)!), addresses: networkAddresses[id]! })),
    };
  }

  /** Bans and unbans per jail since `since` (ms), for the jails that had any, by name. */
  jailCounts(since: number): JailCounts[] {
    const bans = new Float64Array(this.#jailNames.length);
    const unbans = new Float64Array(this.#jailNames.length);
    for (let i = this.#firstAtOrAfter(since); i < this.#end; i++) {
      if (this.#ban[i] === 1) bans[this.#jail[i]!]!++;
      else unbans[this.#jail[i]!]!++;
    }
    return this.#jailNames.map((jail, id) => ({ jail, bans: bans[id]!, unbans: unbans[id]! })).filter((row) => row.bans + row.unbans > 0).sort((a, b) => (a.jail < b.jail ? -1 : 1));
  }

  /** Bans (of every jail) since `since` (ms). */
  bansSince(since: number): number {
    let bans = 0;
    for (let i = this.#firstAtOrAfter(since); i < this.#end; i++) bans += this.#ban[i]!;
    return bans;
  }

  #push(sequence: number, time: number, ban: boolean, jail: string, address: string): void {
    if (this.#end === this.#time.length) this.#makeRoom();
    const i = this.#end++;
    this.#sequence[i] = sequence;
    this.#time[i] = time;
    this.#ban[i] = ban ? 1 : 0;
    this.#jail[i] = this.#jailId(jail);
    const id = this.#addresses.take(address);
    if (this.#addresses.refs[id] === 1) {
      if (id >= this.#networkOf.length) this.#networkOf = grow(this.#networkOf, id + 1);
      this.#networkOf[id] = this.#networks.take(networkOf(address));
    }
    this.#address[i] = id;
  }

  #drop(): void {
    const id = this.#address[this.#start++]!;
    if (this.#addresses.release(id)) this.#networks.release(this.#networkOf[id]!);
  }

  #dropOlder(time: number): void {
    while (this.#start < this.#end && this.#time[this.#start]! < time) this.#drop();
  }

  /** Moves the live part to the front, or doubles the columns when it fills more than half of them. */
  #makeRoom(): void {
    const live = this.#end - this.#start;
    const size = live * 2 > this.#time.length ? this.#time.length * 2 : this.#time.length;
    const move = <T extends Float64Array | Int32Array | Uint16Array | Uint8Array>(column: T, make: (n: number) => T): T => {
      const next = size === column.length ? column : make(size);
      next.set(column.subarray(this.#start, this.#end) as never);
      return next;
    };
    this.#sequence = move(this.#sequence, (n) => new Float64Array(n));
    this.#time = move(this.#time, (n) => new Float64Array(n));
    this.#address = move(this.#address, (n) => new Int32Array(n));
    this.#jail = move(this.#jail, (n) => new Uint16Array(n));
    this.#ban = move(this.#ban, (n) => new Uint8Array(n));
    this.#start = 0;
    this.#end = live;
  }

  #jailId(jail: string): number {
    let id = this.#jails.get(jail);
    if (id === undefined) {
      id = this.#jailNames.length;
      this.#jailNames.push(jail);
      this.#jails.set(jail, id);
    }
    return id;
  }

  /** The first position recorded at or after a time (the log's times follow its order). */
  #firstAtOrAfter(time: number): number {
    let low = this.#start;
    let high = this.#end;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#time[middle]! < time) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}

/** The /24 (IPv4) or /64 (IPv6) network of an address. */
export function networkOf(address: string): string {
  const parsed = parseAddressStrict(address);
  if ("problem" in parsed) return address;
  return parsed.kind() === "ipv4" ? `${formatAddress(networkBase(parsed, 24))}/24` : `${formatAddress(networkBase(parsed, 64))}/64`;
}

/** The ids with the most counts, then the latest, then by name; at most `limit`. */
function top(ids: readonly number[], counts: Int32Array, last: Float64Array, names: readonly string[], limit: number): number[] {
  const before = (a: number, b: number): boolean =>
    counts[a]! !== counts[b]! ? counts[a]! > counts[b]! : last[a]! !== last[b]! ? last[a]! > last[b]! : names[a]! < names[b]!;
  const best: number[] = [];
  for (const id of ids) {
    if (best.length === limit && !before(id, best[best.length - 1]!)) continue;
    let at = best.length;
    while (at > 0 && before(id, best[at - 1]!)) at--;
    best.splice(at, 0, id);
    if (best.length > limit) best.pop();
  }
  return best;
}

function grow<T extends Int32Array>(array: T, least: number): T {
  const next = new (array.constructor as new (n: number) => T)(Math.max(least, array.length * 2));
  next.set(array);
  return next;
}
