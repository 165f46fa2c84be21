// The Download link and its format choice. The link's address is the export
// of the view as it is when the link is used: a relative range ("last hour")
// ends now, not when the view was opened.
//
// Without an API key the browser follows the link and saves the streamed
// answer itself. A link cannot send the key, so with one the export is
// fetched with it and saved from a blob (the file is held in memory until
// then), under the name the server gives it.

import { Code } from "@connectrpc/connect";
import { type ExportFormat, exportUrl } from "../api/export";
import { bearer, reportRefusal, storedKey } from "../api/key";
import type { ViewState } from "../state/view";

function $<T extends HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

export class Download {
  private readonly link = $<HTMLAnchorElement>("download");
  private readonly format = $<HTMLSelectElement>("download-format");
  private saving = false;

  constructor(
    private readonly view: () => ViewState,
    private readonly notice: (text: string) => void,
  ) {
    // Hover and focus too, so the address shown or copied is current.
    for (const ev of ["click", "focus", "pointerenter"]) this.link.addEventListener(ev, () => this.refresh());
    this.format.addEventListener("change", () => this.refresh());
    // After the refresh above (listeners run in order): the address is current.
    this.link.addEventListener("click", (e) => {
      const key = storedKey();
      if (!key) return;
      e.preventDefault();
      void this.save(this.link.href, key);
    });
    this.refresh();
  }

  private refresh(): void {
    this.link.href = exportUrl(this.view(), this.format.value as ExportFormat);
  }

  private async save(url: string, key: string): Promise<void> {
    if (this.saving) return;
    this.saving = true;
    this.link.setAttribute("aria-busy", "true");
    const fallback = `taillight-export.${this.format.value}`;
    try {
      const res = await fetch(url, { headers: { authorization: bearer(key) } });
      if (!res.ok) {
        const message = await errorMessage(res);
        if (res.status === 401) reportRefusal(Code.Unauthenticated, message, key);
        else this.notice(`Could not download: ${message}`);
        return;
      }
      const name = fileName(res.headers.get("content-disposition")) ?? fallback;
      const blob = await res.blob();
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = name;
      document.body.append(a);
      a.click();
      a.remove();
      // The download has taken its copy well before this.
      window.setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
    } catch (e) {
      this.notice(`Could not download: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      this.saving = false;
      this.link.removeAttribute("aria-busy");
    }
  }
}

/** The server's JSON error message, else the HTTP status. */
async function errorMessage(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { error?: { message?: string } };
    if (body.error?.message) return body.error.message;
  } catch {
    /* not the JSON error */
  }
  return `HTTP ${res.status}`;
}

/** `filename` of a Content-Disposition header (the server's is a plain quoted name). */
function fileName(disposition: string | null): string | undefined {
  const m = disposition && /filename\s*=\s*"([^"]+)"|filename\s*=\s*([^;\s]+)/i.exec(disposition);
  return m ? m[1] ?? m[2] : undefined;
}
