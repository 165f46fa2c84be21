// The volume chart's drawing: one bar per bucket, stacked by level in the
// colours the list uses, a time axis below and the tallest bar's count on
// the left. SVG in pixel units, redrawn when the data or the width changes.
// Every bar carries its numbers (data-start, data-end, data-total, and a
// data-count on each level's segment), which the tooltip and the end-to-end
// tests read.

import type { Bucket } from "../state/volume";
import { total } from "../state/volume";
import { LEVEL_NAMES } from "../util/format";
import { ticks } from "./histogram-axis";

const NS = "http://www.w3.org/2000/svg";
/** Room above the bars, for the top of the tallest one to show. */
const TOP = 8;
/** Room below the bars, for the time labels. */
const AXIS = 16;
/** Room left of the bars, for the count scale. */
const LEFT = 44;
const RIGHT = 10;

export type ChartState = "empty" | "loading" | "ready" | "error";

function svgEl<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

function text(x: number, y: number, s: string, cls: string, anchor = "middle"): SVGTextElement {
  const t = svgEl("text", { x, y, class: cls, "text-anchor": anchor });
  t.textContent = s;
  return t;
}

/** 1234 -> "1.2k": the scale label stays narrow. */
function compact(n: number): string {
  if (n < 1000) return String(n);
  const [d, u] = n < 1e6 ? [1e3, "k"] : n < 1e9 ? [1e6, "M"] : [1e9, "G"];
  const v = n / d;
  return (v < 10 ? v.toFixed(1).replace(/\.0$/, "") : Math.round(v).toString()) + u;
}

export class HistogramView {
  readonly svg: SVGSVGElement;
  private readonly note: HTMLElement;
  private buckets: Bucket[] = [];
  private width = 0;

  constructor(readonly root: HTMLElement) {
    this.svg = svgEl("svg", { "aria-hidden": "true" });
    this.note = document.createElement("p");
    this.note.className = "volume-note";
    root.append(this.svg, this.note);
    new ResizeObserver(() => {
      if (root.clientWidth !== this.width) this.draw();
    }).observe(root);
  }

  get data(): readonly Bucket[] {
    return this.buckets;
  }

  /** Draws `buckets`; `note` is shown over them (why there are none, say). */
  show(buckets: Bucket[], state: ChartState, note: string | null = null): void {
    this.buckets = buckets;
    this.setState(state, note);
    this.draw();
  }

  /** A new state and note, the bars kept (a refresh that failed, say). */
  setState(state: ChartState, note: string | null = null): void {
    this.root.dataset.state = state;
    this.note.hidden = !note;
    this.note.textContent = note ?? "";
  }

  /** The bar under client x: -1 off the bars, or the nearest with `clamp`. */
  indexAt(clientX: number, clamp = false): number {
    const n = this.buckets.length;
    if (!n) return -1;
    const x = clientX - this.svg.getBoundingClientRect().left - LEFT;
    const i = Math.floor(x / this.barWidth());
    if (clamp) return Math.min(n - 1, Math.max(0, i));
    return i >= 0 && i < n ? i : -1;
  }

  /** Where bar `i` starts, in px from the chart's left edge. */
  xOf(i: number): number {
    return LEFT + i * this.barWidth();
  }

  barWidth(): number {
    return (this.width - LEFT - RIGHT) / Math.max(1, this.buckets.length);
  }

  private draw(): void {
    this.width = this.root.clientWidth;
    const height = this.root.clientHeight;
    const bs = this.buckets;
    let sum = 0;
    let max = 0;
    for (const b of bs) {
      const t = total(b);
      sum += t;
      max = Math.max(max, t);
    }
    this.root.dataset.total = String(sum);
    this.svg.setAttribute("viewBox", `0 0 ${this.width} ${height}`);
    const base = height - AXIS;
    const frag = document.createDocumentFragment();
    frag.append(svgEl("line", { x1: LEFT, x2: this.width - RIGHT, y1: base + 0.5, y2: base + 0.5, class: "volume-base" }));
    if (bs.length && this.width > LEFT + RIGHT) {
      // A 1 px floor keeps a lone error visible beside a tall bar; the
      // scale leaves room for those floors.
      const scale = max ? (base - TOP - LEVEL_NAMES.length) / max : 0;
      bs.forEach((b, i) => frag.append(this.bar(b, i, base, scale)));
      frag.append(...this.axis(base), text(LEFT - 6, TOP + 8, compact(max), "volume-scale", "end"));
      frag.append(text(LEFT - 6, base, "0", "volume-scale", "end"));
    }
    this.svg.replaceChildren(frag);
  }

  private bar(b: Bucket, i: number, base: number, scale: number): SVGGElement {
    const w = this.barWidth();
    const g = svgEl("g", {
      class: "bucket",
      "data-start": new Date(b.start).toISOString(),
      "data-end": new Date(b.end).toISOString(),
      "data-total": total(b),
    });
    // The whole column, under the segments: the hover highlight, and where
    // an empty bucket is.
    g.append(svgEl("rect", { class: "slot", x: this.xOf(i), y: TOP, width: w, height: base - TOP }));
    const gap = w > 4 ? 1 : 0;
    let y = base;
    b.counts.forEach((n, l) => {
      if (!n) return;
      const h = Math.max(1, n * scale);
      y -= h;
      const level = LEVEL_NAMES[l];
      g.append(svgEl("rect", {
        class: "seg lv-" + level.toLowerCase(),
        "data-level": level,
        "data-count": n,
        x: this.xOf(i) + gap / 2,
        y,
        width: Math.max(1, w - gap),
        height: h,
      }));
    });
    return g;
  }

  private axis(base: number): SVGElement[] {
    const bs = this.buckets;
    const start = bs[0].start;
    const end = bs[bs.length - 1].end;
    const px = this.width - LEFT - RIGHT;
    const out: SVGElement[] = [];
    for (const tk of ticks(start, end, px)) {
      const x = LEFT + ((tk.t - start) / (end - start)) * px;
      out.push(svgEl("line", { x1: x, x2: x, y1: base, y2: base + 3, class: "volume-tick" }));
      // Labels at the edges are kept inside the chart.
      const anchor = x < LEFT + 30 ? "start" : x > this.width - RIGHT - 30 ? "end" : "middle";
      out.push(text(x, base + AXIS - 3, tk.label, "volume-label", anchor));
    }
    return out;
  }
}
