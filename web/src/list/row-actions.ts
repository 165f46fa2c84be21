// What the reader does with rows: click to expand (one at a time), select
// with the arrow keys, copy an entry as JSON, show its context, load a
// skipped gap.

import type { LogRecord } from "../gen/taillight/v1/logs_pb";
import { copyText } from "../util/clipboard";
import { recordJson } from "../util/format";
import { type Gap, type RowStore, isGap } from "./store";
import type { VirtualList } from "./virtual-list";

export class RowActions {
  constructor(
    private readonly list: VirtualList,
    private readonly store: RowStore,
    private readonly loadGap: (gap: Gap) => void,
    private readonly showContext: (r: LogRecord) => void,
  ) {
    list.el.addEventListener("click", (e) => this.onClick(e));
  }

  private onClick(e: MouseEvent): void {
    const t = e.target as HTMLElement;
    const gapRow = t.closest(".gap-marker");
    if (gapRow) {
      const it = this.list.itemOf(gapRow);
      if (t.closest("button.load-gap") && it && isGap(it)) this.loadGap(it);
      return;
    }
    const row = t.closest<HTMLElement>(".row");
    if (!row?.dataset.id) return;
    const id = BigInt(row.dataset.id);
    const copy = t.closest<HTMLButtonElement>("button.copy");
    if (copy) {
      void this.copy(id, copy);
      return;
    }
    if (t.closest("button.context")) {
      const it = this.store.items[this.store.indexOfId(id)];
      if (it && !isGap(it)) this.showContext(it);
      return;
    }
    // Inside the details, clicks select text or follow the permalink.
    if (t.closest(".details")) return;
    // Releasing a text selection is not a click on the row.
    if (getSelection()?.toString()) return;
    this.list.el.focus({ preventScroll: true });
    this.toggle(id);
  }

  /** Expands (or collapses) a row and selects it. */
  toggle(id: bigint): void {
    this.list.selected = id;
    this.list.expanded = this.list.expanded === id ? null : id;
    this.list.render();
    const i = this.store.indexOfId(id);
    if (i >= 0) this.list.reveal(i, "nearest");
  }

  toggleSelected(): void {
    const id = this.list.selected;
    if (id !== null && this.store.indexOfId(id) >= 0) this.toggle(id);
  }

  /** Arrow keys: the next record up or down, skipping gap markers. */
  moveSelection(delta: number): void {
    const items = this.store.items;
    if (!items.length) return;
    let i = this.list.selected === null ? -1 : this.store.indexOfId(this.list.selected);
    // Nothing selected: down starts at the top of the view, up at the newest.
    if (i < 0) i = delta > 0 ? this.list.topIndex() - 1 : items.length;
    do i += delta;
    while (i >= 0 && i < items.length && isGap(items[i]));
    const it = items[i];
    if (!it || isGap(it)) return;
    this.list.selected = it.id;
    this.list.reveal(i, "nearest");
  }

  private async copy(id: bigint, button: HTMLButtonElement): Promise<void> {
    const it = this.store.items[this.store.indexOfId(id)];
    if (!it || isGap(it)) return;
    const ok = await copyText(recordJson(it));
    button.textContent = ok ? "Copied" : "Copy failed";
    window.setTimeout(() => (button.textContent = "Copy JSON"), 1500);
  }
}
