// What the user is looking at, as plain data. Everything the URL can restore
// lives here; the controller turns it into requests.

import type { LevelName } from "../util/format";

export type Mode = "live" | "paused" | "history";
export type RangeKey = "all" | "15m" | "1h" | "24h" | "custom";

export interface ViewState {
  service: string;
  /** Empty: every tag ("all"). */
  tags: string[];
  /** Empty: every level ("all"). */
  levels: LevelName[];
  text: string;
  range: RangeKey;
  /** Bounds of the custom range, epoch milliseconds. */
  from?: number;
  to?: number;
  mode: Mode;
  /** Paused: the last id received, where resuming continues. */
  last?: bigint;
  /** History: the page of entries just older than `before`, or just newer
   *  than `after`; neither is the newest page. */
  before?: bigint;
  after?: bigint;
  /** Permalink: the entry shown in its context (paused). */
  entry?: bigint;
  /** Most rows kept in memory; the oldest are dropped beyond it. */
  cap: number;
  /** Rows a live view opens with, when the URL asks (`?backfill=N`). */
  backfill?: number;
}

export const DEFAULT_CAP = 50_000;
/** Rows a live view opens with by default: quick to load, enough to read. */
export const DEFAULT_BACKFILL = 1000;

/**
 * Rows a live view opens with: `?backfill=N`, else all of an explicit
 * `?cap=N` (a view asked to hold N rows fills up to N from history), else
 * DEFAULT_BACKFILL. Never more than the cap.
 */
export function initialRows(v: ViewState): number {
  const want = v.backfill ?? (v.cap !== DEFAULT_CAP ? v.cap : DEFAULT_BACKFILL);
  return Math.min(want, v.cap);
}

export function defaultView(): ViewState {
  return { service: "", tags: [], levels: [], text: "", range: "all", mode: "live", cap: DEFAULT_CAP };
}

const RANGE_MS: Record<string, number> = { "15m": 15 * 60_000, "1h": 3_600_000, "24h": 86_400_000 };

/** The time window a history query uses, evaluated now (relative ranges slide). */
export function timeWindow(v: ViewState, now = Date.now()): { start?: number; end?: number } {
  if (v.range === "custom") return { start: v.from, end: v.to };
  const span = RANGE_MS[v.range];
  return span ? { start: now - span } : {};
}
