// Batched rendering: records from the stream are collected as they arrive
// and go into the store and the DOM once per animation frame, however many
// came in meanwhile (2,000/s is ~35 per frame, one layout for all of them).

import type { LogRecord } from "../gen/taillight/v1/logs_pb";
import type { RowStore } from "./store";
import type { VirtualList } from "./virtual-list";

/** A hidden tab gets no animation frames; this timer still flushes it. */
const HIDDEN_FLUSH_MS = 500;

export class FrameBatcher {
  private pending: LogRecord[] = [];
  private scheduled = false;

  /**
   * `cap()` is the most records to hold; `added(n)` hears of every n records
   * moved into the store (for the "N new" count).
   */
  constructor(
    private readonly store: RowStore,
    private readonly list: VirtualList,
    private readonly cap: () => number,
    private readonly added: (n: number) => void,
  ) {}

  push(records: LogRecord[]): void {
    for (const r of records) this.pending.push(r);
    // Timers are throttled in a hidden tab: never let more than a cap's
    // worth wait for one.
    if (this.pending.length >= this.cap()) {
      this.drain();
      this.store.trim(this.cap());
    }
    this.schedule();
  }

  /** Forgets what has not been shown (the view is being replaced). */
  clear(): void {
    this.pending = [];
  }

  /** Moves waiting records into the store now, without rendering. */
  drain(): void {
    let rs = this.pending;
    if (!rs.length) return;
    this.pending = [];
    // Beyond the cap only the newest matter.
    if (rs.length > this.cap()) rs = rs.slice(rs.length - this.cap());
    this.store.add(rs);
    this.added(rs.length);
  }

  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(this.flush);
    window.setTimeout(this.flush, HIDDEN_FLUSH_MS);
  }

  private readonly flush = (): void => {
    if (!this.scheduled) return;
    this.scheduled = false;
    // Rows dropped or inserted above the viewport must not move what the
    // reader is looking at (unless following the bottom).
    const anchor = this.list.anchor();
    this.drain();
    this.store.trim(this.cap());
    this.list.restore(anchor);
    this.list.render();
  };
}
