// Pointer gestures on the volume chart: hovering a bar shows its span and
// counts, a drag across bars picks a time range (zoom), a click on a bar
// jumps the list there. A press that moves less than DRAG_PX is a click, so
// a slightly shaky click still jumps.

import type { Bucket } from "../state/volume";
import { total } from "../state/volume";
import { LEVEL_NAMES } from "../util/format";
import { spanText } from "./histogram-axis";
import type { HistogramView } from "./histogram";

const DRAG_PX = 5;

export interface ChartActions {
  /** Show `from..to` (epoch ms, end exclusive). */
  zoom(from: number, to: number): void;
  /** Show the entries of this bucket's moment. */
  jump(bucket: Bucket): void;
}

function div(cls: string): HTMLDivElement {
  const d = document.createElement("div");
  d.className = cls;
  d.hidden = true;
  return d;
}

/** The tooltip's lines: the span, then each level present, then the total. */
function tipLines(b: Bucket): HTMLElement[] {
  const line = (cls: string, label: string, n?: number) => {
    const p = document.createElement("div");
    p.className = cls;
    p.textContent = n === undefined ? label : `${label} ${n}`;
    return p;
  };
  const levels = LEVEL_NAMES.flatMap((l, i) => (b.counts[i] ? [line("tip-level lv-" + l.toLowerCase(), l, b.counts[i])] : []));
  return [line("tip-span", spanText(b.start, b.end)), ...levels, line("tip-total", "total", total(b))];
}

export function bindPointer(view: HistogramView, on: ChartActions): void {
  const { root, svg } = view;
  const tip = div("volume-tip");
  tip.setAttribute("role", "tooltip");
  const sel = div("volume-sel");
  root.append(sel, tip);
  let press: { x: number; i: number; bucket: Bucket; dragging: boolean } | null = null;

  const showTip = (e: PointerEvent) => {
    const i = view.indexAt(e.clientX);
    const b = view.data[i];
    tip.hidden = !b || press?.dragging === true;
    if (tip.hidden) return;
    tip.replaceChildren(...tipLines(b));
    const box = root.getBoundingClientRect();
    const x = e.clientX - box.left;
    // Beside the pointer, on whichever side has room.
    tip.style.left = (x + 14 + tip.offsetWidth > box.width ? x - 14 - tip.offsetWidth : x + 14) + "px";
  };

  /** The bars between the press and `i`, both included, in time order. */
  const span = (i: number): [number, number] => (press && press.i <= i ? [press.i, i] : [i, press?.i ?? i]);

  const showSel = (i: number) => {
    const [a, b] = span(i);
    sel.hidden = false;
    sel.style.left = view.xOf(a) + "px";
    sel.style.width = view.xOf(b + 1) - view.xOf(a) + "px";
  };

  svg.addEventListener("pointerdown", (e) => {
    const i = view.indexAt(e.clientX);
    if (e.button !== 0 || i < 0) return;
    press = { x: e.clientX, i, bucket: view.data[i], dragging: false };
    svg.setPointerCapture(e.pointerId);
    e.preventDefault();
  });
  svg.addEventListener("pointermove", (e) => {
    if (press && !press.dragging && Math.abs(e.clientX - press.x) >= DRAG_PX) press.dragging = true;
    if (press?.dragging) showSel(view.indexAt(e.clientX, true));
    showTip(e);
  });
  svg.addEventListener("pointerup", (e) => {
    if (!press) return;
    const { bucket, dragging } = press;
    const end = view.data[view.indexAt(e.clientX, true)];
    press = null;
    sel.hidden = true;
    if (!dragging) on.jump(bucket);
    // By the buckets' times, not their places: a refresh may have re-cut the
    // range during the drag.
    else if (end) on.zoom(Math.min(bucket.start, end.start), Math.max(bucket.end, end.end));
  });
  svg.addEventListener("pointercancel", () => {
    press = null;
    sel.hidden = true;
  });
  svg.addEventListener("pointerleave", () => {
    tip.hidden = true;
  });
}
