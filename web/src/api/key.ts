// The API key, for a server started with --keys-file. It is kept in
// sessionStorage: it lasts while the tab does (a reload keeps it), and is not
// written anywhere a later visitor of the browser profile would find it.
// Without a key nothing is sent, so a server that needs none works as before.
//
// Every call goes through `keyInterceptor`: it adds the key and reports the
// refusals the page answers itself: UNAUTHENTICATED asks for a key,
// PERMISSION_DENIED (a key without the read scope, or not covering the
// service asked for) is shown as the server words it.

import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

const STORAGE_KEY = "taillight.key";

export function storedKey(): string | null {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage disabled: the key is asked for on each load
  }
}

export function storeKey(key: string): void {
  try {
    sessionStorage.setItem(STORAGE_KEY, key);
  } catch {
    /* not kept */
  }
}

export function forgetKey(): void {
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    /* nothing kept */
  }
}

export function bearer(key: string): string {
  return `Bearer ${key}`;
}

export interface KeyEvents {
  /** The server wants a (valid) key: `message` says why, as the server put it. */
  required(message: string): void;
  /** The key may not do what was asked. */
  denied(message: string): void;
}

let on: KeyEvents | null = null;

/** Where refusals go; set once the page's elements exist. */
export function onKeyRefusal(events: KeyEvents): void {
  on = events;
}

/**
 * Passes a failure of a call (or of a download) to the page, if it is about
 * the key; `sent` is the key the call sent, if any.
 */
export function reportRefusal(code: Code, message: string, sent: string | null): void {
  if (code === Code.Unauthenticated) {
    // A stored key the server turned down (revoked, expired) is dropped, so
    // the calls still running stop sending it. Only that key: one stored
    // meanwhile (the form's, just before it reloads the page) is not at fault.
    if (sent !== null && storedKey() === sent) forgetKey();
    on?.required(message);
  } else if (code === Code.PermissionDenied) {
    on?.denied(message);
  }
}

function report(e: unknown, sent: string | null): void {
  // An aborted call comes out as CANCELED, which is not about the key.
  const err = ConnectError.from(e);
  reportRefusal(err.code, err.rawMessage, sent);
}

/** Errors of a stream surface while it is read: watched there too. */
async function* watched<T>(messages: AsyncIterable<T>, sent: string | null): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (e) {
    report(e, sent);
    throw e;
  }
}

export const keyInterceptor: Interceptor = (next) => async (req) => {
  // A call that names its own key (checking one before keeping it) keeps
  // it, and its refusal is for its caller alone.
  if (req.header.has("authorization")) return next(req);
  const key = storedKey();
  if (key) req.header.set("authorization", bearer(key));
  try {
    const res = await next(req);
    return res.stream ? { ...res, message: watched(res.message, key) } : res;
  } catch (e) {
    report(e, key);
    throw e;
  }
};
