// The one LogService client. gRPC-web goes to the page's own origin: the
// server answers gRPC, gRPC-web and the page on the same port. Every call
// carries the API key when one is kept (see key.ts).

import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { LogService } from "../gen/taillight/v1/logs_pb";
import { keyInterceptor } from "./key";

export const client: Client<typeof LogService> = createClient(
  LogService,
  createGrpcWebTransport({ baseUrl: location.origin, interceptors: [keyInterceptor] }),
);
