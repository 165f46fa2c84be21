// One live tail that survives the network: it reconnects by itself with
// backoff and resumes after the last id it has (Tail after_id), so the server
// backfills exactly what was missed, with no gap and no duplicate.
//
// A stream can also die silently (a proxy, a sleeping laptop): the server
// sends a heartbeat every HEARTBEAT_S on a quiet stream, so one silent for
// three of them is treated as dead and replaced.

import { ConnectError } from "@connectrpc/connect";
import {
  type LogRecord,
  type Skipped,
  StreamStatus_State,
} from "../gen/taillight/v1/logs_pb";
import { client } from "./client";
import type { FilterInit } from "./scope";

export type ConnState = "connected" | "reconnecting" | "offline";

const HEARTBEAT_S = 5;
const DEAD_AFTER_MS = 3 * HEARTBEAT_S * 1000 + 1000;
/** Failed attempts in a row before "reconnecting" becomes "offline". */
const OFFLINE_AFTER = 4;
const MAX_BACKOFF_MS = 30_000;

export interface TailEvents {
  /** Records in id order, never one already delivered by this session. */
  records(records: LogRecord[]): void;
  /** The server dropped `count` records `firstId..=lastId` for this slow client. */
  skipped(s: Skipped): void;
  /** The backfill is done; null when live, or why the live feed is degraded. */
  live(degraded: string | null): void;
  conn(state: ConnState, detail: string): void;
}

export interface TailStart {
  /** Resume after this id; otherwise start with the `last` newest records. */
  afterId?: bigint;
  last: number;
}

export class TailSession {
  /** Where to resume: the highest id delivered (or reported by a heartbeat). */
  private cursor: bigint | undefined;
  private stopped = false;
  private abort: AbortController | null = null;
  private lastMessageAt = 0;
  private failures = 0;
  private watchdog: number | undefined;
  private wake: (() => void) | null = null;
  private readonly onOnline = () => this.wake?.();

  constructor(
    private readonly filter: FilterInit,
    private readonly start: TailStart,
    private readonly on: TailEvents,
  ) {
    this.cursor = start.afterId;
  }

  /** The resume point so far (undefined before the first record or heartbeat). */
  get resumeId(): bigint | undefined {
    return this.cursor;
  }

  run(): void {
    window.addEventListener("online", this.onOnline);
    this.watchdog = window.setInterval(() => {
      if (this.abort && Date.now() - this.lastMessageAt > DEAD_AFTER_MS) {
        this.abort.abort(new Error("no heartbeat"));
      }
    }, 1000);
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
    this.wake?.();
    window.clearInterval(this.watchdog);
    window.removeEventListener("online", this.onOnline);
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let why = "stream ended";
      try {
        await this.once();
      } catch (e) {
        why = ConnectError.from(e).rawMessage || String(e);
      }
      this.abort = null;
      if (this.stopped) return;
      this.failures++;
      const offline = this.failures >= OFFLINE_AFTER || !navigator.onLine;
      this.on.conn(offline ? "offline" : "reconnecting", why);
      await this.sleep(backoff(this.failures));
    }
  }

  /** One stream, until it ends or fails. */
  private async once(): Promise<void> {
    const abort = (this.abort = new AbortController());
    this.lastMessageAt = Date.now();
    const resume = this.cursor !== undefined;
    const stream = client.tail(
      {
        filter: this.filter,
        afterId: resume ? this.cursor : undefined,
        last: resume ? 0 : this.start.last,
        heartbeatInterval: { seconds: BigInt(HEARTBEAT_S) },
      },
      { signal: abort.signal },
    );
    let first = true;
    for await (const res of stream) {
      if (this.stopped) return;
      this.lastMessageAt = Date.now();
      if (first) {
        first = false;
        this.failures = 0;
        this.on.conn("connected", "");
      }
      const ev = res.event;
      switch (ev.case) {
        case "records": {
          // The server never repeats an id; this guard only matters if a
          // reconnect raced a message already in flight.
          const c = this.cursor;
          const rs = c === undefined ? ev.value.records : ev.value.records.filter((r) => r.id > c);
          if (rs.length) {
            this.cursor = rs[rs.length - 1].id;
            this.on.records(rs);
          }
          break;
        }
        case "heartbeat":
          // Advances the resume point past records that did not match the
          // filter, so a reconnect does not re-read them.
          if (this.cursor === undefined || ev.value.lastId > this.cursor) this.cursor = ev.value.lastId;
          break;
        case "skipped":
          if (this.cursor === undefined || ev.value.lastId > this.cursor) this.cursor = ev.value.lastId;
          this.on.skipped(ev.value);
          break;
        case "status":
          this.on.live(ev.value.state === StreamStatus_State.DEGRADED ? ev.value.message || "degraded" : null);
          break;
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = window.setTimeout(done, ms);
      const self = this;
      function done() {
        window.clearTimeout(t);
        self.wake = null;
        resolve();
      }
      this.wake = done;
    });
  }
}

/** 0.5 s, 1 s, 2 s ... up to 30 s, with jitter so many tabs do not reconnect in step. */
function backoff(failures: number): number {
  const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(failures - 1, 10));
  return base * (0.75 + Math.random() * 0.5);
}
