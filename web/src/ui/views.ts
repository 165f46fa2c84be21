// Saved views in the sidebar: each a link to the view's URL (opening it is
// following the link), deleted with its ×; "Save view" keeps the current
// filters and time range under a name, on the server (ListViews, PutView,
// DeleteView), so every browser of the team sees them.

import { Code, ConnectError } from "@connectrpc/connect";
import { client } from "../api/client";
import type { View } from "../gen/taillight/v1/logs_pb";
import { toQuery } from "../state/url";
import type { ViewState } from "../state/view";

function $<T extends HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

/** What a saved view keeps of `v`: filters and range, not where the list stood. */
export function savedState(v: ViewState): string {
  const kept: ViewState = {
    ...v,
    // A time range opens as history (its newest page), anything else live.
    mode: v.range === "all" ? "live" : "history",
    last: undefined,
    before: undefined,
    after: undefined,
    entry: undefined,
  };
  return toQuery(kept).replace(/^\?/, "");
}

export class SavedViews {
  private readonly list = $<HTMLUListElement>("views");
  private readonly form = $<HTMLFormElement>("save-view");
  private readonly name = $<HTMLInputElement>("view-name");

  constructor(
    private readonly current: () => ViewState,
    private readonly notice: (text: string) => void,
  ) {
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.save();
    });
    this.list.addEventListener("click", (e) => {
      const del = (e.target as HTMLElement).closest<HTMLButtonElement>("button.delete-view");
      if (del?.dataset.name) void this.remove(del.dataset.name);
    });
  }

  async refresh(): Promise<void> {
    try {
      const res = await client.listViews({});
      this.show(res.views);
    } catch (e) {
      // A missing key is asked for by the key form, which reloads the page.
      if (ConnectError.from(e).code === Code.Unauthenticated) return;
      this.notice(`Saved views could not be listed: ${ConnectError.from(e).rawMessage}`);
    }
  }

  private show(views: View[]): void {
    const here = location.search.replace(/^\?/, "");
    this.list.replaceChildren(
      ...views.map((v) => {
        const li = document.createElement("li");
        const a = document.createElement("a");
        a.href = `${location.pathname}?${v.state}`;
        a.textContent = v.name;
        a.title = v.state;
        a.dataset.name = v.name;
        if (v.state === here) a.setAttribute("aria-current", "true");
        const del = document.createElement("button");
        del.type = "button";
        del.className = "delete-view";
        del.dataset.name = v.name;
        del.textContent = "×";
        del.title = `Delete the saved view "${v.name}"`;
        li.append(a, del);
        return li;
      }),
    );
  }

  private async save(): Promise<void> {
    const name = this.name.value.trim();
    if (!name) {
      this.name.focus();
      return;
    }
    try {
      await client.putView({ view: { name, state: savedState(this.current()) } });
      this.name.value = "";
      await this.refresh();
    } catch (e) {
      this.notice(`The view was not saved: ${ConnectError.from(e).rawMessage}`);
    }
  }

  private async remove(name: string): Promise<void> {
    try {
      await client.deleteView({ name });
      await this.refresh();
    } catch (e) {
      this.notice(`The view was not deleted: ${ConnectError.from(e).rawMessage}`);
    }
  }
}
