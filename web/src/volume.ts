// The volume chart above the list. It counts what the list shows: the same
// filter and, in history, the same time range (api/scope.ts volumeScope),
// fetched again whenever those or the mode change. While live it keeps up
// two ways: each record the stream delivers is counted into its bucket at
// once (constant work per record), and a fetch at most every REFRESH_MS
// replaces those estimates with the server's counts and re-cuts the range,
// so a burst of any size costs one request per interval, never one per entry.
// A failed fetch leaves the list alone: the chart says so in its own area.

import { Code, ConnectError } from "@connectrpc/connect";
import { fetchHistogram } from "./api/histogram";
import { volumeScope } from "./api/scope";
import type { LogRecord } from "./gen/taillight/v1/logs_pb";
import { Volume } from "./state/volume";
import type { ViewState } from "./state/view";
import type { HistogramView } from "./ui/histogram";
import { tsMillis } from "./util/format";

/** Least time between two fetches made to keep up with the live stream. */
const REFRESH_MS = 4000;
/** Least time between two redraws for live records: a few a second look live. */
const DRAW_MS = 250;
/** Longest wait before trying a failed fetch again (the wait doubles from REFRESH_MS). */
const MAX_RETRY_MS = 60_000;

/** Refusals a retry cannot change (a key is asked for, and the page reloads with it). */
const FINAL = [Code.Unauthenticated, Code.PermissionDenied, Code.InvalidArgument, Code.Unimplemented];

/** What the chart counts: it is fetched afresh when this changes. */
function scopeKey(v: ViewState): string {
  const range = v.mode === "history" ? [v.range, v.from, v.to] : null;
  return JSON.stringify([v.service, v.levels, v.tags, v.text, v.mode, range]);
}

export class VolumeChart {
  private key = "";
  private view: ViewState | null = null;
  private data = new Volume();
  private gen = 0;
  private abort: AbortController | null = null;
  private fetchedAt = 0;
  private failures = 0;
  private refreshTimer: number | undefined;
  private drawTimer: number | undefined;

  constructor(private readonly ui: HistogramView) {
    ui.show([], "empty");
  }

  /** The view was published: fetches when what the chart counts changed. */
  follow(v: ViewState): void {
    const key = scopeKey(v);
    if (key === this.key) return;
    this.key = key;
    this.view = v;
    this.failures = 0;
    this.abort?.abort();
    this.abort = null;
    window.clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    if (!v.service) {
      this.gen++;
      this.data = new Volume();
      this.ui.show([], "empty");
      return;
    }
    // The old bars stay, dimmed, until the new ones come: no flicker.
    this.ui.setState("loading");
    void this.fetch();
  }

  /** Records the live stream delivered after its backfill (which the fetch counted). */
  records(rs: LogRecord[]): void {
    for (const r of rs) this.data.add(tsMillis(r.time), r.level);
    this.drawTimer ??= window.setTimeout(() => {
      this.drawTimer = undefined;
      this.draw();
    }, DRAW_MS);
    this.refreshSoon();
  }

  /** The stream skipped records: only a fetch counts them. */
  skipped(): void {
    this.refreshSoon();
  }

  /**
   * A fetch REFRESH_MS after the last one began (longer after failures),
   * unless one is due already.
   */
  private refreshSoon(): void {
    if (this.refreshTimer !== undefined) return;
    const interval = Math.min(MAX_RETRY_MS, REFRESH_MS * 2 ** this.failures);
    const wait = Math.max(0, this.fetchedAt + interval - Date.now());
    this.refreshTimer = window.setTimeout(() => {
      this.refreshTimer = undefined;
      // One at a time: a slow answer delays the next rather than piling up.
      if (this.abort) this.refreshSoon();
      else void this.fetch();
    }, wait);
  }

  private async fetch(): Promise<void> {
    const v = this.view;
    if (!v) return;
    const gen = ++this.gen;
    const abort = (this.abort = new AbortController());
    this.fetchedAt = Date.now();
    try {
      const buckets = await fetchHistogram(volumeScope(v), abort.signal);
      if (gen !== this.gen) return;
      this.failures = 0;
      this.data = new Volume(buckets);
      this.draw();
    } catch (e) {
      if (gen !== this.gen) return;
      const err = ConnectError.from(e);
      this.failures++;
      this.ui.setState("error", `Volume unavailable: ${err.rawMessage}`);
      // Tried again by itself, not only when live records come.
      if (!FINAL.includes(err.code)) this.refreshSoon();
    } finally {
      if (this.abort === abort) this.abort = null;
    }
  }

  private draw(): void {
    window.clearTimeout(this.drawTimer);
    this.drawTimer = undefined;
    const none = this.data.total() === 0;
    this.ui.show(this.data.buckets, none ? "empty" : "ready", none ? "No entries to chart." : null);
  }
}
