// The server's export of a view: GET /v1/logs/export with the filter and
// time window the history queries use (see scope.ts), oldest first. A plain
// same-origin URL, so without an API key the browser downloads it itself and
// no script holds the file (with a key, see ui/download.ts).

import { timeWindow, type ViewState } from "../state/view";

export type ExportFormat = "ndjson" | "csv";

export function exportUrl(v: ViewState, format: ExportFormat, now = Date.now()): string {
  const p = new URLSearchParams({ format });
  if (v.service) p.set("service", v.service);
  if (v.levels.length) p.set("level", v.levels.join(","));
  if (v.tags.length) p.set("tag", v.tags.join(","));
  if (v.text) p.set("text", v.text);
  const w = timeWindow(v, now);
  if (w.start !== undefined) p.set("start", new Date(w.start).toISOString());
  if (w.end !== undefined) p.set("end", new Date(w.end).toISOString());
  return "/v1/logs/export?" + p.toString();
}
