// The service and tag lists (ListServices, ListTags), kept fresh while the
// page is open: new services and tags show up without a reload.

import { ConnectError } from "@connectrpc/connect";
import { client } from "./api/client";

const REFRESH_MS = 10_000;
/** Faster while there is no service at all, so the first one appears quickly. */
const EMPTY_REFRESH_MS = 2_000;

export interface CatalogEvents {
  services(services: string[]): void;
  tags(service: string, tags: string[]): void;
  /** Whether the server answered, for the connection state. */
  reached(ok: boolean, detail: string): void;
}

export class Catalog {
  private timer: number | undefined;
  private service = "";

  constructor(private readonly on: CatalogEvents) {}

  /** Fetches now and keeps refreshing; resolves with the first service list. */
  async start(): Promise<string[]> {
    const services = await this.refresh();
    return services ?? [];
  }

  /** The service whose tags to follow. */
  watchTags(service: string): void {
    if (service === this.service) return;
    this.service = service;
    void this.refreshTags();
  }

  private async refresh(): Promise<string[] | undefined> {
    window.clearTimeout(this.timer);
    let services: string[] | undefined;
    try {
      services = (await client.listServices({})).services;
      this.on.reached(true, "");
      this.on.services(services);
      await this.refreshTags();
    } catch (e) {
      this.on.reached(false, ConnectError.from(e).rawMessage);
    }
    const wait = services?.length ? REFRESH_MS : EMPTY_REFRESH_MS;
    this.timer = window.setTimeout(() => void this.refresh(), wait);
    return services;
  }

  private async refreshTags(): Promise<void> {
    const service = this.service;
    if (!service) return;
    try {
      const res = await client.listTags({ service });
      if (service === this.service) this.on.tags(service, res.tags);
    } catch (e) {
      this.on.reached(false, ConnectError.from(e).rawMessage);
    }
  }
}
