// The Download link and its format choice. The link's address is the export
// of the view as it is when the link is used: a relative range ("last hour")
// ends now, not when the view was opened.

import { type ExportFormat, exportUrl } from "../api/export";
import type { ViewState } from "../state/view";

function $<T extends HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

export class Download {
  private readonly link = $<HTMLAnchorElement>("download");
  private readonly format = $<HTMLSelectElement>("download-format");

  constructor(private readonly view: () => ViewState) {
    // Hover and focus too, so the address shown or copied is current.
    for (const ev of ["click", "focus", "pointerenter"]) this.link.addEventListener(ev, () => this.refresh());
    this.format.addEventListener("change", () => this.refresh());
    this.refresh();
  }

  private refresh(): void {
    this.link.href = exportUrl(this.view(), this.format.value as ExportFormat);
  }
}
