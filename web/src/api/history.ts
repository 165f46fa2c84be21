// History through QueryLogs: pages in either direction, the context around
// one entry, the first entry at a moment, and the records of a gap the live
// stream skipped. Every result is returned oldest first, the order the list
// shows.

import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { Order, type LogRecord, type QueryLogsResponse } from "../gen/taillight/v1/logs_pb";
import { client } from "./client";
import type { Scope } from "./scope";
import { tsMillis } from "../util/format";

export const PAGE_SIZE = 200;
/** Largest page the server accepts. */
const MAX_PAGE = 1000;

/**
 * Records per response known to fit the server's message size limit (4 MiB
 * by default, while one entry may be far larger than 4 MiB / 1000). Learned
 * from refusals, then used as a cap on every page size.
 */
let fits = Infinity;

/**
 * Runs a query with `size` records per page, smaller if the server refuses a
 * response that large: it names the size and its limit, so the retry is
 * scaled to fit.
 */
async function fitted(size: number, query: (size: number) => Promise<QueryLogsResponse>): Promise<QueryLogsResponse> {
  let n = Math.min(size, fits);
  for (;;) {
    try {
      return await query(n);
    } catch (e) {
      const err = ConnectError.from(e);
      if (n <= 1 || (err.code !== Code.OutOfRange && err.code !== Code.ResourceExhausted)) throw err;
      const m = /found (\d+) bytes, the limit is:? (\d+)/.exec(err.rawMessage);
      const scaled = m ? Math.floor((n * Number(m[2])) / Number(m[1]) * 0.9) : 0;
      n = Math.max(1, scaled > 0 ? Math.min(n - 1, scaled) : Math.floor(n / 2));
      fits = n;
    }
  }
}

export interface Page {
  records: LogRecord[];
  /** More records exist beyond this page in the direction it was read. */
  more: boolean;
}

/** The newest records older than `beforeId` (the newest overall without it). */
export async function olderPage(scope: Scope, beforeId?: bigint, size = PAGE_SIZE): Promise<Page> {
  const res = await fitted(size, (pageSize) =>
    client.queryLogs({ ...scope, order: Order.NEWEST_FIRST, pageSize, beforeId }),
  );
  return { records: res.records.reverse(), more: res.nextPageToken !== "" };
}

/** The oldest records newer than `afterId`. */
export async function newerPage(scope: Scope, afterId: bigint, size = PAGE_SIZE): Promise<Page> {
  const res = await fitted(size, (pageSize) =>
    client.queryLogs({ ...scope, order: Order.OLDEST_FIRST, pageSize, afterId }),
  );
  return { records: res.records, more: res.nextPageToken !== "" };
}

/**
 * How many records match the filter and window. Asked apart from the page:
 * a page bounded by id would count only up to its bound.
 */
export async function countTotal(scope: Scope): Promise<bigint> {
  const res = await client.queryLogs({ ...scope, pageSize: 1, includeTotal: true });
  return res.totalCount ?? 0n;
}

/** Entry `id` with up to `each` records on either side. */
export async function around(
  scope: Scope,
  id: bigint,
  each = 50,
): Promise<{ records: LogRecord[]; found: boolean; newer: boolean }> {
  const [before, after] = await Promise.all([
    olderPage(scope, id + 1n, each + 1),
    newerPage(scope, id, each),
  ]);
  const records = before.records.concat(after.records);
  return { records, found: before.records.at(-1)?.id === id, newer: after.more };
}

/**
 * Entry `id` with up to `each` records of its own service on either side,
 * whatever the filter (GetContext): the lines its service logged around it.
 */
export async function context(
  id: bigint,
  each = 50,
): Promise<{ records: LogRecord[]; found: boolean; newer: boolean }> {
  try {
    const res = await client.getContext({ id, before: each, after: each });
    const records = res.entry ? [...res.before, res.entry, ...res.after] : [];
    return { records, found: res.entry !== undefined, newer: res.moreAfter };
  } catch (e) {
    if (ConnectError.from(e).code === Code.NotFound) return { records: [], found: false, newer: false };
    throw e;
  }
}

/** Bytes a page is sized for when a record size is estimated: inside the default limit of 4 MiB. */
const PAGE_BUDGET = 3 << 20;

/** A rough encoded size of a record, from its strings (a bound, not a measure). */
export function approxBytes(r: LogRecord): number {
  let n = 64 + r.service.length + r.message.length;
  for (const t of r.tags) n += t.length + 2;
  for (const k in r.attributes) n += k.length + r.attributes[k].length + 6;
  return n;
}

/**
 * The records a tail skipped, `firstId..=lastId`, one page at a time, so a
 * large gap fills in progressively. `recordBytes`, the size of records like
 * the missing ones, sizes the pages so the server need not refuse one first.
 */
export async function* gapPages(
  scope: Scope,
  firstId: bigint,
  lastId: bigint,
  signal: AbortSignal,
  recordBytes = 0,
): AsyncGenerator<{ records: LogRecord[]; done: boolean }> {
  const size = recordBytes > 0 ? Math.max(1, Math.min(MAX_PAGE, Math.floor(PAGE_BUDGET / recordBytes))) : MAX_PAGE;
  let pageToken = "";
  do {
    const token = pageToken;
    const res = await fitted(size, (pageSize) =>
      client.queryLogs(
        { ...scope, order: Order.OLDEST_FIRST, pageSize, pageToken: token, afterId: firstId - 1n, beforeId: lastId + 1n },
        { signal },
      ),
    );
    pageToken = res.nextPageToken;
    yield { records: res.records, done: pageToken === "" };
  } while (pageToken !== "");
}

/**
 * The id of the oldest record at or after `time` (epoch ms) within the
 * scope, or null if there is none. Turns a moment into a place in the list,
 * which pages by id.
 */
export async function firstIdAt(scope: Scope, time: number): Promise<bigint | null> {
  const from = scope.startTime && tsMillis(scope.startTime) > time ? scope.startTime : timestampFromMs(time);
  const res = await client.queryLogs({ ...scope, startTime: from, order: Order.OLDEST_FIRST, pageSize: 1 });
  return res.records[0]?.id ?? null;
}
