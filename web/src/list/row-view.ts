// The DOM of one row. Log content is untrusted: it only ever reaches the page
// through textContent (never innerHTML), so a message holding markup or a
// <script> is shown as the text it is.

import type { LogRecord } from "../gen/taillight/v1/logs_pb";
import { permalink } from "../state/url";
import { levelClass, levelName, localTime, rfc3339 } from "../util/format";
import { type Gap, type Item, isGap } from "./store";
import type { RowFlags, RowRenderer } from "./virtual-list";

/** An element with the state it was last synced to, to skip redundant DOM writes. */
interface RowEl extends HTMLElement {
  tlFlags?: string;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  cls?: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function tagChips(tags: string[]): HTMLElement[] {
  return tags.map((t) => el("span", "tag", t));
}

function recordRow(r: LogRecord): HTMLElement {
  const lc = levelClass(r.level);
  // The row's own class is lv-*, not level-*: `.level-*` marks the level cell.
  const row = el("div", "row lv-" + levelName(r.level).toLowerCase());
  row.dataset.id = r.id.toString();
  row.setAttribute("role", "option");
  const line = el("div", "line");
  const ts = el("span", "ts", localTime(r.time));
  ts.title = rfc3339(r.time);
  const tags = el("span", "tags");
  tags.append(...tagChips(r.tags));
  line.append(
    ts,
    el("span", "level " + lc, levelName(r.level)),
    el("span", "service", r.service),
    el("span", "msg", r.message),
    tags,
  );
  row.append(line);
  return row;
}

function details(r: LogRecord): HTMLElement {
  const d = el("div", "details");
  d.append(el("pre", "full", r.message));

  const dl = el("dl");
  const field = (name: string, value: string) => dl.append(el("dt", undefined, name), el("dd", undefined, value));
  field("id", r.id.toString());
  field("time", `${localTime(r.time)}  (${rfc3339(r.time)})`);
  field("received", rfc3339(r.receivedTime));
  field("service", r.service);
  field("level", levelName(r.level));
  // Logged inside a trace (OpenTelemetry): the ids lead to it in a tracer.
  if (r.traceId) field("trace", r.traceId);
  if (r.spanId) field("span", r.spanId);
  d.append(dl);

  if (r.tags.length) {
    const tags = el("div", "tags detail-tags");
    tags.append(...tagChips(r.tags));
    d.append(tags);
  }
  const keys = Object.keys(r.attributes).sort();
  if (keys.length) {
    const attrs = el("div", "attrs");
    for (const k of keys) {
      const a = el("span", "attr", `${k}=${r.attributes[k]}`);
      a.dataset.key = k;
      attrs.append(a);
    }
    d.append(attrs);
  }

  const actions = el("div", "actions");
  const copy = el("button", "copy", "Copy JSON");
  copy.type = "button";
  const link = el("a", "permalink", "Permalink");
  link.href = permalink(r.service, r.id);
  const context = el("button", "context", "Show context");
  context.type = "button";
  context.title = "The lines this service logged around this one, filters cleared";
  actions.append(copy, context, link);
  d.append(actions);
  return d;
}

function gapRow(g: Gap): HTMLElement {
  const row = el("div", "gap-marker");
  row.setAttribute("role", "option");
  const btn = el("button", "load-gap");
  btn.type = "button";
  row.append(el("span", "gap-text"), btn);
  syncGap(row, g);
  return row;
}

/**
 * Updates a marker in place (same elements: a button being clicked is never
 * swapped for another). While loading, the button says so and further clicks
 * are ignored by the loader.
 */
function syncGap(row: HTMLElement, g: Gap): void {
  const key = `${g.first}:${g.count}:${g.loading}`;
  const r = row as RowEl;
  if (r.tlFlags === key) return;
  r.tlFlags = key;
  row.dataset.first = g.first.toString();
  row.dataset.last = g.last.toString();
  row.dataset.count = g.count.toString();
  const [text, btn] = row.children as unknown as [HTMLElement, HTMLButtonElement];
  text.textContent = `${g.count} entries skipped here (ids ${g.first}–${g.last}): this view fell behind the stream.`;
  btn.textContent = g.loading ? "Loading…" : "Load them";
  btn.setAttribute("aria-busy", String(g.loading));
}

export const rowRenderer: RowRenderer = {
  create(it: Item): HTMLElement {
    return isGap(it) ? gapRow(it) : recordRow(it);
  },

  sync(node: HTMLElement, it: Item, f: RowFlags): void {
    if (isGap(it)) return syncGap(node, it);
    const key = `${+f.selected}${+f.expanded}${+f.highlighted}`;
    const row = node as RowEl;
    if (row.tlFlags === key) return;
    const wasExpanded = row.tlFlags?.[1] === "1";
    row.tlFlags = key;
    row.setAttribute("aria-selected", String(f.selected));
    row.setAttribute("aria-expanded", String(f.expanded));
    row.classList.toggle("highlight", f.highlighted);
    if (f.expanded && !wasExpanded) row.append(details(it));
    else if (!f.expanded && wasExpanded) row.querySelector(".details")?.remove();
  },
};
