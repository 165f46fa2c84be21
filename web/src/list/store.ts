// The rows held in memory: records and skipped-gap markers, always in id
// order (oldest first, as displayed). Appending at the end is the hot path at
// thousands of records per second; anything else (a gap filled in) is a
// binary search and one splice.

import type { LogRecord } from "../gen/taillight/v1/logs_pb";

/** Where a tail reported skipped records: ids first..=last, not (yet) loaded. */
export interface Gap {
  readonly kind: "gap";
  first: bigint;
  readonly last: bigint;
  count: bigint;
  loading: boolean;
}

export type Item = LogRecord | Gap;

export function isGap(it: Item): it is Gap {
  return (it as Gap).kind === "gap";
}

/**
 * Sort position: record `id` at 2·id; a marker just after its last missing id
 * (2·last + 1), so records loaded into the gap land before it and later live
 * records after it.
 */
function pos(it: Item): bigint {
  return isGap(it) ? it.last * 2n + 1n : it.id * 2n;
}

export class RowStore {
  items: Item[] = [];
  private records = 0;

  get recordCount(): number {
    return this.records;
  }

  get length(): number {
    return this.items.length;
  }

  clear(): void {
    this.items = [];
    this.records = 0;
  }

  /** The newest record's id, 0 when empty. */
  lastRecordId(): bigint {
    for (let i = this.items.length - 1; i >= 0; i--) {
      const it = this.items[i];
      if (!isGap(it)) return it.id;
    }
    return 0n;
  }

  firstRecordId(): bigint | undefined {
    for (const it of this.items) if (!isGap(it)) return it.id;
    return undefined;
  }

  /** Index of the first item at or after sort position `p`. */
  private lowerBound(p: bigint): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pos(this.items[mid]) < p) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index of the record with this id, -1 if not held. */
  indexOfId(id: bigint): number {
    const i = this.lowerBound(id * 2n);
    const it = this.items[i];
    return it && !isGap(it) && it.id === id ? i : -1;
  }

  /** Where `it` is, or would be if it had been dropped (restores a scroll anchor). */
  indexAtOrAfter(it: Item): number {
    return this.lowerBound(pos(it));
  }

  /**
   * Adds records in id order. Ids already held are ignored, so an overlap
   * between history and live can never show an entry twice.
   */
  add(records: LogRecord[]): void {
    if (!records.length) return;
    const items = this.items;
    const first = records[0].id * 2n;
    const n = items.length;
    // Hot path: everything is newer than what is held.
    if (n === 0 || pos(items[n - 1]) < first) {
      for (const r of records) items.push(r);
      this.records += records.length;
      return;
    }
    // A run that fits between two held items in one piece (a gap being filled).
    const i = this.lowerBound(first);
    const next = items[i];
    if (records.length <= 10_000 && (!next || pos(next) > records[records.length - 1].id * 2n)) {
      items.splice(i, 0, ...records);
      this.records += records.length;
      return;
    }
    for (const r of records) {
      const j = this.lowerBound(r.id * 2n);
      const at = items[j];
      if (at && !isGap(at) && at.id === r.id) continue;
      items.splice(j, 0, r);
      this.records++;
    }
  }

  /**
   * A skip reported by the tail; merged into a marker it directly follows
   * (only ever forward: a marker must cover exactly first..=last).
   */
  addGap(first: bigint, last: bigint, count: bigint): Gap {
    const n = this.items.length;
    const tail = this.items[n - 1];
    if (tail && isGap(tail) && !tail.loading && first === tail.last + 1n) {
      const merged: Gap = { kind: "gap", first: tail.first, last, count: tail.count + count, loading: false };
      this.items[n - 1] = merged;
      return merged;
    }
    const gap: Gap = { kind: "gap", first, last, count, loading: false };
    this.items.splice(this.lowerBound(pos(gap)), 0, gap);
    return gap;
  }

  has(it: Item): boolean {
    const i = this.lowerBound(pos(it));
    return this.items[i] === it;
  }

  /**
   * Records loaded for the oldest part of a gap. They go in before the
   * marker, which then covers only what is still missing; it is removed once
   * the gap is filled.
   */
  fillGap(gap: Gap, records: LogRecord[], done: boolean): void {
    this.add(records);
    if (records.length) {
      gap.first = records[records.length - 1].id + 1n;
      const left = gap.count - BigInt(records.length);
      gap.count = left > 0n ? left : 0n;
    }
    if (done || gap.first > gap.last) {
      const i = this.lowerBound(pos(gap));
      if (this.items[i] === gap) this.items.splice(i, 1);
    }
  }

  /**
   * Drops the oldest items until at most `cap` records remain (they stay
   * reachable through history), and any marker left at the top with them.
   * Returns how many items were dropped.
   */
  trim(cap: number): number {
    const excess = this.records - cap;
    if (excess <= 0) return 0;
    const items = this.items;
    let n = 0;
    let dropped = 0;
    while (n < items.length && (dropped < excess || isGap(items[n]))) {
      if (!isGap(items[n])) dropped++;
      n++;
    }
    items.splice(0, n);
    this.records -= dropped;
    return n;
  }
}
