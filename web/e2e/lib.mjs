// Shared harness for the viewer's end-to-end tests, screenshots and benchmark:
// the real `taillight` binary as a child process, headless Chromium from
// Debian (/usr/bin/chromium) driven by playwright-core, and push/query helpers.
//
// Environment:
//   TAILLIGHT_BIN      the server binary (default $CARGO_TARGET_DIR/debug/taillight,
//                      CARGO_TARGET_DIR defaulting to ~/.cache/taillight-target)
//   CHROMIUM           the browser (default /usr/bin/chromium); never downloaded
//   E2E_VERBOSE=1      echo the server's stderr
//   E2E_VIEWER_DIST    a directory (web/dist, say) whose index.html, app.js and
//                      app.css replace the copies embedded in the server binary,
//                      under the server's own headers: for working on the viewer
//                      without rebuilding the server. Unset, as the suite runs
//                      it, the binary's own copy is tested.

import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, homedir } from 'node:os';
import { join } from 'node:path';

// Never let playwright fetch a browser of its own.
process.env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD = '1';
const { chromium } = await import('playwright-core');

const targetDir = process.env.CARGO_TARGET_DIR || join(homedir(), '.cache', 'taillight-target');
export const BIN = process.env.TAILLIGHT_BIN || join(targetDir, 'debug', 'taillight');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const VIEWPORT = { width: 1400, height: 900 };
export const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let uniq = 0;
/** A service name unique to this process and call. */
export function uniqueService(prefix = 'svc') {
  uniq += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${uniq}`;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Poll `fn` until `check(value)` is true; returns the value. On time-out the
 * error names what was awaited and the last value observed.
 */
export async function waitFor(fn, check = Boolean, { timeout = 15000, interval = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await fn();
      lastErr = undefined;
      if (check(last)) return last;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) {
      const seen = lastErr ? `error: ${lastErr.message}` : `last observed: ${short(last)}`;
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; ${seen}`);
    }
    await sleep(interval);
  }
}

export function short(v, max = 1500) {
  let s;
  try {
    s = typeof v === 'string' ? v : JSON.stringify(v);
  } catch {
    s = String(v);
  }
  if (s === undefined) s = String(v);
  return s.length > max ? `${s.slice(0, max)}… (${s.length} chars)` : s;
}

// ---------------------------------------------------------------- server

const children = new Set();
function killChildren() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}
process.on('exit', killChildren);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killChildren();
    process.exit(130);
  });
}

/**
 * Start `taillight serve` as a child process and wait for its
 * "taillight listening on ADDR" line on stderr.
 * opts: port (0 = any), dataDir (a fresh temp dir by default), args (extra flags).
 * Returns { addr, port, url, dataDir, proc, stderr(), kill(signal), stop() }.
 */
export async function startServer({ port = 0, dataDir, args = [], env = {}, timeout = 30000 } = {}) {
  if (!existsSync(BIN)) {
    throw new Error(`server binary ${BIN} not found: build it with ` +
      '`CARGO_TARGET_DIR=~/.cache/taillight-target cargo build` or set TAILLIGHT_BIN');
  }
  const ownDir = !dataDir;
  dataDir = dataDir || mkdtempSync(join(tmpdir(), 'taillight-e2e-'));
  const proc = spawn(
    BIN,
    ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--heartbeat', '1s', ...args],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1', ...env } },
  );
  children.add(proc);
  let log = '';
  let exited = null;
  proc.on('exit', (code, signal) => {
    exited = { code, signal };
    children.delete(proc);
  });
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server did not report its address within ${timeout} ms; stderr:\n${log}`));
    }, timeout);
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk) => {
      log += chunk;
      if (log.length > 200000) log = log.slice(-100000);
      if (process.env.E2E_VERBOSE) process.stderr.write(chunk);
      const m = /taillight listening on (\S+)\r?\n/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (code ${code}, signal ${signal}) before listening; stderr:\n${log}`));
    });
  });
  const server = {
    addr,
    port: Number(addr.split(':').pop()),
    url: `http://${addr}`,
    dataDir,
    proc,
    stderr: () => log,
    get exited() {
      return exited;
    },
    /** Send a signal and wait for the process to be gone. */
    async kill(signal = 'SIGKILL') {
      if (exited) return exited;
      const gone = new Promise((r) => proc.once('exit', (code, sig) => r({ code, signal: sig })));
      proc.kill(signal);
      return gone;
    },
    /** Stop the server (SIGTERM, then SIGKILL after 5 s) and remove its own temp data dir. */
    async stop({ keepData = false } = {}) {
      if (!exited) {
        const gone = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await gone;
        clearTimeout(t);
      }
      if (ownDir && !keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return server;
}

// ---------------------------------------------------------------- pushing

/**
 * Push entries over gRPC with the CLI: `taillight push --server URL --service S
 * --level L --tag a,b [--attr k=v] MESSAGES...`. With `stdin: true` the
 * messages are written as lines on standard input instead of arguments.
 */
export function pushCli(server, { service, level = 'info', tags = [], attrs = {}, messages, stdin = false, caCert, timeout = 30000 }) {
  const url = typeof server === 'string' ? server : server.url;
  const args = ['push', '--server', url, '--service', service, '--level', level];
  if (caCert) args.push('--ca-cert', caCert);
  if (tags.length) args.push('--tag', tags.join(','));
  for (const [k, v] of Object.entries(attrs)) args.push('--attr', `${k}=${v}`);
  if (!stdin) args.push('--', ...messages);
  return new Promise((resolve, reject) => {
    const p = execFile(BIN, args, { timeout, env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`taillight push failed (${err.message}); stderr: ${stderr}`));
      else {
        const m = /accepted (\d+) entries/.exec(stderr);
        const n = m ? Number(m[1]) : NaN;
        if (n !== messages.length) reject(new Error(`taillight push: expected "accepted ${messages.length} entries", got: ${stderr}`));
        else resolve(n);
      }
    });
    if (stdin) {
      p.stdin.end(messages.map((m) => `${m}\n`).join(''));
    }
  });
}

/** `authorization: Bearer KEY` when a key is given (a server started with --keys-file). */
function keyHeader(key) {
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** POST entries as NDJSON to /v1/logs (with API key `key`, if given); returns the accepted count. */
export async function pushHttp(server, entries, { key } = {}) {
  const url = typeof server === 'string' ? server : server.url;
  const body = entries.map((e) => JSON.stringify(e)).join('\n') + '\n';
  const res = await fetch(`${url}/v1/logs`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', ...keyHeader(key) },
    body,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST /v1/logs: HTTP ${res.status}: ${text}`);
  const { accepted } = JSON.parse(text);
  if (accepted !== entries.length) throw new Error(`POST /v1/logs accepted ${accepted} of ${entries.length}`);
  return accepted;
}

/**
 * Create an API key in `keysFile` (made by the first call) with the server's
 * own `taillight keys create`; returns the key it prints.
 * opts: scope (e.g. 'read' or 'read,push'), services (patterns), name.
 */
export function createKey(keysFile, { scope = 'read', services = [], name } = {}) {
  const args = ['keys', 'create', '--keys-file', keysFile, '--scope', scope];
  for (const s of services) args.push('--service', s);
  if (name) args.push('--name', name);
  return new Promise((resolve, reject) => {
    execFile(BIN, args, { timeout: 30000, env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => {
      const key = stdout.trim();
      if (err) reject(new Error(`taillight keys create failed (${err.message}); stderr: ${stderr}`));
      else if (!/^tl_[A-Za-z0-9_-]{43}$/.test(key)) reject(new Error(`taillight keys create printed no key: ${short(stdout)}; stderr: ${stderr}`));
      else resolve(key);
    });
  });
}

// ---------------------------------------------------------------- querying

/**
 * Every record matching the filter through GET /v1/logs, oldest first.
 * filter: { service, levels: [..], tags: [..], text }; `key`: the API key to send.
 */
export async function queryAll(server, { service, levels, tags, text } = {}, { key } = {}) {
  const url = typeof server === 'string' ? server : server.url;
  const out = [];
  let token = '';
  for (;;) {
    const q = new URLSearchParams({ order: 'oldest', page_size: '1000' });
    if (service) q.set('service', service);
    if (levels?.length) q.set('level', levels.join(','));
    if (tags?.length) q.set('tag', tags.join(','));
    if (text) q.set('text', text);
    if (token) q.set('page_token', token);
    const res = await fetch(`${url}/v1/logs?${q}`, { headers: keyHeader(key) });
    if (!res.ok) throw new Error(`GET /v1/logs?${q}: HTTP ${res.status}: ${await res.text()}`);
    const body = await res.json();
    out.push(...body.records);
    token = body.nextPageToken;
    if (!token) return out;
  }
}

/** Does the server serve the viewer (an HTML page mentioning #log-list) at /? */
export async function viewerServed(server) {
  try {
    const res = await fetch(`${server.url}/`);
    if (!res.ok) return false;
    return (await res.text()).includes('log-list');
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- browser

/**
 * A fresh headless Chromium (Debian's, never downloaded) with a fresh
 * user-data dir, 1400x900. Returns { context, page, close() }; page errors and
 * console errors are collected in `errors`.
 */
export async function openBrowser({ viewport = VIEWPORT, colorScheme = 'light', ignoreHTTPSErrors = false } = {}) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'taillight-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport,
    colorScheme,
    ignoreHTTPSErrors,
    timeout: 60000,
  });
  if (process.env.E2E_VIEWER_DIST) await serveViewerFrom(context, process.env.E2E_VIEWER_DIST);
  const page = context.pages()[0] || (await context.newPage());
  const errors = [];
  const watch = (p) => {
    p.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    p.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
    });
  };
  watch(page);
  context.on('page', watch);
  return {
    context,
    page,
    errors,
    async close() {
      await context.close().catch(() => {});
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

const VIEWER_FILES = { '/': 'index.html', '/app.js': 'app.js', '/app.css': 'app.css' };

/**
 * The viewer's files from `dir` instead of the server's embedded copy. Only
 * answers of a taillight server are replaced (its CSP forbids framing), not
 * those of the other origins some tests serve.
 */
async function serveViewerFrom(context, dir) {
  await context.route((url) => url.pathname in VIEWER_FILES, async (route) => {
    const response = await route.fetch();
    const csp = response.headers()['content-security-policy'] ?? '';
    if (!response.ok() || !csp.includes("frame-ancestors 'none'")) return route.fulfill({ response });
    const file = VIEWER_FILES[new URL(route.request().url()).pathname];
    const headers = { ...response.headers() };
    delete headers.etag;
    delete headers['content-length'];
    delete headers['content-encoding'];
    return route.fulfill({ response, headers, body: readFileSync(join(dir, file)) });
  });
}

/** Load the viewer at `path` (e.g. "/?service=x") and wait for its hooks. */
export async function openViewer(page, server, path = '/', { timeout = 20000 } = {}) {
  await page.goto(`${server.url}${path}`, { waitUntil: 'domcontentloaded', timeout });
  await waitViewer(page, { timeout });
}

/** Wait for the viewer's hooks on the page already loaded. */
export async function waitViewer(page, { timeout = 20000 } = {}) {
  await page.waitForSelector('#log-list', { state: 'attached', timeout });
  await waitFor(
    () => page.evaluate(() => typeof window.__taillight?.rows === 'function' && typeof window.__taillight?.lastId === 'function'),
    Boolean,
    { timeout, what: 'window.__taillight.rows/lastId to exist' },
  );
}

export const connState = (page) => page.evaluate(() => document.querySelector('#conn')?.dataset.state ?? null);
export const mode = (page) => page.evaluate(() => document.body.dataset.mode ?? null);
export const heldRows = (page) => page.evaluate(() => window.__taillight.rows());
export const lastId = (page) => page.evaluate(() => window.__taillight.lastId());

export async function waitConnected(page, timeout = 20000) {
  return waitFor(() => connState(page), (s) => s === 'connected', { timeout, what: '#conn[data-state=connected]' });
}

/**
 * The rows now in the DOM, in DOM order, with their vertical position:
 * [{ id, top, level, service, msg, tags, expanded, selected }].
 */
export function domRows(page) {
  return page.evaluate(() => {
    const list = document.querySelector('#log-list');
    if (!list) return [];
    return [...list.querySelectorAll('.row[data-id]')].map((r) => ({
      id: Number(r.dataset.id),
      top: r.getBoundingClientRect().top,
      level: r.querySelector('.level')?.textContent.trim() ?? null,
      service: r.querySelector('.service')?.textContent.trim() ?? null,
      msg: r.querySelector('.msg')?.textContent ?? null,
      tags: r.querySelector('.tags')?.textContent.trim() ?? null,
      expanded: r.getAttribute('aria-expanded'),
      selected: r.getAttribute('aria-selected'),
    }));
  });
}

/**
 * Every row of the (virtualised) list: scroll #log-list from top to bottom
 * 80% of a screen at a time, collecting rows by id, then put the scroll position
 * back where it was (or at the bottom with `toBottom`). Also reports any id
 * rendered twice in one snapshot and any snapshot whose DOM order or visual
 * order is not ascending by id.
 */
export function collectRows(page, { toBottom = false } = {}) {
  return page.evaluate(async (toBottom) => {
    const list = document.querySelector('#log-list');
    const frames = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    const seen = new Map();
    const problems = [];
    const grab = () => {
      const els = [...list.querySelectorAll('.row[data-id]')];
      const ids = els.map((r) => Number(r.dataset.id));
      if (new Set(ids).size !== ids.length) problems.push(`duplicate data-id in DOM: ${ids.join(',')}`);
      for (let i = 1; i < ids.length; i++) {
        if (!(ids[i] > ids[i - 1])) {
          problems.push(`DOM order not ascending by id: ${ids.join(',')}`);
          break;
        }
      }
      const visual = els
        .map((r) => ({ id: Number(r.dataset.id), top: r.getBoundingClientRect().top }))
        .sort((a, b) => a.top - b.top)
        .map((r) => r.id);
      for (let i = 1; i < visual.length; i++) {
        if (!(visual[i] > visual[i - 1])) {
          problems.push(`visual order (top to bottom) not ascending by id: ${visual.join(',')}`);
          break;
        }
      }
      for (const r of els) {
        const id = Number(r.dataset.id);
        if (!seen.has(id)) {
          seen.set(id, {
            id,
            level: r.querySelector('.level')?.textContent.trim() ?? null,
            service: r.querySelector('.service')?.textContent.trim() ?? null,
            msg: r.querySelector('.msg')?.textContent ?? null,
            tags: r.querySelector('.tags')?.textContent.trim() ?? null,
          });
        }
      }
    };
    if (!list) return { rows: [], problems: ['no #log-list'] };
    const orig = list.scrollTop;
    const scrollable = list.scrollHeight > list.clientHeight + 1;
    if (!scrollable) {
      grab();
    } else {
      list.scrollTop = 0;
      await frames();
      grab();
      let guard = 0;
      while (list.scrollTop + list.clientHeight < list.scrollHeight - 1 && guard++ < 100000) {
        const before = list.scrollTop;
        list.scrollTop = before + Math.max(20, Math.floor(list.clientHeight * 0.8));
        await frames();
        grab();
        if (list.scrollTop === before) break;
      }
      list.scrollTop = toBottom ? list.scrollHeight : orig;
      await frames();
    }
    return { rows: [...seen.values()].sort((a, b) => a.id - b.id), problems: [...new Set(problems)] };
  }, toBottom);
}

/** Scroll #log-list to its bottom (live end). */
export function scrollToBottom(page) {
  return page.evaluate(async () => {
    const list = document.querySelector('#log-list');
    list.scrollTop = list.scrollHeight;
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  });
}

/** Set the checkboxes of a filter group so that exactly `wanted` are checked (and "*" is not, unless wanted is "*"). */
export async function setFilterChecks(page, group, attr, wanted) {
  const sel = (v) => `${group} input[${attr}="${v}"]`;
  if (wanted === '*') {
    await page.setChecked(sel('*'), true);
    return;
  }
  for (const v of wanted) await page.setChecked(sel(v), true);
  const values = await page.$$eval(`${group} input[${attr}]`, (els, attr) => els.map((e) => e.getAttribute(attr)), attr);
  for (const v of values) {
    if (v !== '*' && !wanted.includes(v) && (await page.isChecked(sel(v)))) await page.setChecked(sel(v), false);
  }
  if (values.includes('*') && (await page.isChecked(sel('*')))) await page.setChecked(sel('*'), false);
  // Clicking "*" off may have re-checked or cleared others: re-assert the wanted set.
  for (const v of wanted) if (!(await page.isChecked(sel(v)))) await page.setChecked(sel(v), true);
}

/** { value: checked } for every checkbox of a filter group. */
export function checkState(page, group, attr) {
  return page.$$eval(`${group} input[${attr}]`, (els, attr) => Object.fromEntries(els.map((e) => [e.getAttribute(attr), e.checked])), attr);
}

/** The query parameters of the page's current URL, as an object. */
export async function urlParams(page) {
  return Object.fromEntries(new URL(page.url()).searchParams);
}
