// GetHistogram: entries counted by level over time buckets, for the volume
// chart above the list. The server cuts the range into buckets of one round
// width (1 s, 10 s, 1 min, 15 min, ...), so every bucket is as wide as the
// first and the buckets lie end to end.

import { client } from "./client";
import type { Scope } from "./scope";
import { LEVEL_NAMES, tsMillis } from "../util/format";
import type { Bucket } from "../state/volume";

/** Buckets asked for: the server's default, about a bar per 10 px of a wide chart. */
export const BUCKETS = 100;

export async function fetchHistogram(scope: Scope, signal?: AbortSignal): Promise<Bucket[]> {
  const res = await client.getHistogram({ ...scope, buckets: BUCKETS }, { signal });
  return res.buckets.map((b) => ({
    start: tsMillis(b.start),
    end: tsMillis(b.end),
    // uint64 on the wire; no bucket comes near 2^53 entries.
    counts: LEVEL_NAMES.map((l) => Number(b.counts[l] ?? 0n)),
  }));
}
