// The sidebar and search box: service, levels, tags, text and time range.
// Each control reports a change of the view; `show` reflects a view back.

import type { RangeKey, ViewState } from "../state/view";
import type { LevelName } from "../util/format";
import { CheckGroup } from "./check-group";

const SEARCH_DEBOUNCE_MS = 300;

export type ViewPatch = Partial<ViewState>;

function $<T extends HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

/** `datetime-local` speaks local wall time without a zone. */
function toLocalInput(ms: number | undefined): string {
  if (ms === undefined) return "";
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 19);
}

function fromLocalInput(s: string): number | undefined {
  if (!s) return undefined;
  const t = new Date(s).getTime(); // no zone: parsed as local time
  return Number.isNaN(t) ? undefined : t;
}

export class Filters {
  private readonly service = $<HTMLSelectElement>("service-select");
  private readonly search = $<HTMLInputElement>("search");
  private readonly range = $<HTMLSelectElement>("range");
  private readonly start = $<HTMLInputElement>("range-start");
  private readonly end = $<HTMLInputElement>("range-end");
  private readonly custom = $<HTMLElement>("custom-range");
  private readonly tags: CheckGroup;
  private readonly levels: CheckGroup;
  private searchTimer: number | undefined;
  private lastText = "";

  constructor(private readonly onChange: (patch: ViewPatch) => void) {
    this.tags = new CheckGroup($("tag-filter"), "tag", (tags) => onChange({ tags }));
    this.levels = new CheckGroup($("level-filter"), "level", (levels) =>
      onChange({ levels: levels as LevelName[] }),
    );
    this.service.addEventListener("change", () => onChange({ service: this.service.value }));

    this.search.addEventListener("input", () => {
      window.clearTimeout(this.searchTimer);
      this.searchTimer = window.setTimeout(() => this.applySearch(), SEARCH_DEBOUNCE_MS);
    });
    this.search.addEventListener("keydown", (e) => {
      if (e.key === "Enter") this.applySearch();
      if (e.key === "Escape") this.search.blur();
    });

    this.range.addEventListener("change", () => {
      const range = this.range.value as RangeKey;
      this.custom.hidden = range !== "custom";
      if (range === "custom") {
        // Start from the last hour so the two fields are never both empty.
        if (!this.start.value && !this.end.value) {
          this.start.value = toLocalInput(Date.now() - 3_600_000);
        }
        onChange({ range, from: fromLocalInput(this.start.value), to: fromLocalInput(this.end.value) });
      } else {
        onChange({ range, from: undefined, to: undefined });
      }
    });
    const customChanged = () =>
      onChange({ range: "custom", from: fromLocalInput(this.start.value), to: fromLocalInput(this.end.value) });
    this.start.addEventListener("change", customChanged);
    this.end.addEventListener("change", customChanged);
  }

  private applySearch(): void {
    window.clearTimeout(this.searchTimer);
    const text = this.search.value.trim();
    if (text === this.lastText) return;
    this.lastText = text;
    this.onChange({ text });
  }

  focusSearch(): void {
    this.search.focus();
    this.search.select();
  }

  setServices(services: string[], current: string): void {
    const all = current && !services.includes(current) ? [...services, current].sort() : services;
    const have = [...this.service.options].map((o) => o.value);
    if (have.join("\n") !== all.join("\n")) {
      this.service.replaceChildren(
        ...all.map((s) => {
          const o = document.createElement("option");
          o.value = s;
          o.textContent = s;
          return o;
        }),
      );
    }
    this.service.value = current;
  }

  setTags(tags: string[]): void {
    this.tags.setOptions(tags);
  }

  show(v: ViewState): void {
    if (this.service.value !== v.service) this.service.value = v.service;
    this.tags.select(v.tags);
    this.levels.select(v.levels);
    if (document.activeElement !== this.search) this.search.value = v.text;
    this.lastText = v.text;
    this.range.value = v.range;
    this.custom.hidden = v.range !== "custom";
    if (v.range === "custom") {
      this.start.value = toLocalInput(v.from);
      this.end.value = toLocalInput(v.to);
    }
  }
}
