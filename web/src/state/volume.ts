// The volume chart's data: entries per level in equal time buckets lying end
// to end, as GetHistogram answered, plus what the live stream delivered
// since. A live record is counted in place with constant work, so the chart
// moves at once whatever the rate; the next fetch replaces these estimates
// with the server's counts (a record stored just before a fetch may be
// counted twice until then).

import { LEVEL_NAMES } from "../util/format";

export interface Bucket {
  /** Epoch ms, inclusive. */
  start: number;
  /** Epoch ms, exclusive. */
  end: number;
  /** Entries by level, in LEVEL_NAMES order. */
  counts: number[];
}

/**
 * Buckets the live edge may grow by past what was fetched. Beyond that the
 * range needs cutting afresh (wider buckets), which is the server's job at
 * the next fetch; it also bounds the chart if fetches keep failing.
 */
const MAX_GROWTH = 20;

export function total(b: Bucket): number {
  let n = 0;
  for (const c of b.counts) n += c;
  return n;
}

export class Volume {
  private readonly limit: number;

  constructor(readonly buckets: Bucket[] = []) {
    this.limit = buckets.length + MAX_GROWTH;
  }

  total(): number {
    let n = 0;
    for (const b of this.buckets) n += total(b);
    return n;
  }

  /**
   * Counts a live record at `time` (epoch ms) of `level` (1 = TRACE ...).
   * False when it cannot be placed: no buckets yet, before the first one, or
   * too far past the last; the next fetch counts it.
   */
  add(time: number, level: number): boolean {
    const bs = this.buckets;
    const i = level - 1;
    if (!bs.length || i < 0 || i >= LEVEL_NAMES.length) return false;
    const first = bs[0];
    const width = first.end - first.start;
    const at = Math.floor((time - first.start) / width);
    if (at < 0 || at >= this.limit) return false;
    while (bs.length <= at) {
      const start = first.start + bs.length * width;
      bs.push({ start, end: start + width, counts: LEVEL_NAMES.map(() => 0) });
    }
    bs[at].counts[i]++;
    return true;
  }
}
