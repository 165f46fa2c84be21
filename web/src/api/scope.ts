// The view's filters as the server's LogFilter and time bounds. Tail and
// QueryLogs get the same filter, so live and history show the same entries.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Timestamp, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Level, LogFilterSchema } from "../gen/taillight/v1/logs_pb";
import { levelFromName } from "../util/format";
import { timeWindow, type ViewState } from "../state/view";

export type FilterInit = MessageInitShape<typeof LogFilterSchema>;

export function logFilter(v: ViewState): FilterInit {
  return {
    services: v.service ? [v.service] : [],
    levels: v.levels.map(levelFromName).filter((l): l is Level => l !== undefined),
    tags: v.tags,
    text: v.text,
  };
}

/** What a history question is asked over: the filter and, if any, a time window. */
export interface Scope {
  filter: FilterInit;
  startTime?: Timestamp;
  endTime?: Timestamp;
}

export function historyScope(v: ViewState): Scope {
  const w = timeWindow(v);
  return {
    filter: logFilter(v),
    startTime: w.start !== undefined ? timestampFromMs(w.start) : undefined,
    endTime: w.end !== undefined ? timestampFromMs(w.end) : undefined,
  };
}

/** Live has no time window: it is "now". */
export function liveScope(v: ViewState): Scope {
  return { filter: logFilter(v) };
}

/**
 * What the volume chart counts: the list's filter and, in history, its
 * window. Live and paused views page back through all of history, so their
 * chart spans everything stored. A relative range ("last hour") ends now
 * rather than at the newest entry, so the axis reaches the present.
 */
export function volumeScope(v: ViewState, now = Date.now()): Scope {
  if (v.mode !== "history") return liveScope(v);
  const w = timeWindow(v, now);
  const end = v.range === "custom" ? w.end : w.start !== undefined ? now : undefined;
  return {
    filter: logFilter(v),
    startTime: w.start !== undefined ? timestampFromMs(w.start) : undefined,
    endTime: end !== undefined ? timestampFromMs(end) : undefined,
  };
}
