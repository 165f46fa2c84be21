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
