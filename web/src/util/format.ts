// Turning records into text: levels, timestamps, and the JSON copied to the
// clipboard. Pure functions, so rendering stays cheap and testable.

import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { Level, type LogRecord } from "../gen/taillight/v1/logs_pb";

export const LEVEL_NAMES = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"] as const;
export type LevelName = (typeof LEVEL_NAMES)[number];

export function levelName(l: Level): LevelName | "UNKNOWN" {
  return l >= Level.TRACE && l <= Level.FATAL ? LEVEL_NAMES[l - 1] : "UNKNOWN";
}

export function levelFromName(name: string): Level | undefined {
  const i = LEVEL_NAMES.indexOf(name.toUpperCase() as LevelName);
  return i < 0 ? undefined : ((i + 1) as Level);
}

/** CSS class for a level: `level-error`, ... */
export function levelClass(l: Level): string {
  return "level-" + levelName(l).toLowerCase();
}

export function tsMillis(t: Timestamp | undefined): number {
  return t ? Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6) : 0;
}

const pad2 = (n: number) => (n < 10 ? "0" : "") + n;
const pad3 = (n: number) => (n < 10 ? "00" : n < 100 ? "0" : "") + n;

/**
 * `2024-05-01 13:04:05.123` in the viewer's time zone. Hand-rolled rather than
 * Intl: it runs for every row that scrolls into view.
 */
export function localTime(t: Timestamp | undefined): string {
  if (!t) return "";
  const d = new Date(tsMillis(t));
  return (
    d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + " " +
    pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds()) + "." +
    pad3(d.getMilliseconds())
  );
}

/** RFC 3339 in UTC with the stored precision (up to nanoseconds), as the server writes it. */
export function rfc3339(t: Timestamp | undefined): string {
  if (!t) return "";
  const base = new Date(Number(t.seconds) * 1000).toISOString().slice(0, 19);
  if (t.nanos === 0) return base + "Z";
  const frac = String(t.nanos).padStart(9, "0").replace(/0+$/, "");
  return base + "." + frac + "Z";
}

/** The record as the HTTP/JSON gateway returns it (`GET /v1/logs`). */
export function recordJson(r: LogRecord): string {
  const id = r.id <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(r.id) : r.id.toString();
  return JSON.stringify(
    {
      id,
      service: r.service,
      level: levelName(r.level),
      message: r.message,
      tags: r.tags,
      attributes: r.attributes,
      time: rfc3339(r.time),
      receivedTime: rfc3339(r.receivedTime),
    },
    null,
    2,
  );
}
