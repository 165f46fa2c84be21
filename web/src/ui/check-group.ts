// A multi-select as checkboxes with an "all" box (data-*="*"): nothing
// selected means all. Checking "all" clears the others; checking any other
// unchecks "all"; unchecking the last one checks "all" again.

export class CheckGroup {
  private selected: string[] = [];

  /**
   * `attr` is the data attribute naming each box's value (`tag` or `level`).
   * `onChange` gets the selection, sorted, empty for "all".
   */
  constructor(
    private readonly container: HTMLElement,
    private readonly attr: "tag" | "level",
    private readonly onChange: (selected: string[]) => void,
  ) {
    container.addEventListener("change", (e) => {
      const box = e.target as HTMLInputElement;
      const value = box.dataset[this.attr];
      if (value === undefined) return;
      if (value === "*") {
        this.selected = [];
      } else {
        this.selected = this.boxes()
          .filter((b) => b.checked && b.dataset[this.attr] !== "*")
          .map((b) => b.dataset[this.attr] as string)
          .sort();
      }
      this.reflect();
      this.onChange(this.selected);
    });
  }

  private boxes(): HTMLInputElement[] {
    return [...this.container.querySelectorAll<HTMLInputElement>(`input[data-${this.attr}]`)];
  }

  /** Shows a selection without reporting it. */
  select(values: string[]): void {
    this.selected = [...values].sort();
    this.reflect();
  }

  /**
   * Replaces the choices (tags differ per service). A selected value missing
   * from `values` keeps its box, so a filter from a link is never lost.
   */
  setOptions(values: string[]): void {
    const all = [...new Set([...values, ...this.selected])].sort();
    const current = this.boxes()
      .map((b) => b.dataset[this.attr])
      .filter((v) => v !== "*");
    if (current.join("\n") === all.join("\n")) return;
    const allBox = this.container.querySelector(`input[data-${this.attr}="*"]`)?.closest("label");
    const labels = all.map((v) => {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.dataset[this.attr] = v;
      label.title = v;
      label.append(box, " " + v);
      return label;
    });
    this.container.replaceChildren(...(allBox ? [allBox] : []), ...labels);
    this.reflect();
  }

  private reflect(): void {
    for (const b of this.boxes()) {
      const v = b.dataset[this.attr] as string;
      b.checked = v === "*" ? this.selected.length === 0 : this.selected.includes(v);
    }
  }
}
