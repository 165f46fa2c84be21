// The top bar and the status elements: pause/resume, history paging, total,
// live rate, connection state, the "N new" badge and the notice line.

import type { ConnState } from "../api/tail";
import type { Mode } from "../state/view";

function $<T extends HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

export interface ToolbarActions {
  pauseOrResume(): void;
  older(): void;
  newer(): void;
  live(): void;
  jumpToLive(): void;
}

const CONN_LABEL: Record<ConnState, string> = {
  connected: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

export class Toolbar {
  private readonly pause = $<HTMLButtonElement>("pause");
  private readonly olderBtn = $<HTMLButtonElement>("older");
  private readonly newerBtn = $<HTMLButtonElement>("newer");
  private readonly liveBtn = $<HTMLButtonElement>("live");
  private readonly total = $<HTMLElement>("total");
  private readonly rate = $<HTMLElement>("rate");
  private readonly conn = $<HTMLElement>("conn");
  private readonly badge = $<HTMLButtonElement>("new-badge");
  private readonly noticeEl = $<HTMLElement>("notice");

  constructor(a: ToolbarActions) {
    this.pause.addEventListener("click", () => a.pauseOrResume());
    this.olderBtn.addEventListener("click", () => a.older());
    this.newerBtn.addEventListener("click", () => a.newer());
    this.liveBtn.addEventListener("click", () => a.live());
    this.badge.addEventListener("click", () => a.jumpToLive());
  }

  setMode(mode: Mode): void {
    document.body.dataset.mode = mode;
    // Not live (paused or reading history): the button resumes.
    this.pause.textContent = mode === "live" ? "Pause" : "Resume";
    this.pause.setAttribute("aria-pressed", String(mode !== "live"));
    this.liveBtn.disabled = mode === "live";
  }

  /** Which pages exist beyond what is shown. */
  setPaging(older: boolean, newer: boolean): void {
    this.olderBtn.disabled = !older;
    this.newerBtn.disabled = !newer;
  }

  setTotal(total: bigint | null): void {
    this.total.textContent = total === null ? "" : total.toString();
  }

  setRate(perSecond: number): void {
    const r = perSecond >= 10 ? Math.round(perSecond).toString() : perSecond.toFixed(1).replace(/\.0$/, "");
    this.rate.textContent = r + "/s";
  }

  setConn(state: ConnState, detail = ""): void {
    this.conn.dataset.state = state;
    this.conn.textContent = CONN_LABEL[state];
    this.conn.title = detail;
  }

  /** `null` hides the badge (following the bottom, or not live). */
  setBadge(newCount: number | null): void {
    this.badge.hidden = newCount === null;
    if (newCount !== null) this.badge.textContent = `${newCount} new`;
  }

  notice(text: string | null): void {
    this.noticeEl.hidden = !text;
    this.noticeEl.textContent = text ?? "";
  }
}
