// A virtualised list: only the rows in (and just around) the viewport exist
// in the DOM, so 100,000 held rows cost no more to display than 50.
//
// Geometry: every row is --row-h tall except the one expanded row, whose
// extra height is measured when it is rendered. The scroll container holds a
// sizer as tall as all rows; the rendered window sits at the top of its first
// row, its rows in normal flow and in id order (oldest first), so the DOM
// order always matches what is shown.

import { type Item, type RowStore, isGap } from "./store";

export interface RowFlags {
  selected: boolean;
  expanded: boolean;
  highlighted: boolean;
}

export interface RowRenderer {
  create(it: Item): HTMLElement;
  /** Brings an element up to date with its item's flags (and a gap's progress). */
  sync(el: HTMLElement, it: Item, flags: RowFlags): void;
}

/** Rows rendered beyond each edge of the viewport, for smooth scrolling. */
const OVERSCAN = 10;

interface Anchor {
  item: Item;
  /** How far the viewport top was below the item's top. */
  delta: number;
}

export class VirtualList {
  private readonly sizer: HTMLElement;
  private readonly win: HTMLElement;
  private readonly emptyEl: HTMLElement;
  private readonly rowH: number;
  private rendered = new Map<Item, HTMLElement>();
  /** The item each rendered element shows, for clicks on it. */
  private readonly itemOfNode = new WeakMap<Element, Item>();
  private extra = 0;
  private frame = 0;
  /** scrollTop of the last layout. */
  private renderedTop = -1;

  /** Ids of the selected, expanded and highlighted (permalink) records. */
  selected: bigint | null = null;
  expanded: bigint | null = null;
  highlighted: bigint | null = null;
  /** Stuck to the bottom: new rows scroll into view. */
  follow = true;
  onFollowChange: (follow: boolean) => void = () => {};

  constructor(
    readonly el: HTMLElement,
    private readonly store: RowStore,
    private readonly renderer: RowRenderer,
  ) {
    this.rowH = parseFloat(getComputedStyle(el).getPropertyValue("--row-h")) || 22;
    this.sizer = document.createElement("div");
    this.sizer.className = "sizer";
    this.win = document.createElement("div");
    this.win.className = "window";
    this.emptyEl = document.createElement("div");
    this.emptyEl.className = "empty";
    el.append(this.sizer, this.win, this.emptyEl);

    el.addEventListener("scroll", () => {
      this.setFollow(this.atBottom());
      // Our own scrolls (following the bottom) were rendered already.
      if (el.scrollTop !== this.renderedTop) this.schedule();
    }, { passive: true });
    // Scrolling up by wheel stops following at once, before the next batch
    // of rows could pull the view back down.
    el.addEventListener("wheel", (e) => {
      if (e.deltaY < 0) this.setFollow(false);
    }, { passive: true });
    new ResizeObserver(() => this.render()).observe(el);
  }

  /** The item shown by a rendered row element. */
  itemOf(node: Element): Item | undefined {
    return this.itemOfNode.get(node);
  }

  /** Index of the item at the top of the viewport. */
  topIndex(): number {
    return this.indexAt(this.el.scrollTop, this.expandedIndex());
  }

  /** What to say when there is nothing to show. */
  setEmptyText(text: string): void {
    this.emptyEl.textContent = text;
  }

  private setFollow(f: boolean): void {
    if (f !== this.follow) {
      this.follow = f;
      this.onFollowChange(f);
    }
  }

  private atBottom(): boolean {
    const el = this.el;
    return el.scrollTop + el.clientHeight >= el.scrollHeight - this.rowH / 2;
  }

  /** Renders on the next animation frame (coalesced). */
  schedule(): void {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render());
  }

  private expandedIndex(): number {
    return this.expanded === null ? -1 : this.store.indexOfId(this.expanded);
  }

  /** Top of item `i` in the scroll content. */
  private top(i: number, exp: number): number {
    return i * this.rowH + (exp >= 0 && i > exp ? this.extra : 0);
  }

  /** Index of the item at content offset `y`. */
  private indexAt(y: number, exp: number): number {
    const h = this.rowH;
    let i: number;
    if (exp >= 0 && y >= (exp + 1) * h) {
      i = y < (exp + 1) * h + this.extra ? exp : Math.floor((y - this.extra) / h);
    } else {
      i = Math.floor(y / h);
    }
    return Math.max(0, Math.min(this.store.length - 1, i));
  }

  private totalHeight(exp: number): number {
    return this.store.length * this.rowH + (exp >= 0 ? this.extra : 0);
  }

  /**
   * What to keep in place across changes above it: `item` if it is on
   * screen (the gap marker being filled, under the reader's pointer), else
   * the item at the top of the viewport.
   */
  anchor(item?: Item): Anchor | null {
    if (!this.store.length) return null;
    const exp = this.expandedIndex();
    const el = this.el;
    if (item) {
      const i = this.store.indexAtOrAfter(item);
      const top = this.top(i, exp);
      if (this.store.items[i] === item && top >= el.scrollTop && top < el.scrollTop + el.clientHeight) {
        return { item, delta: el.scrollTop - top };
      }
    }
    const i = this.indexAt(el.scrollTop, exp);
    return { item: this.store.items[i], delta: el.scrollTop - this.top(i, exp) };
  }

  /**
   * Puts the anchored item back where it was on screen; if it is gone, the
   * item that took its place goes there.
   */
  restore(a: Anchor | null): void {
    if (!a || this.follow) return;
    const i = this.store.indexAtOrAfter(a.item);
    const exp = this.expandedIndex();
    this.sizer.style.height = this.totalHeight(exp) + "px";
    this.el.scrollTop = this.top(i, exp) + a.delta;
  }

  scrollToBottom(): void {
    this.setFollow(true);
    this.render();
  }

  scrollToTop(): void {
    this.setFollow(false);
    this.sizer.style.height = this.totalHeight(this.expandedIndex()) + "px";
    this.el.scrollTop = 0;
    this.render();
  }

  /** Scrolls item `i` into view: centred, or just enough to show it. */
  reveal(i: number, how: "center" | "nearest"): void {
    const exp = this.expandedIndex();
    this.sizer.style.height = this.totalHeight(exp) + "px";
    const top = this.top(i, exp);
    const h = i === exp ? this.rowH + this.extra : this.rowH;
    const el = this.el;
    if (how === "center") {
      el.scrollTop = top - Math.max(0, (el.clientHeight - h) / 2);
    } else if (top < el.scrollTop) {
      el.scrollTop = top;
    } else if (top + h > el.scrollTop + el.clientHeight) {
      el.scrollTop = top + h - el.clientHeight;
    }
    this.setFollow(this.atBottom());
    this.render();
  }

  /** Lays out and reconciles the rendered window with the store, now. */
  render(): void {
    if (this.frame) {
      cancelAnimationFrame(this.frame);
      this.frame = 0;
    }
    let exp = this.expandedIndex();
    if (exp < 0) this.extra = 0;
    this.sizer.style.height = this.totalHeight(exp) + "px";
    const el = this.el;
    if (this.follow) el.scrollTop = el.scrollHeight;
    this.emptyEl.hidden = this.store.length > 0;

    this.layout(exp);
    // The expanded row's real height is known only once it is in the DOM.
    if (exp >= 0) {
      const node = this.rendered.get(this.store.items[exp]);
      if (node) {
        const extra = Math.max(0, node.offsetHeight - this.rowH);
        if (extra !== this.extra) {
          this.extra = extra;
          exp = this.expandedIndex();
          this.sizer.style.height = this.totalHeight(exp) + "px";
          if (this.follow) el.scrollTop = el.scrollHeight;
          this.layout(exp);
        }
      }
    }
  }

  private layout(exp: number): void {
    const items = this.store.items;
    const n = items.length;
    const el = this.el;
    let first = 0;
    let last = -1;
    if (n > 0) {
      first = Math.max(0, this.indexAt(el.scrollTop, exp) - OVERSCAN);
      last = Math.min(n - 1, this.indexAt(el.scrollTop + el.clientHeight, exp) + OVERSCAN);
    }
    this.renderedTop = el.scrollTop;
    this.win.style.transform = `translateY(${this.top(first, exp)}px)`;

    const want = new Set<Item>();
    for (let i = first; i <= last; i++) want.add(items[i]);
    // Drop rows that left the window first, so the ones that stay are
    // already in order and need no move.
    for (const [it, node] of this.rendered) {
      if (!want.has(it)) {
        node.remove();
        this.rendered.delete(it);
      }
    }
    let cursor = this.win.firstChild;
    for (let i = first; i <= last; i++) {
      const it = items[i];
      let node = this.rendered.get(it);
      if (!node) {
        node = this.renderer.create(it);
        this.rendered.set(it, node);
        this.itemOfNode.set(node, it);
      }
      const id = isGap(it) ? null : it.id;
      this.renderer.sync(node, it, {
        selected: id !== null && id === this.selected,
        expanded: id !== null && id === this.expanded,
        highlighted: id !== null && id === this.highlighted,
      });
      if (node === cursor) cursor = cursor.nextSibling;
      else this.win.insertBefore(node, cursor);
    }
  }
}
