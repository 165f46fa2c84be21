// The latest alert notifications (ListAlertFirings), in the sidebar while
// there are any: each a link to the viewer on its rule's filter over the
// window that decided it. Read again every half minute.

import { timestampDate } from "@bufbuild/protobuf/wkt";
import { client } from "../api/client";
import type { AlertFiring } from "../gen/taillight/v1/logs_pb";

/** Firings shown. */
const SHOWN = 10;
const EVERY_MS = 30_000;

function $<T extends HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

export class Firings {
  private readonly section = $<HTMLElement>("alerts");
  private readonly list = $<HTMLUListElement>("firings");

  start(): void {
    void this.refresh();
    window.setInterval(() => void this.refresh(), EVERY_MS);
  }

  private async refresh(): Promise<void> {
    try {
      const res = await client.listAlertFirings({ limit: SHOWN });
      this.show(res.firings);
    } catch {
      // Alerts are an aside: the list and its notices speak for the server.
    }
  }

  private show(firings: AlertFiring[]): void {
    this.section.hidden = firings.length === 0;
    this.list.replaceChildren(
      ...firings.map((f) => {
        const li = document.createElement("li");
        li.className = `firing ${f.state}`;
        li.dataset.state = f.state;
        const a = document.createElement("a");
        a.href = f.url.replace(/^https?:\/\/[^/]+/, "") || "/";
        a.textContent = f.alert;
        const when = f.time ? timestampDate(f.time).toLocaleTimeString() : "";
        a.title = `${f.state}: ${f.condition} (${f.count}); ${f.delivery}`;
        const meta = document.createElement("span");
        meta.className = "firing-meta";
        meta.textContent = `${f.state === "firing" ? "fired" : "resolved"} ${when}`;
        li.append(a, meta);
        return li;
      }),
    );
  }
}
