// The volume chart's time axis: labels at round local times, as many as fit,
// and the wording of a bucket's time span for the tooltip.

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;
const STEPS = [S, 2 * S, 5 * S, 10 * S, 15 * S, 30 * S, M, 2 * M, 5 * M, 10 * M, 15 * M, 30 * M,
  H, 2 * H, 3 * H, 6 * H, 12 * H, D, 2 * D, 7 * D, 30 * D, 365 * D];
/** Least room for one label, px: "12-07 16:05" in the axis font. */
const LABEL_PX = 90;

export interface Tick {
  t: number;
  label: string;
}

const pad2 = (n: number) => (n < 10 ? "0" : "") + n;
const day = (d: Date) => pad2(d.getMonth() + 1) + "-" + pad2(d.getDate());
const hm = (d: Date) => pad2(d.getHours()) + ":" + pad2(d.getMinutes());
const hms = (d: Date) => hm(d) + ":" + pad2(d.getSeconds());

/** The label of a tick `step` apart from the next: only the units that change. */
function label(d: Date, step: number, withDay: boolean): string {
  if (step >= 365 * D) return String(d.getFullYear());
  if (step >= 30 * D) return d.getFullYear() + "-" + pad2(d.getMonth() + 1);
  if (step >= D) return day(d);
  const time = step >= M ? hm(d) : hms(d);
  return withDay ? day(d) + " " + time : time;
}

/** Labels for `start..end` (epoch ms) drawn over `px` pixels. */
export function ticks(start: number, end: number, px: number): Tick[] {
  if (!(end > start) || px <= 0) return [];
  const want = ((end - start) * LABEL_PX) / px;
  const step = STEPS.find((s) => s >= want) ?? Math.ceil(want / (365 * D)) * 365 * D;
  // Round in local time: "10:00", not the UTC hour shifted by the zone.
  const zone = -new Date(start).getTimezoneOffset() * M;
  const out: Tick[] = [];
  let prevDay = day(new Date());
  for (let t = Math.ceil((start + zone) / step) * step - zone; t <= end; t += step) {
    const d = new Date(t);
    // The date only where it changes (or is not today), so labels stay short.
    out.push({ t, label: label(d, step, day(d) !== prevDay) });
    prevDay = day(d);
  }
  return out;
}

/** `2026-12-07 16:03:10 – 16:03:20`: a bucket's span, with the date once. */
export function spanText(start: number, end: number): string {
  const a = new Date(start);
  const b = new Date(end);
  const date = (d: Date) => d.getFullYear() + "-" + day(d);
  const right = date(a) === date(b) ? hms(b) : date(b) + " " + hms(b);
  return `${date(a)} ${hms(a)} – ${right}`;
}
