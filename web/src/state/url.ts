// The view <-> the query string. Every change is written back with
// history.replaceState, so a reload or a shared link restores the same view.
//
//   ?service=api&tags=db,cache&levels=WARN,ERROR&q=timeout&range=1h
//   &paused=1&last=1234               paused after id 1234
//   &history=1&before=900             the page older than id 900
//   ?service=api&entry=42             permalink: entry 42 in its context
//
// Reading also accepts the singular `tag` / `level` the server's gateway uses.

import { LEVEL_NAMES } from "../util/format";
import { DEFAULT_CAP, defaultView, type RangeKey, type ViewState } from "./view";

const RANGES: RangeKey[] = ["all", "15m", "1h", "24h", "custom"];

function id(s: string | null): bigint | undefined {
  return s && /^\d{1,20}$/.test(s) ? BigInt(s) : undefined;
}

function time(s: string | null): number | undefined {
  if (!s) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
}

/** Repeated keys and comma lists both work, as on the server's gateway. */
function list(p: URLSearchParams, key: string): string[] {
  return p
    .getAll(key)
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter((v) => v !== "");
}

export function parseUrl(search: string): ViewState {
  const p = new URLSearchParams(search);
  const v = defaultView();
  v.service = p.get("service") ?? "";
  v.tags = [...new Set([...list(p, "tags"), ...list(p, "tag")])].sort();
  const levels = [...list(p, "levels"), ...list(p, "level")].map((x) => x.toUpperCase());
  v.levels = LEVEL_NAMES.filter((l) => levels.includes(l));
  v.text = p.get("q") ?? "";
  const range = p.get("range") as RangeKey | null;
  v.range = range && RANGES.includes(range) ? range : "all";
  v.from = time(p.get("from"));
  v.to = time(p.get("to"));
  const cap = Number(p.get("cap"));
  v.cap = Number.isInteger(cap) && cap > 0 ? cap : DEFAULT_CAP;
  const backfill = p.has("backfill") ? Number(p.get("backfill")) : NaN;
  if (Number.isInteger(backfill) && backfill >= 0) v.backfill = backfill;
  v.entry = id(p.get("entry"));
  const flag = (k: string) => p.has(k) && !["0", "false"].includes(p.get(k) ?? "");
  if (v.entry !== undefined) {
    // A permalink is always a paused snapshot around its entry.
    v.mode = "paused";
  } else if (flag("paused")) {
    v.mode = "paused";
    v.last = id(p.get("last"));
  } else if (flag("history")) {
    v.mode = "history";
    v.before = id(p.get("before"));
    v.after = v.before === undefined ? id(p.get("after")) : undefined;
  }
  return v;
}

export function toQuery(v: ViewState): string {
  const p = new URLSearchParams();
  if (v.service) p.set("service", v.service);
  if (v.tags.length) p.set("tags", v.tags.join(","));
  if (v.levels.length) p.set("levels", v.levels.join(","));
  if (v.text) p.set("q", v.text);
  if (v.range !== "all") p.set("range", v.range);
  if (v.range === "custom") {
    if (v.from !== undefined) p.set("from", new Date(v.from).toISOString());
    if (v.to !== undefined) p.set("to", new Date(v.to).toISOString());
  }
  if (v.mode !== "live") p.set(v.mode, "1");
  if (v.entry !== undefined) p.set("entry", v.entry.toString());
  else if (v.mode === "paused" && v.last !== undefined) p.set("last", v.last.toString());
  if (v.mode === "history") {
    if (v.before !== undefined) p.set("before", v.before.toString());
    else if (v.after !== undefined) p.set("after", v.after.toString());
  }
  if (v.cap !== DEFAULT_CAP) p.set("cap", String(v.cap));
  if (v.backfill !== undefined) p.set("backfill", String(v.backfill));
  const s = p.toString();
  return s ? "?" + s : "";
}

export function writeUrl(v: ViewState): void {
  const q = toQuery(v);
  if (q !== location.search) history.replaceState(null, "", location.pathname + q);
}

/** A link that opens one entry in its context. */
export function permalink(service: string, entryId: bigint): string {
  const p = new URLSearchParams({ service, entry: entryId.toString() });
  return location.pathname + "?" + p.toString();
}

