// The viewer's modes and how it moves between them:
//
//   live     a Tail stream appends to the list (batched per animation frame);
//   paused   the stream is closed; resuming opens Tail after the last id
//            received, so the server backfills what arrived meanwhile;
//   history  QueryLogs pages, older and newer, with the total count.
//
// Every change goes to the URL. Async results carry the generation they were
// started in and are dropped if the view changed since.

import { Code, ConnectError } from "@connectrpc/connect";
import type { LogRecord } from "./gen/taillight/v1/logs_pb";
import { approxBytes, around, context, countTotal, firstIdAt, gapPages, newerPage, olderPage } from "./api/history";
import { historyScope, liveScope, logFilter } from "./api/scope";
import { TailSession } from "./api/tail";
import { FrameBatcher } from "./list/batcher";
import { RowActions } from "./list/row-actions";
import { type Gap, RowStore, isGap } from "./list/store";
import { rowRenderer } from "./list/row-view";
import { VirtualList } from "./list/virtual-list";
import { prefs } from "./state/prefs";
import { writeUrl } from "./state/url";
import { defaultView, initialRows, type ViewState } from "./state/view";
import type { Filters, ViewPatch } from "./ui/filters";
import type { Toolbar } from "./ui/toolbar";
import { RateMeter } from "./util/rate";

/** Most records Tail `last` may ask for; a larger start is filled from history. */
const MAX_TAIL_LAST = 1000;
/** Records per QueryLogs page when filling from history (the server's limit). */
const FILL_PAGE = 1000;
/** Records loaded on each side of a permalinked entry. */
const AROUND = 50;

/** Hears what the list shows and receives: the volume chart follows it. */
export interface ListWatcher {
  /** The view, each time it is published. */
  follow(v: ViewState): void;
  /** Records the live stream delivered once past its backfill. */
  records(records: LogRecord[]): void;
  /** The live stream skipped records. */
  skipped(): void;
}

export class Controller {
  private view: ViewState;
  private readonly store = new RowStore();
  private readonly list: VirtualList;
  private readonly batch: FrameBatcher;
  readonly rowActions: RowActions;
  private tail: TailSession | null = null;
  private gen = 0;
  private readonly rate = new RateMeter();
  private streamLive = false;
  private newCount = 0;
  private hasOlder = true;
  private hasNewer = false;
  private total: bigint | null = null;
  private readonly gapLoads = new Set<AbortController>();

  constructor(
    view: ViewState,
    listEl: HTMLElement,
    private readonly toolbar: Toolbar,
    private readonly filters: Filters,
    private readonly watcher: ListWatcher,
  ) {
    this.view = view;
    this.list = new VirtualList(listEl, this.store, rowRenderer);
    this.list.onFollowChange = (follow) => {
      if (follow) this.newCount = 0;
      this.showBadge();
    };
    this.batch = new FrameBatcher(this.store, this.list, () => this.view.cap, (n) => {
      if (this.view.mode === "live" && !this.list.follow) {
        this.newCount += n;
        this.showBadge();
      }
    });
    this.rowActions = new RowActions(
      this.list,
      this.store,
      (gap) => void this.loadGap(gap),
      (r) => this.showContext(r),
    );
    window.setInterval(() => this.toolbar.setRate(this.view.mode === "live" ? this.rate.perSecond() : 0), 1000);
  }

  get current(): ViewState {
    return this.view;
  }

  rows(): number {
    return this.store.recordCount;
  }

  /** Records the tail reported skipped and not loaded yet: what the gap markers count. */
  missing(): number {
    let n = 0n;
    for (const it of this.store.items) if (isGap(it)) n += it.count;
    return Number(n);
  }

  lastId(): number {
    return Number(this.store.lastRecordId());
  }

  // ---- opening a view -------------------------------------------------

  /** Shows `v` from scratch: what a URL, a filter change or "live" leads to. */
  open(v: ViewState): void {
    this.reset(v);
    if (!v.service) {
      this.list.setEmptyText("No services yet. Push a log entry and it appears here.");
      this.list.render();
      return;
    }
    switch (v.mode) {
      case "live":
        this.startTail(undefined, initialRows(v));
        break;
      case "paused":
        void (v.entry !== undefined ? this.loadAround(v.entry) : this.loadPaused());
        break;
      case "history":
        void this.loadHistory();
        break;
    }
  }

  /** A filter control changed. */
  change(patch: ViewPatch): void {
    const next: ViewState = { ...this.view, ...patch, entry: undefined };
    if (patch.service !== undefined && patch.service !== this.view.service) {
      // Tags belong to a service.
      next.tags = patch.tags ?? [];
      prefs.setService(next.service);
    }
    // A time range is a history question: picking one shows its newest page.
    if ("range" in patch && next.range !== "all") next.mode = "history";
    // Live ignores the range ("now"): back to "all time" changes nothing shown.
    if (next.mode === "live" && Object.keys(patch).every((k) => ["range", "from", "to"].includes(k))) {
      this.view = next;
      this.publish();
      return;
    }
    if (next.mode === "history") {
      next.before = undefined;
      next.after = undefined;
    }
    this.open(next);
  }

  private reset(v: ViewState): void {
    this.gen++;
    this.stopTail();
    for (const a of this.gapLoads) a.abort();
    this.gapLoads.clear();
    this.batch.clear();
    this.store.clear();
    this.list.selected = this.list.expanded = this.list.highlighted = null;
    this.list.follow = true;
    this.newCount = 0;
    this.total = null;
    this.hasOlder = true;
    this.hasNewer = false;
    this.view = v;
    this.list.setEmptyText(v.mode === "live" ? "Waiting for entries…" : "Loading…");
    this.toolbar.notice(null);
    this.publish();
    this.list.render();
  }

  /** Reflects the view everywhere: URL, mode, controls, paging. */
  private publish(): void {
    const v = this.view;
    writeUrl(v);
    document.title = v.service ? `${v.service} · taillight` : "taillight";
    this.toolbar.setMode(v.mode);
    this.filters.show(v);
    const pagesNewer = v.mode === "history" || v.entry !== undefined;
    this.toolbar.setPaging(v.mode === "history" ? this.hasOlder : true, pagesNewer && this.hasNewer);
    this.toolbar.setTotal(v.mode === "history" ? this.total : null);
    this.showBadge();
    this.watcher.follow(v);
  }

  private showBadge(): void {
    this.toolbar.setBadge(this.view.mode === "live" && !this.list.follow ? this.newCount : null);
  }

  /** A catalogue request's outcome: it speaks for the connection while no stream does. */
  serverReached(ok: boolean, detail: string): void {
    if (!this.tail) this.toolbar.setConn(ok ? "connected" : "offline", detail);
  }

  // ---- live ------------------------------------------------------------

  /**
   * Opens the live stream: after `afterId` (resuming), or with the newest
   * `rows` records: up to MAX_TAIL_LAST from Tail itself, the rest loaded
   * from history above them once the stream is live.
   */
  private startTail(afterId: bigint | undefined, rows = 0): void {
    this.streamLive = false;
    this.rate.reset();
    let fill = afterId === undefined && rows > MAX_TAIL_LAST;
    const session: TailSession = new TailSession(
      logFilter(this.view),
      { afterId, last: Math.min(rows, MAX_TAIL_LAST) },
      {
        records: (rs) => {
          if (this.tail !== session) return;
          // The backfill is not new: the rate and the chart (whose fetch
          // counted it) hear only what arrives once the stream is live.
          if (this.streamLive) {
            this.rate.add(rs.length);
            this.watcher.records(rs);
          }
          this.batch.push(rs);
        },
        skipped: (s) => {
          if (this.tail !== session) return;
          // Records before the skip go in first, so the marker lands after them.
          this.batch.drain();
          this.store.addGap(s.firstId, s.lastId, s.count);
          this.batch.schedule();
          this.watcher.skipped();
        },
        live: (degraded) => {
          if (this.tail !== session) return;
          this.streamLive = true;
          if (fill) {
            fill = false;
            void this.fillFromHistory(rows);
          }
          this.toolbar.notice(degraded && `Live feed interrupted (${degraded}); it catches up when it returns.`);
          if (!degraded && !this.store.length) this.list.setEmptyText("No entries yet. New ones appear here live.");
        },
        conn: (state, detail) => {
          if (this.tail === session) this.toolbar.setConn(state, detail);
        },
      },
    );
    this.tail = session;
    session.run();
  }

  /**
   * Loads older records above the live ones, newest first, page by page,
   * until `rows` are held or history ends. The tail goes on meanwhile.
   */
  private async fillFromHistory(rows: number): Promise<void> {
    const gen = this.gen;
    const scope = liveScope(this.view);
    this.batch.drain();
    while (gen === this.gen && this.store.recordCount < rows) {
      const before = this.store.firstRecordId();
      if (before === undefined || before <= 1n) return;
      const size = Math.min(FILL_PAGE, rows - this.store.recordCount);
      let page;
      try {
        page = await olderPage(scope, before, size);
      } catch {
        return; // a partial fill is still a correct view; history has the rest
      }
      if (gen !== this.gen || !page.records.length) return;
      const anchor = this.list.anchor();
      this.store.add(page.records);
      this.store.trim(this.view.cap);
      this.list.restore(anchor);
      this.list.schedule();
      if (!page.more) return;
    }
  }

  private stopTail(): bigint | undefined {
    const t = this.tail;
    this.tail = null;
    t?.stop();
    return t?.resumeId;
  }

  pause(): void {
    if (this.view.mode !== "live" || !this.view.service) return;
    const resumeId = this.stopTail();
    this.batch.drain();
    this.store.trim(this.view.cap);
    const last = this.store.lastRecordId();
    this.view = { ...this.view, mode: "paused", last: resumeId ?? (last > 0n ? last : undefined) };
    this.publish();
    this.list.render();
  }

  /** Back to live after the last id received: the server sends what was missed. */
  resume(): void {
    if (this.view.mode !== "paused" || !this.view.service) return;
    const after = this.view.last;
    this.view = { ...this.view, mode: "live", last: undefined, entry: undefined };
    this.list.highlighted = null;
    this.toolbar.notice(null);
    this.publish();
    this.list.scrollToBottom();
    this.startTail(after);
  }

  pauseOrResume(): void {
    if (this.view.mode === "live") this.pause();
    else this.goLive();
  }

  goLive(): void {
    if (this.view.mode === "paused") return this.resume();
    if (this.view.mode === "history") {
      this.open({ ...this.view, mode: "live", before: undefined, after: undefined, entry: undefined });
    }
  }

  /** The "N new" badge: back to the newest row, following again. */
  jumpToLive(): void {
    if (this.view.mode !== "live") return this.goLive();
    this.newCount = 0;
    this.list.scrollToBottom();
    this.showBadge();
  }

  // ---- paused snapshots and history -------------------------------------

  /** Runs a query for the current generation; reports failures. */
  private async query<T>(what: string, work: () => Promise<T>): Promise<T | undefined> {
    const gen = this.gen;
    try {
      const r = await work();
      if (gen !== this.gen) return undefined;
      if (!this.tail) this.toolbar.setConn("connected");
      return r;
    } catch (e) {
      if (gen !== this.gen) return undefined;
      const err = ConnectError.from(e);
      if ([Code.Unavailable, Code.Unknown, Code.DeadlineExceeded].includes(err.code) && !this.tail) {
        this.toolbar.setConn("offline", err.rawMessage);
      }
      this.toolbar.notice(`Could not load ${what}: ${err.rawMessage}`);
      this.list.setEmptyText("");
      this.list.render();
      return undefined;
    }
  }

  private show(records: LogRecord[], at: "top" | "bottom"): void {
    this.store.clear();
    this.store.add(records);
    if (at === "top") this.list.scrollToTop();
    else this.list.scrollToBottom();
  }

  /** Paused from a URL or after a filter change: the newest entries up to `last`. */
  private async loadPaused(): Promise<void> {
    const last = this.view.last;
    const page = await this.query("entries", () =>
      olderPage(liveScope(this.view), last !== undefined ? last + 1n : undefined, Math.min(initialRows(this.view), FILL_PAGE)),
    );
    if (!page) return;
    this.show(page.records, "bottom");
    this.list.setEmptyText("No matching entries.");
    if (last === undefined && page.records.length) {
      this.view = { ...this.view, last: page.records[page.records.length - 1].id };
      this.publish();
    }
  }

  /** "Show context": the entry among its service's lines around it, filters cleared. */
  showContext(r: LogRecord): void {
    if (this.view.service !== r.service) prefs.setService(r.service);
    this.open({ ...defaultView(), service: r.service, mode: "paused", entry: r.id, cap: this.view.cap });
  }

  /** A permalink: the entry and its neighbours, highlighted, expanded, paused. */
  private async loadAround(id: bigint): Promise<void> {
    const v = this.view;
    const unfiltered = !v.tags.length && !v.levels.length && !v.text;
    const res = await this.query("the entry", () => (unfiltered ? context(id, AROUND) : around(liveScope(v), id, AROUND)));
    if (!res) return;
    const { records, found } = res;
    this.hasNewer = res.newer;
    this.view = { ...this.view, last: records.length ? records[records.length - 1].id : this.view.last };
    this.publish();
    this.list.setEmptyText("No matching entries.");
    this.store.clear();
    this.store.add(records);
    if (found) {
      this.list.selected = this.list.expanded = this.list.highlighted = id;
      this.list.follow = false;
      this.list.render();
      this.list.reveal(this.store.indexOfId(id), "center");
    } else {
      this.toolbar.notice(`Entry ${id} was not found for service ${this.view.service}.`);
      this.list.scrollToBottom();
    }
  }

  /** The history page the view names: newest, older than `before`, or newer than `after`. */
  private async loadHistory(): Promise<void> {
    const v = this.view;
    const scope = historyScope(v);
    const res = await this.query("history", () =>
      Promise.all([
        v.after !== undefined ? newerPage(scope, v.after) : olderPage(scope, v.before),
        countTotal(scope),
      ]),
    );
    if (!res) return;
    const [page, total] = res;
    this.total = total;
    if (v.after !== undefined) {
      this.hasNewer = page.more;
      this.hasOlder = true;
    } else {
      this.hasOlder = page.more;
      this.hasNewer = v.before !== undefined;
    }
    this.list.setEmptyText("No entries match.");
    this.show(page.records, v.after !== undefined ? "top" : "bottom");
    this.publish();
  }

  /**
   * The page before the oldest row shown. From live or paused this enters
   * history, but only once there is something older to show: with nothing
   * older the view (and the stream) stays as it is.
   */
  async older(): Promise<void> {
    if ((this.view.mode === "history" && !this.hasOlder) || !this.view.service) return;
    const before = this.store.firstRecordId();
    const scope = historyScope({ ...this.view, mode: "history" });
    const res = await this.query("older entries", () => Promise.all([olderPage(scope, before), countTotal(scope)]));
    if (!res) return;
    const [page, total] = res;
    if (!page.records.length && before !== undefined) {
      if (this.view.mode === "history") {
        this.hasOlder = false;
        this.total = total;
        this.publish();
      }
      this.toolbar.notice("No older entries.");
      return;
    }
    if (this.view.mode !== "history") {
      this.stopTail();
      this.batch.clear();
    }
    this.gen++;
    this.view = { ...this.view, mode: "history", before, after: undefined, last: undefined, entry: undefined };
    this.total = total;
    this.hasOlder = page.more;
    this.hasNewer = before !== undefined;
    this.resetRowState();
    this.show(page.records, "bottom");
    this.publish();
  }

  /** The page after the newest row shown. */
  async newer(): Promise<void> {
    // From an entry's context, Newer pages on as history does.
    if ((this.view.mode !== "history" && this.view.entry === undefined) || !this.hasNewer) return;
    const after = this.store.lastRecordId();
    this.gen++;
    const scope = historyScope(this.view);
    const res = await this.query("newer entries", () => Promise.all([newerPage(scope, after), countTotal(scope)]));
    if (!res) return;
    const [page, total] = res;
    this.total = total;
    if (!page.records.length) {
      this.hasNewer = false;
      this.toolbar.notice("No newer entries: press Live to follow new ones.");
      this.publish();
      return;
    }
    this.view = { ...this.view, mode: "history", after, before: undefined, last: undefined, entry: undefined };
    this.hasNewer = page.more;
    this.hasOlder = true;
    this.resetRowState();
    this.show(page.records, "top");
    this.publish();
  }

  /**
   * The chart's click on a bar: a history page that starts with the first
   * entry at or after `time`, keeping the filter and time range. The list
   * pages by id, not by time (`after` in the URL), so the moment becomes the
   * id just before that entry; Older and Newer then page on from there, and
   * a reload shows the same page. Nothing at or after it: the newest page.
   */
  async jumpTo(time: number): Promise<void> {
    if (!this.view.service) return;
    const v: ViewState = { ...this.view, mode: "history", last: undefined, entry: undefined };
    const id = await this.query("entries at that time", () => firstIdAt(historyScope(v), time));
    if (id === undefined) return;
    this.open({ ...v, before: undefined, after: id !== null ? id - 1n : undefined });
  }

  private resetRowState(): void {
    this.list.selected = this.list.expanded = this.list.highlighted = null;
    this.toolbar.notice(null);
  }

  // ---- gaps ----------------------------------------------------------------

  /** The largest of the records just before a gap: likely the size of the missing ones. */
  private neighbourBytes(gap: Gap): number {
    const items = this.store.items;
    const at = this.store.indexAtOrAfter(gap);
    let max = 0;
    for (let i = Math.max(0, at - 20); i < at; i++) {
      const it = items[i];
      if (!isGap(it)) max = Math.max(max, approxBytes(it));
    }
    return max;
  }

  /** Loads what the tail skipped from history and splices it in, page by page. */
  private async loadGap(gap: Gap): Promise<void> {
    if (gap.loading) return;
    gap.loading = true;
    this.list.render();
    const abort = new AbortController();
    this.gapLoads.add(abort);
    const gen = this.gen;
    try {
      const pages = gapPages(liveScope(this.view), gap.first, gap.last, abort.signal, this.neighbourBytes(gap));
      for await (const page of pages) {
        if (gen !== this.gen || !this.store.has(gap)) break;
        const anchor = this.list.anchor(gap);
        this.store.fillGap(gap, page.records, page.done);
        this.store.trim(this.view.cap);
        this.list.restore(anchor);
        this.list.render();
      }
    } catch (e) {
      if (gen === this.gen) this.toolbar.notice(`Could not load the skipped entries: ${ConnectError.from(e).rawMessage}`);
    } finally {
      this.gapLoads.delete(abort);
      gap.loading = false;
      if (gen === this.gen) this.list.render();
    }
  }
}
