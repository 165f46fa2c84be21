// Entry point: restores the view from the URL, wires the controls to the
// controller and keeps the service list fresh.

import { onKeyRefusal } from "./api/key";
import { Catalog } from "./catalog";
import { Controller } from "./controller";
import { prefs } from "./state/prefs";
import { parseUrl } from "./state/url";
import { Download } from "./ui/download";
import { Filters } from "./ui/filters";
import { Firings } from "./ui/firings";
import { HistogramView } from "./ui/histogram";
import { bindPointer } from "./ui/histogram-pointer";
import { KeyDialog } from "./ui/key-dialog";
import { bindKeys } from "./ui/keyboard";
import { initTheme } from "./ui/theme";
import { Toolbar } from "./ui/toolbar";
import { SavedViews } from "./ui/views";
import { VolumeChart } from "./volume";

declare global {
  interface Window {
    /** Hooks for the end-to-end tests and the benchmark. */
    __taillight: { rows: () => number; missing: () => number; lastId: () => number };
  }
}

initTheme();

const view = parseUrl(location.search);
// Created after the controls, whose callbacks reach it.
let controller: Controller;
const toolbar = new Toolbar({
  pauseOrResume: () => controller.pauseOrResume(),
  older: () => void controller.older(),
  newer: () => void controller.newer(),
  live: () => controller.goLive(),
  jumpToLive: () => controller.jumpToLive(),
});
const filters = new Filters((patch) => {
  controller.change(patch);
  if (patch.service !== undefined) catalog.watchTags(patch.service);
});
const chart = new HistogramView(document.getElementById("volume") as HTMLElement);
bindPointer(chart, {
  // A dragged range is a custom range, as if typed into the From/To fields.
  zoom: (from, to) => controller.change({ range: "custom", from, to }),
  jump: (bucket) => void controller.jumpTo(bucket.start),
});
const volume = new VolumeChart(chart);
controller = new Controller(view, document.getElementById("log-list") as HTMLElement, toolbar, filters, volume);
new Download(() => controller.current, (text) => toolbar.notice(text));
const savedViews = new SavedViews(() => controller.current, (text) => toolbar.notice(text));

// Before the first call: a server started with --keys-file refuses it
// without a key, and that opens the key form.
const keyDialog = new KeyDialog();
onKeyRefusal({
  required: (message) => keyDialog.show(message),
  denied: (message) => toolbar.notice(message),
});

window.__taillight = {
  rows: () => controller.rows(),
  missing: () => controller.missing(),
  lastId: () => controller.lastId(),
};

bindKeys({
  pauseOrResume: () => controller.pauseOrResume(),
  focusSearch: () => filters.focusSearch(),
  moveSelection: (d) => controller.rowActions.moveSelection(d),
  toggleSelected: () => controller.rowActions.toggleSelected(),
});

const catalog = new Catalog({
  services(services) {
    const current = controller.current.service;
    if (!current && services.length) {
      // No service chosen yet: the one used last time, else the first.
      const remembered = prefs.service();
      const service = remembered && services.includes(remembered) ? remembered : services[0];
      filters.setServices(services, service);
      controller.open({ ...controller.current, service });
      catalog.watchTags(service);
      return;
    }
    filters.setServices(services, current);
  },
  tags(service, tags) {
    if (service === controller.current.service) filters.setTags(tags);
  },
  reached(ok, detail) {
    controller.serverReached(ok, detail);
  },
});

// A service named in the URL opens at once, without waiting for the list.
if (view.service) {
  prefs.setService(view.service);
  filters.setServices([], view.service);
  controller.open(view);
  catalog.watchTags(view.service);
} else {
  controller.open(view);
}
void catalog.start();
void savedViews.refresh();
new Firings().start();
