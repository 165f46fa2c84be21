// End-to-end tests of the taillight browser viewer against the real server.
//
// Run them:
//
//   cd <repo> && CARGO_TARGET_DIR=~/.cache/taillight-target cargo build   # the server, with the viewer embedded
//   cd web/e2e && npm ci && node --test
//
// Needs Debian's headless Chromium at /usr/bin/chromium (`apt-get install chromium`;
// CHROMIUM=... to point elsewhere). No browser is ever downloaded
// (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 is set by lib.mjs; set it for `npm ci` too).
// The server binary is $TAILLIGHT_BIN, else $CARGO_TARGET_DIR/debug/taillight,
// CARGO_TARGET_DIR defaulting to ~/.cache/taillight-target.
//
// Each test starts its own server (`taillight serve --listen 127.0.0.1:0
// --data-dir <tmp> --heartbeat 1s`) and its own browser with a fresh profile,
// uses service names of its own, and stops both when it ends, failed or not.
// On a failure a screenshot goes to web/e2e/artifacts/ (not committed), and
// the error names what was awaited and what was last seen (ids shown, ids
// missing, the viewer's #notice line).
//
// The tests follow the viewer's DOM contract (#log-list, .row[data-id], #pause,
// #conn[data-state], body[data-mode], window.__taillight, the URL parameters):
//   1  live entries from `taillight push` (gRPC), in order, level and tags
//   2  pause / push 20 / resume: each entry once, in order, no gap
//   3a-c  tag, level and text filters, live and after a reload (history)
//   4  #older / #newer / #total / #live paging     4b  the same with 30 KB messages
//   5  a URL with filters and paused=1 restores the view
//   6  server SIGKILLed and restarted on the same port: #conn, nothing lost or doubled
//   7  markup in messages, tags and attributes stays text
//   8  ?service=X&entry=ID permalinks     8b  "Show context" (button.context) from a filtered view
//   9  #new-badge while scrolled up           10  .gap-marker / button.load-gap after a skip
//  11  a#download (#download-format): the view's entries as NDJSON and CSV files
//  12  the seed's page, served from its own origin (listed in --cors-origins), reads GET /ws
//  13  trace and span ids in an expanded entry
//  14  --keys-file: #api-key asks for a key, a wrong one is refused (#api-key-error), a read
//      key shows entries live, a reload keeps it, a#download sends it, #forget-key drops it
//  15  a key for `api*` only: other services are neither listed nor shown; asking for one
//      is refused in #notice
//  16a-c  a page on another origin cannot store entries (no-cors text/plain fetch, forms,
//      JSON fetch), with and without keys; listed in --cors-origins, it can
//  17  over TLS
//  20  #alerts: the latest alert firings (li.firing) with a link to the rule's view
//  19  saved views: #save-view / #view-name keep the view on the server, #views lists
//      them (a[data-name] links, button.delete-view) in every browser
//  18a-f  the volume chart (#volume, .bucket[data-start][data-end][data-total] with a
//      .seg[data-level][data-count] per level): counts and colours, live growth with few
//      requests, drag to zoom, click to jump, filters, a failing call

import { test } from 'node:test';
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer as createHttpServer } from 'node:http';

import {
  LEVELS, sleep, waitFor, short, uniqueService, freePort,
  startServer, pushCli, pushHttp, queryAll, viewerServed, createKey,
  openBrowser, openViewer, waitViewer, connState, mode, heldRows, lastId, waitConnected,
  domRows, collectRows, setFilterChecks, checkState, urlParams,
} from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = join(here, 'artifacts');

/**
 * One end-to-end test: its own server and browser, both stopped at the end;
 * a screenshot and the page's errors are kept when it fails. `server` holds
 * startServer's options, or is an async function of the test returning
 * them, for what has to exist before the server starts (a keys file, a
 * port to allow); what it returns reaches the test as `setup`.
 */
function e2e(name, fn, { timeout = 120000, server: serverOpts } = {}) {
  test(name, { timeout }, async (t) => {
    const setup = typeof serverOpts === 'function' ? await serverOpts(t) : serverOpts;
    const server = await startServer(setup);
    let browser;
    try {
      assert.ok(await viewerServed(server), `the viewer is not served: GET ${server.url}/ has no "log-list" in it`);
      browser = await openBrowser();
      await fn({ t, server, browser, page: browser.page, setup });
    } catch (e) {
      if (browser) {
        mkdirSync(ARTIFACTS, { recursive: true });
        const file = join(ARTIFACTS, `${name.replace(/[^a-z0-9]+/gi, '_').slice(0, 60)}.png`);
        await browser.page.screenshot({ path: file }).catch(() => {});
        t.diagnostic(`screenshot: ${file}; url: ${browser.page.url()}`);
        if (browser.errors.length) t.diagnostic(`page errors: ${short(browser.errors)}`);
      }
      throw e;
    } finally {
      if (browser) {
        if (browser.errors.length) t.diagnostic(`page errors seen: ${short(browser.errors, 600)}`);
        await browser.close();
      }
      await server.stop();
    }
  });
}

const ids = (rows) => rows.map((r) => r.id);
const msgs = (rows) => rows.map((r) => r.msg);

/** Wait until the list (all of it, scrolled through) holds exactly `expected` records' ids. */
async function waitListEquals(page, expected, { timeout = 15000, what = 'the list', toBottom = true } = {}) {
  const want = ids(expected).join(',');
  let got;
  await waitFor(
    async () => {
      got = await collectRows(page, { toBottom });
      const have = ids(got.rows);
      const wantSet = new Set(ids(expected));
      const haveSet = new Set(have);
      // What a time-out reports: what is missing, what is extra, and the notice line.
      return {
        equal: have.join(',') === want,
        shown: have.length,
        expected: expected.length,
        missing: short(ids(expected).filter((i) => !haveSet.has(i)), 300),
        extra: short(have.filter((i) => !wantSet.has(i)), 300),
        problems: short(got.problems, 300),
        notice: await page.evaluate(() => document.querySelector('#notice')?.textContent?.trim() || ''),
      };
    },
    (v) => v.equal,
    { timeout, interval: 250, what: `${what} to hold exactly ids [${short(want, 300)}]` },
  );
  assert.deepEqual(got.problems, [], `${what}: ordering/duplicate problems in the rendered rows`);
  return got.rows;
}

/** Each rendered row shows what the server stored for it. */
function assertRowsMatchRecords(rows, records, what = 'row') {
  assert.equal(rows.length, records.length, `${what}: number of rows`);
  for (let i = 0; i < records.length; i++) {
    const r = rows[i];
    const rec = records[i];
    assert.equal(r.id, rec.id, `${what} ${i}: data-id`);
    assert.equal(r.msg, rec.message, `${what} id=${rec.id}: .msg text`);
    assert.equal(r.level, rec.level, `${what} id=${rec.id}: .level text`);
    assert.ok(r.service?.includes(rec.service), `${what} id=${rec.id}: .service is "${r.service}", expected "${rec.service}"`);
    for (const tag of rec.tags) {
      assert.ok(r.tags?.includes(tag), `${what} id=${rec.id}: .tags is "${r.tags}", expected to show tag "${tag}"`);
    }
  }
}

/**
 * A small, varied data set for one service: levels cycle every entry, tag sets
 * every six entries, and "Needle" is in the message of 3 entries out of 7, so
 * every combination of level, tag and text occurs.
 */
function dataset(service, n = 18) {
  const tagsets = [['alpha'], ['beta'], ['gamma'], ['alpha', 'beta'], [], ['gamma', 'alpha']];
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push({
      service,
      level: LEVELS[i % LEVELS.length],
      message: `${i % 7 < 3 ? 'found the Needle in ' : 'plain '}message ${String(i).padStart(3, '0')}`,
      tags: tagsets[Math.floor(i / 6) % tagsets.length],
      attributes: { i: String(i) },
    });
  }
  return out;
}

// ------------------------------------------------------------------ 1

e2e('1. entries pushed with the CLI (gRPC) appear live, in order, with level text and tags', async ({ server, page }) => {
  const S = uniqueService('live');
  const other = uniqueService('other');
  await pushCli(server, { service: S, level: 'info', tags: ['boot'], messages: ['seed entry'] });
  await pushCli(server, { service: other, level: 'info', messages: ['another service'] });

  await openViewer(page, server, '/');
  await waitFor(() => page.$$eval('#service-select option', (os) => os.map((o) => o.value)), (v) => v.includes(S),
    { what: `#service-select to offer ${S}` });
  await page.selectOption('#service-select', S);
  await waitFor(() => urlParams(page), (p) => p.service === S, { what: `the URL to carry service=${S}` });
  await waitConnected(page);
  assert.equal(await mode(page), 'live', 'body[data-mode] after opening');
  const seeded = await queryAll(server, { service: S });
  await waitListEquals(page, seeded, { what: 'list after selecting the service' });

  const pushes = [
    { level: 'error', tags: ['db', 'timeout'], messages: ['db: connection refused', 'db: retry 1 failed'] },
    { level: 'warn', tags: ['disk'], messages: ['disk 91% full'] },
    { level: 'info', tags: [], messages: ['GET /health 200'] },
    { level: 'fatal', tags: ['oom'], messages: ['out of memory, exiting'] },
    { level: 'debug', tags: ['cache', 'db'], messages: ['cache miss key=user:42'] },
    { level: 'trace', tags: ['rpc'], messages: ['enter handler'] },
  ];
  for (const p of pushes) {
    const started = Date.now();
    await pushCli(server, { service: S, ...p });
    // Each batch shows up live, without a reload.
    const last = p.messages[p.messages.length - 1];
    await waitFor(() => domRows(page), (rows) => rows.some((r) => r.msg === last),
      { timeout: 10000, what: `"${last}" to appear live (pushed ${Date.now() - started} ms ago)` });
  }
  const expected = await queryAll(server, { service: S });
  assert.equal(expected.length, 8);
  const rows = await waitListEquals(page, expected, { what: 'live list' });
  assertRowsMatchRecords(rows, expected, 'live row');
  assert.ok(!rows.some((r) => r.msg === 'another service'), 'a row of another service is shown');
  assert.equal(await mode(page), 'live');
  assert.equal(await lastId(page), expected[expected.length - 1].id, '__taillight.lastId()');
  assert.equal(await connState(page), 'connected');
});

// ------------------------------------------------------------------ 2

e2e('2. pause, push 20, resume: each entry exactly once, in order, no gap', async ({ server, page }) => {
  const S = uniqueService('pause');
  await pushCli(server, { service: S, level: 'info', messages: ['before pause 1', 'before pause 2'] });
  await openViewer(page, server, `/?service=${encodeURIComponent(S)}`);
  await waitConnected(page);
  await waitListEquals(page, await queryAll(server, { service: S }), { what: 'list before pausing' });

  await page.click('#pause');
  await waitFor(() => mode(page), (m) => m === 'paused', { what: 'body[data-mode=paused] after clicking #pause' });
  await sleep(300);
  const urlWhilePaused = await urlParams(page); // checked at the end, after the behaviour

  const during = Array.from({ length: 20 }, (_, i) => `while paused ${String(i + 1).padStart(2, '0')}`);
  await pushCli(server, { service: S, level: 'warn', tags: ['p'], messages: during, stdin: true });
  await sleep(2000); // the live stream has had time to deliver them
  const shownWhilePaused = (await domRows(page)).filter((r) => r.msg?.startsWith('while paused'));
  assert.deepEqual(shownWhilePaused.map((r) => r.msg), [], 'rows pushed while paused are shown before resuming');
  assert.equal(await mode(page), 'paused', 'still paused');

  await page.click('#pause');
  await waitFor(() => mode(page), (m) => m === 'live', { what: 'body[data-mode=live] after clicking #pause again' });
  const expected = await queryAll(server, { service: S });
  assert.equal(expected.length, 22);
  const rows = await waitListEquals(page, expected, { what: 'list after resuming' });
  assertRowsMatchRecords(rows, expected, 'row after resume');
  // No gap: the ids are consecutive (one service, one server), and every message once.
  for (let i = 1; i < rows.length; i++) assert.equal(rows[i].id, rows[i - 1].id + 1, `gap after id ${rows[i - 1].id}`);
  assert.deepEqual(msgs(rows).slice(2), during, 'messages after resume, in order');

  // A moment later nothing has been appended twice.
  await sleep(1500);
  const again = await collectRows(page, { toBottom: true });
  assert.deepEqual(again.problems, []);
  assert.deepEqual(ids(again.rows), ids(expected), 'ids 1.5 s after resuming');
  assert.equal(await heldRows(page), expected.length, '__taillight.rows()');
  assert.equal(await lastId(page), expected[expected.length - 1].id, '__taillight.lastId()');
  assert.equal(urlWhilePaused.paused, '1', `the URL while paused carries paused=1; it was ?${new URLSearchParams(urlWhilePaused)}`);
  assert.equal((await urlParams(page)).paused, undefined, 'the URL after resuming has no paused=1');
});

// ------------------------------------------------------------------ 3

/**
 * Shared body of the three filter tests: seed, apply the filter in the UI,
 * check the list, push more (matching and not), check the live list, reload
 * and check that history shows the same rows.
 */
async function filterTest({ server, page }, { apply, filter, urlCheck, controlsCheck, more }) {
  const S = uniqueService('filter');
  const S2 = uniqueService('filter-other');
  await pushHttp(server, dataset(S));
  await pushHttp(server, dataset(S2, 6));
  await openViewer(page, server, `/?service=${encodeURIComponent(S)}`);
  await waitConnected(page);
  await waitListEquals(page, await queryAll(server, { service: S }), { what: 'unfiltered list' });

  await apply(page, server, S);
  const f = { service: S, ...filter };
  const before = await queryAll(server, f);
  assert.ok(before.length > 0 && before.length < dataset(S).length, 'the filter must select some but not all rows');
  await waitListEquals(page, before, { what: `list filtered by ${JSON.stringify(filter)}` });
  await sleep(300);
  const urlFiltered = await urlParams(page); // checked at the end, after the behaviour

  // Live: more entries, some matching and some not.
  for (const p of more(S)) await pushCli(server, { service: S, ...p });
  const expected = await queryAll(server, f);
  assert.ok(expected.length > before.length, 'some of the new entries match');
  const live = await waitListEquals(page, expected, { what: 'live filtered list after new pushes' });
  assertRowsMatchRecords(live, expected, 'live filtered row');
  assert.equal(await mode(page), 'live');

  // History: the same URL loaded afresh shows the same set.
  await page.reload({ waitUntil: 'domcontentloaded' });
  await waitViewer(page);
  await controlsCheck(page);
  const history = await waitListEquals(page, expected, { what: 'filtered list after reload (history)' });
  assert.deepEqual(history, live, 'history after reload shows exactly the rows shown live');
  assert.ok(urlCheck(urlFiltered), `the URL reflects the filter as the contract names it; it was ?${new URLSearchParams(urlFiltered)}`);
}

const moreEntries = () => [
  { level: 'error', tags: ['alpha'], messages: ['late needle alpha error'] },
  { level: 'info', tags: ['beta'], messages: ['late plain beta info'] },
  { level: 'warn', tags: ['gamma'], messages: ['late NEEDLE gamma warn'] },
  { level: 'debug', tags: ['alpha', 'delta'], messages: ['late plain alpha debug'] },
  { level: 'error', tags: ['delta'], messages: ['late plain delta error'] },
];

e2e('3a. tag filter restricts live and history to rows with the tag', async (ctx) => {
  await filterTest(ctx, {
    apply: (page) => setFilterChecks(page, '#tag-filter', 'data-tag', ['alpha']),
    filter: { tags: ['alpha'] },
    urlCheck: (p) => p.tags === 'alpha',
    controlsCheck: async (page) => {
      const st = await waitFor(() => checkState(page, '#tag-filter', 'data-tag'), (s) => s.alpha === true,
        { what: '#tag-filter alpha checked after reload' });
      for (const [k, v] of Object.entries(st)) if (k !== 'alpha') assert.equal(v, false, `tag checkbox ${k} after reload`);
    },
    more: moreEntries,
  });
});

e2e('3b. level filter restricts live and history to the chosen levels', async (ctx) => {
  await filterTest(ctx, {
    apply: (page) => setFilterChecks(page, '#level-filter', 'data-level', ['ERROR', 'WARN']),
    filter: { levels: ['ERROR', 'WARN'] },
    urlCheck: (p) => (p.levels || '').split(',').sort().join(',') === 'ERROR,WARN',
    controlsCheck: async (page) => {
      const st = await waitFor(() => checkState(page, '#level-filter', 'data-level'), (s) => s.ERROR && s.WARN,
        { what: '#level-filter ERROR and WARN checked after reload' });
      for (const l of ['TRACE', 'DEBUG', 'INFO', 'FATAL', '*']) assert.equal(st[l], false, `level checkbox ${l} after reload`);
    },
    more: moreEntries,
  });
});

e2e('3c. text search (after a pause or on Enter) restricts live and history to matching messages, case-insensitively', async (ctx) => {
  await filterTest(ctx, {
    apply: async (page, server, S) => {
      // Typing applies by itself after a pause (~300 ms), without Enter...
      await page.fill('#search', 'plain');
      await waitListEquals(page, await queryAll(server, { service: S, text: 'plain' }), { what: 'list after typing "plain" (no Enter)' });
      // ...and Enter applies at once: the value is set without an input event, so only Enter can apply it.
      await page.$eval('#search', (el) => { el.value = 'nEeDlE'; });
      await page.press('#search', 'Enter');
    },
    filter: { text: 'nEeDlE' },
    urlCheck: (p) => p.q === 'nEeDlE',
    controlsCheck: async (page) => {
      await waitFor(() => page.inputValue('#search'), (v) => v === 'nEeDlE', { what: '#search value after reload' });
    },
    more: moreEntries,
  });
});

// ------------------------------------------------------------------ 4

/** The list's ids after a click, once it has changed from `prev` and settled. */
async function settledAfter(page, prev, what) {
  let last = null;
  let stable = 0;
  let c;
  await waitFor(
    async () => {
      c = await collectRows(page);
      const sig = ids(c.rows).join(',');
      stable = sig === last ? stable + 1 : 0;
      last = sig;
      // What a time-out reports: the ids shown (first..last) and the notice line.
      const notice = await page.evaluate(() => document.querySelector('#notice')?.textContent?.trim() || '');
      return { shown: c.rows.length ? `${c.rows[0].id}..${c.rows.at(-1).id} (${c.rows.length} rows)` : 'none', notice, settled: sig !== prev && sig !== '' && stable >= 1 };
    },
    (v) => v.settled,
    { timeout: 15000, interval: 300, what },
  );
  assert.deepEqual(c.problems, [], `${what}: ordering/duplicate problems`);
  return c.rows;
}

const disabled = (page, sel) => page.$eval(sel, (b) => b.disabled || b.getAttribute('aria-disabled') === 'true');

e2e('4. paging: #older/#newer move through history, #total shows the count', async ({ t, server, page }) => {
  const S = uniqueService('paging');
  // More than the live window (the viewer backfills the newest 1000 when it
  // opens) and more than a page, so #older has history to page through
  // whatever the window and page sizes are.
  const N = 1250;
  const entries = Array.from({ length: N }, (_, i) => ({
    service: S, level: LEVELS[i % 6], message: `paged entry ${String(i + 1).padStart(4, '0')}`, tags: ['page'],
  }));
  await pushHttp(server, entries);
  const all = await queryAll(server, { service: S });
  assert.equal(all.length, N);
  const byId = new Map(all.map((r) => [r.id, r]));

  await openViewer(page, server, `/?service=${encodeURIComponent(S)}`);
  await waitConnected(page);
  await waitFor(() => lastId(page), (v) => v === all[N - 1].id, { what: '__taillight.lastId() to be the newest id' });
  const liveRows = (await collectRows(page, { toBottom: true })).rows;
  assert.ok(liveRows.length > 0, 'live list is empty');
  assert.equal(liveRows[liveRows.length - 1].id, all[N - 1].id, 'live list ends with the newest entry');

  // Older, until the oldest page.
  const pages = [];
  let prev = ids(liveRows).join(',');
  for (let guard = 0; guard < 20; guard++) {
    if (await disabled(page, '#older')) break;
    await page.click('#older');
    const rows = await settledAfter(page, prev, `the list to change after clicking #older (page ${pages.length + 1})`);
    assert.equal(await mode(page), 'history', 'body[data-mode] after #older');
    pages.push(rows);
    prev = ids(rows).join(',');
    if (rows[0].id === all[0].id) {
      // On the oldest page #older has nothing more to do: disabled, or a click changes nothing.
      await sleep(300);
      if (!(await disabled(page, '#older'))) {
        await page.click('#older');
        await sleep(1500);
        const after = await collectRows(page);
        assert.deepEqual(ids(after.rows), ids(rows), '#older on the oldest page changed the list');
      }
      break;
    }
  }
  t.diagnostic(`live window ${liveRows.length} rows; history pages: ${pages.map((p) => `${p[0].id}..${p[p.length - 1].id}`).join(' | ')}`);
  assert.ok(pages.length >= 2, `expected at least 2 history pages for ${N} entries, got ${pages.length}`);
  for (const [i, p] of pages.entries()) {
    for (let k = 1; k < p.length; k++) assert.equal(p[k].id, p[k - 1].id + 1, `page ${i + 1} is not contiguous at ${p[k - 1].id}`);
    assertRowsMatchRecords(p, p.map((r) => byId.get(r.id)), `page ${i + 1} row`);
    if (i > 0) assert.ok(p[p.length - 1].id < pages[i - 1][0].id, `page ${i + 1} is not older than page ${i}`);
  }
  const sizes = pages.map((p) => p.length);
  for (let i = 0; i < sizes.length - 1; i++) assert.equal(sizes[i], sizes[0], `page sizes ${sizes} (only the oldest may be short)`);
  const union = new Set([...liveRows, ...pages.flat()].map((r) => r.id));
  assert.equal(union.size, N, 'live window and history pages together cover every entry');
  assert.equal(pages[pages.length - 1][0].id, all[0].id, 'the last page reached holds the oldest entry');

  const totalText = (await page.textContent('#total')) ?? '';
  const numbers = (totalText.replace(/(\d)[,\u202f\u00a0 ](?=\d{3}\b)/g, '$1').match(/\d+/g) || []).map(Number);
  assert.ok(numbers.includes(N), `#total is "${totalText}", expected it to show ${N}`);

  // Newer, back through the same pages.
  for (let i = pages.length - 2; i >= 0; i--) {
    assert.ok(!(await disabled(page, '#newer')), `#newer disabled on page ${i + 2}`);
    await page.click('#newer');
    const rows = await settledAfter(page, prev, `the list to change after clicking #newer (to page ${i + 1})`);
    assert.deepEqual(ids(rows), ids(pages[i]), `#newer shows page ${i + 1} again`);
    prev = ids(rows).join(',');
  }

  await page.click('#live');
  await waitFor(() => mode(page), (m) => m === 'live', { what: 'body[data-mode=live] after #live' });
  await pushCli(server, { service: S, level: 'error', messages: ['after paging'] });
  await waitFor(() => domRows(page), (rows) => rows.some((r) => r.msg === 'after paging'),
    { what: 'a new entry to show live after #live' });
});

e2e('4b. paging works with large messages (30 KB each; the server allows 64 KiB)', async ({ server, page }) => {
  const S = uniqueService('paging-big');
  const big = 'z'.repeat(30000);
  const N = 1300;
  for (let i = 0; i < N; i += 100) {
    await pushHttp(server, Array.from({ length: 100 }, (_, k) => ({ service: S, level: 'error', message: `big ${String(i + k + 1).padStart(4, '0')} ${big}` })));
  }
  const all = await queryAll(server, { service: S });
  await openViewer(page, server, `/?service=${encodeURIComponent(S)}`);
  await waitConnected(page);
  await waitFor(() => lastId(page), (v) => v === all[N - 1].id, { what: 'the newest entry' });
  const firstLive = await page.evaluate(() => Math.min(...[...document.querySelectorAll('#log-list .row[data-id]')].map((r) => Number(r.dataset.id))));
  assert.ok(!(await disabled(page, '#older')), '#older is disabled with older entries in history');
  const before = ids((await collectRows(page)).rows).join(',');
  await page.click('#older');
  const rows = await settledAfter(page, before, 'the list to change after clicking #older');
  assert.equal(await mode(page), 'history');
  assert.ok(rows.length > 0 && rows[rows.length - 1].id < firstLive, `the older page ${rows[0]?.id}..${rows.at(-1)?.id} is not older than the live window (from ${firstLive})`);
  for (const r of rows) assert.equal(r.msg, byIdMsg(all, r.id), `row ${r.id} message`);
});

function byIdMsg(all, id) {
  return all.find((r) => r.id === id)?.message;
}

// ------------------------------------------------------------------ 5

e2e('5. a URL with service, levels, tags, q and paused=1 restores the view', async ({ server, page }) => {
  const S = uniqueService('url');
  await pushHttp(server, dataset(S, 36));
  await pushHttp(server, dataset(uniqueService('url-other'), 6));
  const filter = { service: S, levels: ['ERROR', 'WARN'], tags: ['alpha', 'beta'], text: 'needle' };
  const expected = await queryAll(server, filter);
  assert.ok(expected.length >= 2, `data set gives ${expected.length} matches`);

  const q = new URLSearchParams({ service: S, levels: 'ERROR,WARN', tags: 'alpha,beta', q: 'needle', paused: '1' });
  await openViewer(page, server, `/?${q}`);

  await waitFor(() => page.inputValue('#service-select'), (v) => v === S, { what: `#service-select value ${S}` });
  const lv = await waitFor(() => checkState(page, '#level-filter', 'data-level'), (s) => s.ERROR && s.WARN,
    { what: '#level-filter ERROR and WARN checked' });
  for (const l of ['TRACE', 'DEBUG', 'INFO', 'FATAL', '*']) assert.equal(lv[l], false, `level checkbox ${l}`);
  const tg = await waitFor(() => checkState(page, '#tag-filter', 'data-tag'), (s) => s.alpha && s.beta,
    { what: '#tag-filter alpha and beta checked' });
  for (const [k, v] of Object.entries(tg)) if (k !== 'alpha' && k !== 'beta') assert.equal(v, false, `tag checkbox ${k}`);
  assert.equal(await page.inputValue('#search'), 'needle', '#search value');
  assert.equal(await mode(page), 'paused', 'body[data-mode]');

  const rows = await waitListEquals(page, expected, { what: 'rows restored from the URL' });
  assertRowsMatchRecords(rows, expected, 'restored row');

  // Still paused: a new matching entry is not shown, and the URL kept every parameter.
  await pushCli(server, { service: S, level: 'error', tags: ['alpha'], messages: ['needle pushed while paused'] });
  await sleep(1500);
  assert.ok(!(await domRows(page)).some((r) => r.msg === 'needle pushed while paused'), 'a paused view shows a new entry');
  const p = await urlParams(page);
  assert.equal(p.service, S);
  assert.equal((p.levels || '').split(',').sort().join(','), 'ERROR,WARN');
  assert.equal((p.tags || '').split(',').sort().join(','), 'alpha,beta');
  assert.equal(p.q, 'needle');
  assert.equal(p.paused, '1');
});

// ------------------------------------------------------------------ 6

test('6. connection: server killed -> reconnecting/offline; restarted on the same port -> connected, nothing lost or doubled', { timeout: 150000 }, async (t) => {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'taillight-e2e-conn-'));
  let server = await startServer({ port, dataDir });
  let browser;
  try {
    assert.ok(await viewerServed(server), `the viewer is not served at ${server.url}/`);
    browser = await openBrowser();
    const { page } = browser;
    const S = uniqueService('conn');
    await pushCli(server, { service: S, level: 'info', messages: ['before 1', 'before 2', 'before 3'] });
    await openViewer(page, server, `/?service=${encodeURIComponent(S)}`);
    await waitConnected(page);
    await waitListEquals(page, await queryAll(server, { service: S }), { what: 'list before the kill' });

    await server.kill('SIGKILL');
    const down = await waitFor(() => connState(page), (s) => s === 'reconnecting' || s === 'offline',
      { timeout: 15000, what: '#conn to leave "connected" after SIGKILL' });
    t.diagnostic(`#conn after SIGKILL: ${down}`);
    await sleep(2000);
    const stillDown = await connState(page);
    assert.ok(stillDown === 'reconnecting' || stillDown === 'offline', `#conn while the server is down: ${stillDown}`);

    server = await startServer({ port, dataDir });
    assert.equal(server.port, port, 'restarted on the same port');
    const stateAtPush = await connState(page);
    await pushCli(server, { service: S, level: 'error', tags: ['back'], messages: ['while reconnecting 1', 'while reconnecting 2'] });
    t.diagnostic(`#conn when the first entries were pushed after the restart: ${stateAtPush}`);
    await waitConnected(page, 45000);
    await pushCli(server, { service: S, level: 'warn', messages: ['after reconnect 1', 'after reconnect 2'] });

    const expected = await queryAll(server, { service: S });
    assert.equal(expected.length, 7);
    const rows = await waitListEquals(page, expected, { what: 'list after reconnecting', timeout: 20000 });
    assertRowsMatchRecords(rows, expected, 'row after reconnect');
    await sleep(1500);
    const again = await collectRows(page, { toBottom: true });
    assert.deepEqual(again.problems, []);
    assert.deepEqual(ids(again.rows), ids(expected), 'no duplicates 1.5 s later');
    assert.equal(await heldRows(page), expected.length, '__taillight.rows()');
    assert.equal(await connState(page), 'connected');
  } catch (e) {
    if (browser) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await browser.page.screenshot({ path: join(ARTIFACTS, '6_connection.png') }).catch(() => {});
      if (browser.errors.length) t.diagnostic(`page errors: ${short(browser.errors)}`);
    }
    throw e;
  } finally {
    if (browser) await browser.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ 7

e2e('7. XSS: markup in a message, tag or attribute is shown as text and never runs', async ({ server, page }) => {
  const S = uniqueService('xss');
  const evil = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';
  const evilAttr = '<img src=y onerror="window.__xss=3">';
  const evilTag = '<svg onload="window.__xss=4">';
  await pushCli(server, { service: S, level: 'error', tags: [evilTag], attrs: { note: evilAttr }, messages: [evil] });
  await openViewer(page, server, `/?service=${encodeURIComponent(S)}`);
  await waitConnected(page);
  const [rec] = await queryAll(server, { service: S });
  const rows = await waitListEquals(page, [rec], { what: 'the list with the XSS entry' });
  assert.equal(rows[0].msg, evil, '.msg shows the message as literal text');
  assert.ok(rows[0].tags?.includes(evilTag), `.tags shows the tag as literal text, got "${rows[0].tags}"`);

  const row = `.row[data-id="${rec.id}"]`;
  await page.click(`${row} .msg`);
  await waitFor(() => page.getAttribute(row, 'aria-expanded'), (v) => v === 'true', { what: 'the row to expand on click' });
  const attrs = await page.$$eval(`${row} .details .attr`, (els) => els.map((e) => e.textContent));
  assert.ok(attrs.some((a) => a.includes(`note=${evilAttr}`)), `.attr shows the attribute as text, got ${short(attrs)}`);

  // Live, too: the same entry pushed while the page is open.
  await pushCli(server, { service: S, level: 'warn', messages: [evil] });
  await waitFor(() => domRows(page), (rs) => rs.filter((r) => r.msg === evil).length === 2, { what: 'the live XSS row' });

  await sleep(1000); // an onerror would have fired by now
  const injected = await page.evaluate(() => ({
    xss: window.__xss,
    img: document.querySelectorAll('#log-list img').length,
    script: document.querySelectorAll('#log-list script').length,
    svg: document.querySelectorAll('#log-list svg[onload], #tag-filter svg[onload]').length,
  }));
  assert.equal(injected.xss, undefined, 'window.__xss was set: injected markup ran');
  assert.equal(injected.img, 0, 'an <img> was injected into the list');
  assert.equal(injected.script, 0, 'a <script> was injected into the list');
  assert.equal(injected.svg, 0, 'an <svg onload> was injected');
});

// ------------------------------------------------------------------ 8

e2e('8. permalink ?service=X&entry=ID opens that entry highlighted, with its neighbours', async ({ t, server, page }) => {
  const S = uniqueService('perma');
  const N = 300;
  await pushHttp(server, Array.from({ length: N }, (_, i) => ({
    service: S, level: LEVELS[i % 6], message: `perma entry ${String(i + 1).padStart(4, '0')}`,
    tags: ['perma'], attributes: { n: String(i + 1) },
  })));
  const all = await queryAll(server, { service: S });
  const target = all[119]; // deep in history, far from the live end
  const row = `.row[data-id="${target.id}"]`;

  await openViewer(page, server, `/?service=${encodeURIComponent(S)}&entry=${target.id}`);
  await page.waitForSelector(row, { timeout: 15000 });
  const st = await waitFor(
    () => page.$eval(row, (r) => ({ expanded: r.getAttribute('aria-expanded'), selected: r.getAttribute('aria-selected') })),
    (s) => s.expanded === 'true' || s.selected === 'true',
    { what: `row ${target.id} to be selected or expanded` },
  );
  t.diagnostic(`permalinked row: aria-expanded=${st.expanded} aria-selected=${st.selected}; mode=${await mode(page)}`);

  // In view inside the list.
  const vis = await page.evaluate((sel) => {
    const list = document.querySelector('#log-list').getBoundingClientRect();
    const r = document.querySelector(sel).getBoundingClientRect();
    return { top: r.top, bottom: r.bottom, listTop: list.top, listBottom: list.bottom };
  }, row);
  assert.ok(vis.bottom > vis.listTop && vis.top < vis.listBottom, `row ${target.id} is not in view: ${short(vis)}`);

  // Neighbours on both sides, contiguous and in order.
  const shown = await domRows(page);
  const sid = ids(shown);
  for (const d of [-2, -1, 1, 2]) {
    const nb = all[119 + d];
    const r = shown.find((x) => x.id === nb.id);
    assert.ok(r, `neighbour ${nb.id} (${d > 0 ? '+' : ''}${d}) is not rendered; rendered ids: ${sid.join(',')}`);
    assert.equal(r.msg, nb.message, `neighbour ${nb.id} message`);
  }
  for (let i = 1; i < sid.length; i++) assert.equal(sid[i], sid[i - 1] + 1, `rendered ids around the permalink are not contiguous: ${sid.join(',')}`);

  // The expanded entry's details and its own permalink.
  if ((await page.getAttribute(row, 'aria-expanded')) !== 'true') await page.click(`${row} .msg`);
  await waitFor(() => page.getAttribute(row, 'aria-expanded'), (v) => v === 'true', { what: `row ${target.id} expanded` });
  const attrs = await page.$$eval(`${row} .details .attr`, (els) => els.map((e) => e.textContent.trim()));
  assert.ok(attrs.includes('n=120'), `.details .attr shows n=120, got ${short(attrs)}`);
  const href = await page.$eval(`${row} .details .permalink`, (a) => a.href);
  const u = new URL(href);
  assert.equal(u.searchParams.get('service'), S, `.permalink href ${href}: service`);
  assert.equal(u.searchParams.get('entry'), String(target.id), `.permalink href ${href}: entry`);

  // Round trip from the live view: a row's .permalink opens that row.
  await openViewer(page, server, `/?service=${encodeURIComponent(S)}`);
  await waitConnected(page);
  const newest = all[N - 1];
  const nrow = `.row[data-id="${newest.id}"]`;
  await page.waitForSelector(nrow);
  await page.click(`${nrow} .msg`);
  await waitFor(() => page.getAttribute(nrow, 'aria-expanded'), (v) => v === 'true', { what: 'newest row expands on click' });
  const href2 = await page.$eval(`${nrow} .details .permalink`, (a) => a.href);
  await page.goto(href2);
  await page.waitForSelector(nrow, { timeout: 15000 });
  await waitFor(() => page.$eval(nrow, (r) => r.getAttribute('aria-expanded') === 'true' || r.getAttribute('aria-selected') === 'true'),
    Boolean, { what: `row ${newest.id} highlighted after following its .permalink (${href2})` });
});

e2e('8b. "Show context" on a filtered row opens its service around it, filters cleared; #older and #newer page on', async ({ server, page }) => {
  const S = uniqueService('ctx');
  const O = uniqueService('ctx-other');
  const N = 240;
  // Every tenth entry of S is an ERROR; another service interleaved.
  await pushHttp(server, Array.from({ length: N }, (_, i) => [
    { service: S, level: i % 10 === 0 ? 'error' : 'info', message: `ctx ${String(i).padStart(3, '0')}` },
    { service: O, level: 'error', message: `other ${i}` },
  ]).flat());
  const all = await queryAll(server, { service: S });
  const at = (n) => all.find((r) => r.message === `ctx ${String(n).padStart(3, '0')}`);
  const target = at(120);

  await openViewer(page, server, `/?service=${encodeURIComponent(S)}&levels=ERROR&history=1`);
  const row = `.row[data-id="${target.id}"]`;
  await page.waitForSelector(row, { timeout: 15000 });
  assert.ok(!(await domRows(page)).some((r) => /ctx 121/.test(r.msg)), 'the filter shows only ERRORs');
  await page.click(`${row} .msg`);
  await page.click(`${row} .details button.context`);

  // The entry among its service's lines of every level, highlighted.
  const shown = await waitFor(() => domRows(page), (rs) => rs.some((r) => r.msg === 'ctx 121') && rs.some((r) => r.msg === 'ctx 119'),
    { what: 'the neighbours of every level around the entry' });
  assert.ok(shown.every((r) => r.msg.startsWith('ctx ')), `only the entry's service: ${short(shown.map((r) => r.msg))}`);
  const { rows: held } = await collectRows(page);
  const msgs = held.map((r) => r.msg);
  assert.ok(msgs.every((m) => m.startsWith('ctx ')), `only the entry's service: ${short(msgs)}`);
  assert.deepEqual(msgs, msgs.slice().sort(), 'in order');
  assert.ok(msgs.includes('ctx 070') && msgs.includes('ctx 170') && !msgs.includes('ctx 171'), `50 a side: ${msgs[0]}..${msgs.at(-1)}`);
  const u = await urlParams(page);
  assert.equal(u.entry, String(target.id), `the URL names the entry: ${short(u)}`);
  assert.equal(u.levels, undefined, `the level filter is cleared: ${short(u)}`);
  await waitFor(() => page.$eval(row, (r) => r.classList.contains('highlight')), Boolean, { what: 'the entry highlighted' });

  // Further down, then further up.
  await waitFor(() => page.isEnabled('#newer'), Boolean, { what: '#newer enabled in the context view' });
  await page.click('#newer');
  await waitFor(() => domRows(page), (rs) => rs.some((r) => r.msg === 'ctx 171'), { what: 'the page after the context' });
  const { rows: later } = await collectRows(page);
  assert.equal(later[0].msg, 'ctx 171', 'the next page starts right after the context');
  assert.equal(await mode(page), 'history');
  await page.click('#older');
  await waitFor(() => domRows(page), (rs) => rs.some((r) => r.msg === 'ctx 170'), { what: 'the page before' });
});

// ------------------------------------------------------------------ 9

e2e('9. scrolled up, new entries show "N new" in #new-badge; clicking it returns to the live bottom', async ({ server, page }) => {
  const S = uniqueService('badge');
  await pushHttp(server, Array.from({ length: 200 }, (_, i) => ({ service: S, level: 'info', message: `backlog ${i + 1}` })));
  await openViewer(page, server, `/?service=${encodeURIComponent(S)}`);
  await waitConnected(page);
  await waitFor(() => lastId(page), (v) => v === 200, { what: 'the backlog' });
  assert.ok(await page.isHidden('#new-badge'), '#new-badge is shown while following the bottom');

  await page.evaluate(() => { document.querySelector('#log-list').scrollTop = 0; });
  await sleep(300);
  const firstInView = () => page.evaluate(() => {
    const list = document.querySelector('#log-list');
    const top = list.getBoundingClientRect().top;
    const rows = [...list.querySelectorAll('.row[data-id]')].filter((r) => r.getBoundingClientRect().bottom > top + 1);
    rows.sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top);
    return { id: Number(rows[0]?.dataset.id), scrollTop: list.scrollTop };
  });
  const topBefore = await firstInView();
  await pushCli(server, { service: S, level: 'warn', messages: ['new 1', 'new 2', 'new 3', 'new 4', 'new 5'] });
  await waitFor(() => lastId(page), (v) => v === 205, { what: 'the 5 new entries to arrive' });
  const badge = await waitFor(() => page.evaluate(() => {
    const b = document.querySelector('#new-badge');
    return { hidden: b.hidden || getComputedStyle(b).display === 'none', text: b.textContent.trim() };
  }), (b) => !b.hidden && /\b5 new\b/.test(b.text), { what: '#new-badge to show "5 new"' });
  assert.match(badge.text, /\b5 new\b/);
  const rowsUp = await domRows(page);
  assert.ok(!rowsUp.some((r) => r.msg === 'new 5'), 'the view jumped to the new entries while scrolled up');
  assert.deepEqual(await firstInView(), topBefore, 'the rows in view moved while scrolled up');

  await page.click('#new-badge');
  await waitFor(() => shownAboveListBottom(page, 'new 5'), Boolean, {
    what: 'the newest row to be in view after clicking #new-badge',
  });
  await waitFor(() => page.isHidden('#new-badge'), Boolean, { what: '#new-badge to hide after clicking it' });
  // Following the bottom again: the next entry shows without scrolling.
  await pushCli(server, { service: S, level: 'error', messages: ['after badge'] });
  await waitFor(() => shownAboveListBottom(page, 'after badge'), Boolean, {
    what: 'a new entry to show at the bottom after returning to live',
  });
  assert.ok(await page.isHidden('#new-badge'), '#new-badge shown again while following the bottom');
});

// ------------------------------------------------------------------ 10

/** A counter from the server's /metrics (sum over its label sets), or 0. */
/** Whether the row with message `msg` starts above the list's bottom edge. */
async function shownAboveListBottom(page, msg) {
  const rows = await domRows(page);
  const box = await page.evaluate(() => document.querySelector('#log-list').getBoundingClientRect().bottom);
  const row = rows.find((r) => r.msg === msg);
  return Boolean(row && row.top < box);
}

async function metric(server, name) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(name) && /^[a-z_]+(\{[^}]*\})? /.test(line)) sum += Number(line.split(' ').pop());
  }
  return sum;
}

e2e('10. a tail that falls behind shows .gap-marker; button.load-gap fills it, each entry once, in order', async ({ t, server, page }) => {
  const S = uniqueService('gap');
  await pushCli(server, { service: S, level: 'info', messages: ['before the burst'] });
  await openViewer(page, server, `/?service=${encodeURIComponent(S)}`);
  await waitConnected(page);
  await waitFor(() => lastId(page), (v) => v === 1, { what: 'the first entry' });

  // Stall the page's main thread so it stops reading its stream, and push
  // ~30 MB in 50 commits: once the socket buffers are full the server's
  // per-stream queue (--tail-buffer 1) overflows and it sends a `skipped`
  // notice instead. At 6 KB a message, 1000 of them would not fit in one
  // response (the server's limit is 4 MiB), as a gap loader must cope with.
  const big = 'x'.repeat(6000);
  const stall = page.evaluate(() => { const end = Date.now() + 8000; while (Date.now() < end); }).catch(() => {});
  await sleep(200);
  for (let b = 0; b < 50; b++) {
    await pushHttp(server, Array.from({ length: 100 }, (_, i) => ({ service: S, level: 'warn', message: `burst ${b * 100 + i + 1} ${big}` })));
  }
  await stall;
  const skipped = await metric(server, 'taillight_tail_skipped');
  t.diagnostic(`server skipped-records metric: ${skipped}`);
  if (!skipped) {
    t.skip('the server did not skip anything for this stream (could not provoke a slow subscriber)');
    return;
  }
  const gap = await waitFor(() => page.evaluate(() => [...document.querySelectorAll('.gap-marker')].map((g) => ({
    first: Number(g.dataset.first), last: Number(g.dataset.last), count: Number(g.dataset.count), button: !!g.querySelector('button.load-gap'),
  }))), (gs) => gs.length > 0, { timeout: 30000, what: 'a .gap-marker after the server skipped records', interval: 300 });
  t.diagnostic(`gap markers: ${short(gap)}`);
  for (const g of gap) {
    assert.ok(g.button, 'a .gap-marker without button.load-gap');
    assert.equal(g.count, g.last - g.first + 1, `data-count of ${short(g)} (one service: the skipped ids are consecutive)`);
  }
  // The stream goes on after the hole.
  await pushCli(server, { service: S, level: 'error', messages: ['after the burst'] });
  const all = await queryAll(server, { service: S });
  assert.equal(all.length, 5002);
  await waitFor(() => lastId(page), (v) => v === all[all.length - 1].id, { timeout: 30000, what: 'the stream to deliver the entry pushed after the burst' });
  // Nothing skipped silently: every entry is either held or counted by a marker.
  const held = await page.evaluate(() => ({ rows: window.__taillight.rows(), missing: window.__taillight.missing() }));
  assert.equal(held.rows + held.missing, all.length, `rows held (${held.rows}) plus rows the markers count (${held.missing})`);

  // Load every gap, then the list holds every entry exactly once. The marker
  // sits just above the entry pushed after the burst, at the live bottom.
  const loadGap = page.locator('.gap-marker button.load-gap').first();
  for (let guard = 0; guard < 20 && (await heldRows(page)) < all.length; guard++) {
    if (await loadGap.count()) await loadGap.click({ timeout: 5000 }).catch(() => {}); // re-rendered meanwhile: try again
    await sleep(1000);
  }
  await waitFor(() => page.evaluate(() => ({
    rows: window.__taillight.rows(),
    markers: document.querySelectorAll('.gap-marker').length,
    notice: document.querySelector('#notice')?.textContent?.trim() || '',
  })), (v) => v.rows === all.length && v.markers === 0, { timeout: 30000, what: `the gap to be filled (${all.length} rows, no .gap-marker)` });
  assert.equal(await heldRows(page), all.length, '__taillight.rows() after filling the gaps');
  const rows = await waitListEquals(page, all, { what: 'list after loading the gaps', timeout: 60000 });
  assert.deepEqual(msgs(rows), all.map((r) => r.message), 'messages after loading the gaps');
}, { server: { args: ['--tail-buffer', '1'] }, timeout: 180000 });

// ------------------------------------------------------------------ 11

/** Click a#download and read the file the browser saved. */
async function download(page, format) {
  await page.selectOption('#download-format', format);
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 15000 }), page.click('#download')]);
  const failure = await dl.failure();
  assert.equal(failure, null, `the ${format} download failed`);
  return { name: dl.suggestedFilename(), text: readFileSync(await dl.path(), 'utf8') };
}

/** RFC 4180 rows (quoted cells, doubled quotes, CRLF after each row). */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(cell); cell = ''; }
    else if (c === '\r' && text[i + 1] === '\n') { row.push(cell); rows.push(row); row = []; cell = ''; i++; }
    else cell += c;
  }
  assert.ok(!quoted && cell === '' && row.length === 0, `the CSV ends inside a row: ${short(text.slice(-200))}`);
  return rows;
}

e2e('11. Download saves the entries of the current view (service, level, text, time range) as NDJSON and CSV', async ({ server, page, browser }) => {
  const S = uniqueService('download');
  const at = (s) => `2024-02-02T10:00:0${s}Z`;
  const entries = [
    { service: S, level: 'ERROR', message: 'needle, with "quotes"\nand a second line', tags: ['db'], attributes: { host: 'a,b' }, time: at(0) },
    { service: S, level: 'WARN', message: 'needle ünïcødé ✓ 日本語', tags: ['db', 'x'], time: at(1) },
    { service: S, level: 'INFO', message: 'needle, but INFO', time: at(2) },
    { service: S, level: 'ERROR', message: 'no match here', time: at(3) },
    { service: S, level: 'WARN', message: 'NEEDLE last', attributes: { n: '5' }, time: at(4) },
  ];
  await pushHttp(server, entries);
  await pushHttp(server, [{ service: uniqueService('elsewhere'), level: 'ERROR', message: 'needle elsewhere' }]);

  await openViewer(page, server, `/?service=${encodeURIComponent(S)}`);
  await waitConnected(page);
  await setFilterChecks(page, '#level-filter', 'data-level', ['ERROR', 'WARN']);
  await page.fill('#search', 'needle');
  await page.press('#search', 'Enter');
  const filter = { service: S, levels: ['ERROR', 'WARN'], text: 'needle' };
  const expected = await queryAll(server, filter);
  assert.deepEqual(expected.map((r) => r.message), [entries[0], entries[1], entries[4]].map((e) => e.message));
  await waitListEquals(page, expected, { what: 'the filtered list before downloading' });

  const nd = await download(page, 'ndjson');
  assert.equal(nd.name, 'taillight-export.ndjson');
  assert.ok(nd.text.endsWith('\n'), 'the NDJSON file ends with a line break');
  assert.deepEqual(nd.text.trimEnd().split('\n').map((l) => JSON.parse(l)), expected, 'NDJSON lines = GET /v1/logs records, oldest first');

  const csv = await download(page, 'csv');
  assert.equal(csv.name, 'taillight-export.csv');
  const rows = parseCsv(csv.text);
  assert.deepEqual(rows[0], ['id', 'time', 'received_time', 'service', 'level', 'message', 'tags', 'attributes', 'trace_id', 'span_id']);
  assert.deepEqual(
    rows.slice(1).map((r) => ({ id: Number(r[0]), time: r[1], receivedTime: r[2], service: r[3], level: r[4], message: r[5], tags: JSON.parse(r[6]), attributes: JSON.parse(r[7]) })),
    expected,
    'CSV rows = GET /v1/logs records, oldest first',
  );

  // A time range narrows the download as it narrows the list: [01, 04) keeps one.
  const from = encodeURIComponent(at(1));
  const to = encodeURIComponent(at(4));
  await openViewer(page, server, `/?service=${encodeURIComponent(S)}&levels=ERROR,WARN&q=needle&range=custom&from=${from}&to=${to}&history=1`);
  await waitListEquals(page, expected.slice(1, 2), { what: 'the list in the custom range', toBottom: false });
  const ranged = await download(page, 'ndjson');
  assert.deepEqual(ranged.text.trimEnd().split('\n').map((l) => JSON.parse(l)), expected.slice(1, 2), 'NDJSON of the custom range');
  assert.deepEqual(browser.errors, [], 'errors on the page (a CSP violation would be one)');
});

// ------------------------------------------------------------------ 12

/** The seed system's page: its WebSocket `onmessage` handler, as it shipped. */
const SEED_PAGE = `<!doctype html><meta charset="utf-8"><title>seed</title>
<label><input type="checkbox" class="log-filter" value="ALL" checked>ALL</label>
<ul id="logs"></ul>
<script>
let isPaused = false;
let currentServiceName = new URLSearchParams(location.hash.slice(1)).get('service');
let selectedTags = ['전체선택'];
function addLogs(logs) {
  for (const l of logs) {
    const li = document.createElement('li');
    li.textContent = l.level + ' ' + l.service_name + ' ' + (l.tag || '-') + ' ' + l.message;
    document.getElementById('logs').appendChild(li);
  }
}
const socket = new WebSocket(new URLSearchParams(location.hash.slice(1)).get('ws'));
window.__socketState = () => socket.readyState;
socket.onmessage = function(event) {
const data = JSON.parse(event.data);
if (data.type === "ping") {
socket.send(JSON.stringify({ type: "pong" }));
return;
}
const selectedLogLevels = Array.from(document.querySelectorAll('.log-filter:checked')).map(cb => cb.value);
if (!isPaused) {
if (data.level && (selectedLogLevels.includes(data.level.toUpperCase()) || selectedLogLevels.includes('ALL'))) {
if (data.service_name == currentServiceName && (selectedTags.includes('전체선택') || selectedTags.includes(data.tag))) {
addLogs([data]);
}
}
}
};
</script>`;

/** A web server on 127.0.0.1 serving `html` at every path, closed when the test ends; its origin. */
async function otherSite(t, html) {
  const site = createHttpServer((_, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html));
  await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => site.close(resolve)));
  return `http://127.0.0.1:${site.address().port}`;
}

e2e('12. the seed page\'s own script reads GET /ws live, answers its pings, and stays connected', async ({ t, server, page, setup }) => {
  const S = uniqueService('seedws');
  const ws = `${server.url.replace('http', 'ws')}/ws?ping=1`;
  const site = `${setup.origin}/`;
  await page.goto(`${site}#service=${encodeURIComponent(S)}&ws=${encodeURIComponent(ws)}`);
  await waitFor(() => page.evaluate(() => window.__socketState()), (s) => s === 1, { what: 'the socket open' });
  const items = () => page.evaluate(() => Array.from(document.querySelectorAll('#logs li')).map((li) => li.textContent));
  await pushHttp(server, [
    { service: S, level: 'error', message: 'payment failed', tags: ['pay'] },
    { service: 'someone-else', level: 'error', message: 'not for this page' },
    { service: S, level: 'info', message: 'order placed' },
  ]);
  await waitFor(items, (l) => l.length === 2, { what: 'two entries on the seed page' });
  assert.deepEqual(await items(), ['ERROR ' + S + ' pay payment failed', 'INFO ' + S + ' - order placed']);
  // Several pings later the page is still connected and still receiving.
  await sleep(3500);
  assert.equal(await page.evaluate(() => window.__socketState()), 1, 'the socket stayed open');
  await pushHttp(server, [{ service: S, level: 'warn', message: 'still here' }]);
  await waitFor(items, (l) => l.length === 3, { what: 'an entry after the pings' });
}, {
  // Served as the seed served it: from its own web server, another origin,
  // which the server refuses unless it is listed.
  server: async (t) => {
    const origin = await otherSite(t, SEED_PAGE);
    return { origin, args: ['--cors-origins', origin] };
  },
});

// ------------------------------------------------------------------ 13

e2e('13. an entry logged inside a trace shows its trace and span ids when expanded', async ({ server, page }) => {
  const S = uniqueService('traced');
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const spanId = '00f067aa0ba902b7';
  await pushHttp(server, [{ service: S, level: 'error', message: 'charge failed', traceId, spanId }]);
  const [rec] = await queryAll(server, { service: S });
  assert.equal(rec.traceId, traceId, 'the gateway returns the trace id');
  const row = `.row[data-id="${rec.id}"]`;
  await openViewer(page, server, `/?service=${encodeURIComponent(S)}&entry=${rec.id}`);
  await page.waitForSelector(row, { timeout: 15000 });
  if ((await page.getAttribute(row, 'aria-expanded')) !== 'true') await page.click(`${row} .msg`);
  await waitFor(() => page.getAttribute(row, 'aria-expanded'), (v) => v === 'true', { what: 'the entry expanded' });
  const fields = await page.$$eval(`${row} .details dl dt`, (dts) => Object.fromEntries(dts.map((dt) => [dt.textContent, dt.nextElementSibling.textContent])));
  assert.equal(fields.trace, traceId);
  assert.equal(fields.span, spanId);
});

// ------------------------------------------------------------------ 14

/**
 * Server options for a server started with --keys-file: the keys named in
 * `specs` ({ name: { scope, services } }) are created first, in a temp dir
 * removed when the test ends; `setup.keys` holds them by name.
 */
function withKeys(specs, args = []) {
  return async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'taillight-e2e-keys-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'keys.toml');
    const keys = {};
    for (const [name, spec] of Object.entries(specs)) keys[name] = await createKey(file, { name, ...spec });
    return { keys, args: ['--keys-file', file, ...args] };
  };
}

/** Whether the key form is open. */
const asking = (page) => page.evaluate(() => {
  const d = document.querySelector('#key-dialog');
  const input = document.querySelector('#api-key');
  return Boolean(d?.open && input && input.getBoundingClientRect().width > 0);
});
const keyError = (page) => page.evaluate(() => {
  const e = document.querySelector('#api-key-error');
  return e && !e.hidden ? e.textContent.trim() : '';
});
const noticeText = (page) => page.evaluate(() => {
  const n = document.querySelector('#notice');
  return n && !n.hidden ? n.textContent.trim() : '';
});
const storedKey = (page) => page.evaluate(() => sessionStorage.getItem('taillight.key'));

/** Type `key` into the open key form and submit it with the button. */
async function enterKey(page, key) {
  await page.waitForSelector('#api-key', { state: 'visible', timeout: 15000 });
  await page.fill('#api-key', key);
  await page.click('#api-key-submit');
}

/** Do `action` (which makes the viewer reload itself) and wait for the reloaded viewer. */
async function reloadedBy(page, action, what) {
  await page.evaluate(() => { window.__beforeReload = true; });
  await action();
  await waitFor(() => page.evaluate(() => window.__beforeReload !== true && typeof window.__taillight?.rows === 'function'),
    Boolean, { what: `the viewer to reload ${what}` });
  await waitViewer(page);
}

e2e('14. with --keys-file the viewer asks for a key: a wrong one is refused, a read key shows entries live and is kept for the session', async ({ server, page, setup }) => {
  const { reader, pusher } = setup.keys;
  const S = uniqueService('keyed');
  await assert.rejects(pushHttp(server, [{ service: S, level: 'info', message: 'no key' }]), /HTTP 401/, 'a push without a key');
  await pushHttp(server, [{ service: S, level: 'info', message: 'before the key', tags: ['k'] }], { key: pusher });

  await openViewer(page, server, `/?service=${encodeURIComponent(S)}`);
  await waitFor(() => asking(page), Boolean, { what: 'the key form (#key-dialog with #api-key) to open' });
  assert.match(await keyError(page), /API key/, '#api-key-error says why a key is asked for');
  assert.ok(await page.isHidden('#forget-key'), '#forget-key shown without a key');
  assert.equal(await heldRows(page), 0, 'rows shown without a key');

  // A wrong key: the server's reason, and the form stays.
  await enterKey(page, `tl_${'A'.repeat(43)}`);
  await waitFor(() => keyError(page), (m) => /not valid/.test(m), { what: '#api-key-error to say the key is not valid' });
  assert.ok(await asking(page), 'the key form closed after a wrong key');
  assert.equal(await storedKey(page), null, 'a wrong key was kept');

  // The read key: the page reloads with it and shows the service live.
  await reloadedBy(page, () => enterKey(page, reader), 'after a valid key');
  await waitConnected(page);
  assert.equal(await asking(page), false, 'the key form is still open with a valid key');
  assert.equal(await storedKey(page), reader, 'sessionStorage taillight.key');
  assert.ok(await page.isVisible('#forget-key'), '#forget-key hidden while a key is kept');
  await waitListEquals(page, await queryAll(server, { service: S }, { key: reader }), { what: 'the list after entering the key' });
  await pushHttp(server, [
    { service: S, level: 'error', message: 'live with a key 1' },
    { service: S, level: 'warn', message: 'live with a key 2' },
  ], { key: pusher });
  const expected = await queryAll(server, { service: S }, { key: reader });
  assert.equal(expected.length, 3);
  assertRowsMatchRecords(await waitListEquals(page, expected, { what: 'the live list with a key' }), expected, 'keyed row');

  // A reload in the same session keeps the key: no form.
  await page.reload({ waitUntil: 'domcontentloaded' });
  await waitViewer(page);
  await waitConnected(page);
  await waitListEquals(page, expected, { what: 'the list after a reload' });
  assert.equal(await asking(page), false, 'the key form opened after a reload');

  // The download link cannot send the key itself: the file is fetched with it.
  const nd = await download(page, 'ndjson');
  assert.equal(nd.name, 'taillight-export.ndjson');
  assert.deepEqual(nd.text.trimEnd().split('\n').map((l) => JSON.parse(l)), expected, 'NDJSON downloaded with the key');
  const csv = await download(page, 'csv');
  assert.equal(csv.name, 'taillight-export.csv');
  assert.equal(parseCsv(csv.text).length, expected.length + 1, 'CSV rows downloaded with the key (with the header)');
  assert.equal(await noticeText(page), '', '#notice after downloading');

  // Forgetting the key asks for one again.
  await reloadedBy(page, () => page.click('#forget-key'), 'after #forget-key');
  await waitFor(() => asking(page), Boolean, { what: 'the key form after #forget-key' });
  assert.equal(await storedKey(page), null, 'sessionStorage taillight.key after #forget-key');
}, { server: withKeys({ reader: { scope: 'read' }, pusher: { scope: 'push' } }) });

// ------------------------------------------------------------------ 15

e2e('15. a key limited to api* lists and shows only api services; asking for another one is refused in #notice', async ({ server, page, setup }) => {
  const { apiReader, pusher } = setup.keys;
  const api = uniqueService('api-x');
  const web = uniqueService('web-y');
  await pushHttp(server, [
    { service: api, level: 'info', message: 'api entry 1' },
    { service: web, level: 'info', message: 'web entry 1' },
    { service: api, level: 'warn', message: 'api entry 2' },
  ], { key: pusher });

  await openViewer(page, server, '/');
  await reloadedBy(page, () => enterKey(page, apiReader), 'after a valid key');
  await waitConnected(page);
  await waitFor(() => urlParams(page), (p) => p.service === api, { what: `the viewer to open ${api}` });
  const options = await page.$$eval('#service-select option', (os) => os.map((o) => o.value));
  assert.deepEqual(options, [api], '#service-select offers only the services the key covers');

  await pushHttp(server, [
    { service: web, level: 'error', message: 'web entry 2' },
    { service: api, level: 'error', message: 'api entry 3' },
  ], { key: pusher });
  const expected = await queryAll(server, { service: api }, { key: apiReader });
  assert.deepEqual(expected.map((r) => r.message), ['api entry 1', 'api entry 2', 'api entry 3']);
  const rows = await waitListEquals(page, expected, { what: `the live list of ${api}` });
  assert.ok(rows.every((r) => r.service?.includes(api)), `a row of another service: ${short(rows)}`);
  // The key reads nothing else, whatever is asked.
  const everything = await queryAll(server, {}, { key: apiReader });
  assert.deepEqual([...new Set(everything.map((r) => r.service))], [api], 'services GET /v1/logs returns to the key');

  // Asked for by name (a shared link, say), the other service is refused: said in #notice, no form.
  await openViewer(page, server, `/?service=${encodeURIComponent(web)}`);
  const notice = await waitFor(() => noticeText(page), (n) => /may not read service/.test(n), { what: '#notice to say the key may not read the service' });
  assert.ok(notice.includes(web), `#notice names the service: ${notice}`);
  assert.equal(await asking(page), false, 'the key form opened for a refused service');
  await sleep(1000);
  assert.ok(!(await domRows(page)).some((r) => r.msg?.startsWith('web entry')), 'a row of the refused service is shown');
}, { server: withKeys({ apiReader: { scope: 'read', services: ['api*'] }, pusher: { scope: 'push' } }) });

// ------------------------------------------------------------------ 16

/**
 * A page on another origin that tries to store entries in the server whose
 * URL its fragment names (#api=URL&service=S), four ways: a no-cors fetch
 * with a text/plain body and two forms (urlencoded and text/plain, the
 * latter shaped as JSON), which a browser sends without asking the server
 * first, and a JSON fetch, which it preflights. Each uses service S-<how>.
 */
const ELSEWHERE_PAGE = `<!doctype html><meta charset="utf-8"><title>elsewhere</title>
<iframe name="sink-url"></iframe><iframe name="sink-text"></iframe>
<form id="f-url" method="POST" target="sink-url" enctype="application/x-www-form-urlencoded">
<input name="service"><input name="level" value="info"><input name="message" value="sent by an urlencoded form"></form>
<form id="f-text" method="POST" target="sink-text" enctype="text/plain"><input id="f-text-field"></form>
<script>
const params = new URLSearchParams(location.hash.slice(1));
const api = params.get('api');
const S = params.get('service');
const entry = (how) => JSON.stringify({ service: S + '-' + how, level: 'info', message: 'sent by ' + how });
const loaded = (name) => new Promise((r) => document.querySelector('iframe[name="' + name + '"]').addEventListener('load', r, { once: true }));
window.__attack = async () => {
  const out = {};
  try {
    const r = await fetch(api + '/v1/logs', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: entry('plain') + '\\n' });
    out.plain = r.type + ' ' + r.status;
  } catch (e) { out.plain = String(e); }
  const fu = document.getElementById('f-url');
  fu.action = api + '/v1/logs';
  fu.elements.service.value = S + '-urlencoded';
  let l = loaded('sink-url');
  fu.submit();
  await l;
  out.urlencoded = 'submitted';
  // text/plain sends name=value as is: a name ending inside a JSON string makes the body JSON.
  const ft = document.getElementById('f-text');
  ft.action = api + '/v1/logs';
  const field = document.getElementById('f-text-field');
  field.name = '{"service":"' + S + '-textform","level":"info","message":"sent by a text/plain form';
  field.value = '"}';
  l = loaded('sink-text');
  ft.submit();
  await l;
  out.textform = 'submitted';
  try {
    const r = await fetch(api + '/v1/logs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: entry('json') });
    out.json = r.status + ' ' + (await r.text());
  } catch (e) { out.json = String(e); }
  return out;
};
</script>`;

/** Runs the other origin's attempts against `server`; returns their outcomes and the services they stored. */
async function attackFromElsewhere({ server, page, setup }, key) {
  const S = uniqueService('csrf');
  // Something stored the proper way, so "nothing stored" is not an empty store.
  await pushHttp(server, [{ service: `${S}-own`, level: 'info', message: 'pushed directly' }], { key: setup.keys?.pusher });
  await page.goto(`${setup.origin}/#api=${encodeURIComponent(server.url)}&service=${encodeURIComponent(S)}`);
  const outcome = await page.evaluate(() => window.__attack());
  await sleep(1000); // anything that got through has been stored by now
  const stored = await queryAll(server, {}, { key });
  const services = [...new Set(stored.map((r) => r.service))].filter((s) => s.startsWith(S)).map((s) => s.slice(S.length + 1)).sort();
  return { outcome, services };
}

/** Server options: a page on another origin (in `setup.origin`), listed in --cors-origins if `listed`; keys if `keys`. */
function elsewhere({ listed = false, keys = false } = {}) {
  return async (t) => {
    const origin = await otherSite(t, ELSEWHERE_PAGE);
    const args = listed ? ['--cors-origins', origin] : [];
    const opts = keys ? await withKeys({ reader: { scope: 'read' }, pusher: { scope: 'push' } }, args)(t) : { args };
    return { ...opts, origin };
  };
}

e2e('16a. a page on another origin stores nothing: no-cors text/plain fetch, forms, JSON fetch', async (ctx) => {
  const { outcome, services } = await attackFromElsewhere(ctx);
  ctx.t.diagnostic(`outcomes: ${short(outcome)}`);
  assert.deepEqual(services, ['own'], 'services stored (other than the one pushed directly)');
  assert.match(outcome.json, /TypeError|Failed to fetch/, 'the JSON fetch is refused at its preflight');
}, { server: elsewhere() });

e2e('16b. with --keys-file, a page on another origin stores nothing either', async (ctx) => {
  const { reader } = ctx.setup.keys;
  const { outcome, services } = await attackFromElsewhere(ctx, reader);
  ctx.t.diagnostic(`outcomes: ${short(outcome)}`);
  assert.deepEqual(services, ['own'], 'services stored (other than the one pushed directly)');
  assert.match(outcome.json, /TypeError|Failed to fetch/, 'the JSON fetch is refused at its preflight');
}, { server: elsewhere({ keys: true }) });

e2e('16c. a page on an origin listed in --cors-origins may store entries (its JSON fetch reads the answer)', async (ctx) => {
  const { outcome, services } = await attackFromElsewhere(ctx);
  ctx.t.diagnostic(`outcomes: ${short(outcome)}`);
  assert.match(outcome.json, /^200 .*"accepted":1/, 'the JSON fetch succeeds and its answer is readable');
  // The same page as in 16a: what kept it out there was its origin. (The
  // urlencoded form is no JSON, so it stores nothing anywhere.)
  assert.deepEqual(services, ['json', 'own', 'plain', 'textform'], 'services stored');
}, { server: elsewhere({ listed: true }) });

// ------------------------------------------------------------------ 17

/** A test CA and a certificate for localhost signed by it, made with openssl. */
function testCertificates(dir) {
  const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=taillight e2e CA');
  ssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext');
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key') };
}

test('17. over TLS (--tls-cert with a test CA) the viewer loads over https and shows entries live', { timeout: 120000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'taillight-e2e-tls-'));
  const certs = testCertificates(dir);
  const server = await startServer({ args: ['--tls-cert', certs.cert, '--tls-key', certs.key] });
  const tls = { url: `https://localhost:${server.port}` };
  const browser = await openBrowser({ ignoreHTTPSErrors: true });
  const { page } = browser;
  try {
    const S = uniqueService('tls');
    await pushCli(tls.url, { service: S, messages: ['before the page'], caCert: certs.ca });
    await openViewer(page, tls, `/?service=${S}`);
    assert.ok(page.url().startsWith('https://'), page.url());
    await waitConnected(page);
    await waitFor(() => domRows(page), (rows) => rows.some((r) => r.msg === 'before the page'),
      { timeout: 15000, what: 'the entry pushed before the page, over https' });
    await pushCli(tls.url, { service: S, messages: ['live over tls'], caCert: certs.ca });
    await waitFor(() => domRows(page), (rows) => rows.some((r) => r.msg === 'live over tls'),
      { timeout: 15000, what: 'the entry pushed live, over https' });
    assert.deepEqual(browser.errors, [], 'page errors');
    // The port answers no plaintext: the page is not served over http.
    await assert.rejects(fetch(`http://127.0.0.1:${server.port}/`), 'plaintext was answered');
  } finally {
    await browser.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ 18

const MINUTE = 60000;

/**
 * Entries at known times: `n` of them `stepMs` apart from `start`, levels
 * cycling through LEVELS shifted by `shift`, "needle" in every third message.
 * Entries whose index `skip` names are left out (empty buckets).
 */
function timedEntries(service, start, n, { stepMs = 5000, shift = 0, skip = () => false } = {}) {
  const out = [];
  for (let i = 0; i < n; i++) {
    if (skip(i)) continue;
    out.push({
      service,
      level: LEVELS[(i + shift) % LEVELS.length],
      message: `${i % 3 === 0 ? 'needle' : 'hay'} at ${i}`,
      time: new Date(start + i * stepMs).toISOString(),
    });
  }
  return out;
}

/** A whole minute some time ago: the data sets of these tests lie after it. */
const pastMinute = (ago = 30) => Math.floor(Date.now() / MINUTE) * MINUTE - ago * MINUTE;

/**
 * The volume chart as drawn: #volume's data-state and data-total, its note,
 * and every bar's span, total and per-level counts (from the data attributes
 * of its segments), with the bar's column on screen.
 */
function chart(page) {
  return page.evaluate(() => {
    const root = document.querySelector('#volume');
    if (!root) return null;
    const note = root.querySelector('.volume-note');
    return {
      state: root.dataset.state ?? null,
      total: Number(root.dataset.total ?? NaN),
      note: note && !note.hidden ? note.textContent : '',
      bars: [...root.querySelectorAll('.bucket')].map((g) => {
        const slot = g.querySelector('.slot').getBoundingClientRect();
        return {
          start: Date.parse(g.dataset.start),
          end: Date.parse(g.dataset.end),
          total: Number(g.dataset.total),
          counts: Object.fromEntries([...g.querySelectorAll('.seg')].map((s) => [s.dataset.level, Number(s.dataset.count)])),
          x: slot.left + slot.width / 2,
          y: slot.top + slot.height / 2,
        };
      }),
    };
  });
}

/** Waits for the chart to be drawn (data-state=ready) with `check` true of it. */
function waitChart(page, check, what, timeout = 15000) {
  return waitFor(() => chart(page), (c) => c?.state === 'ready' && check(c), {
    timeout, interval: 200, what: `the volume chart: ${what}`,
  });
}

/** Per level, the entries of `records` (GET /v1/logs records or pushed entries) within [start, end). */
function countsIn(records, start, end) {
  const counts = {};
  for (const r of records) {
    const t = Date.parse(r.time);
    if (t >= start && t < end) counts[r.level] = (counts[r.level] ?? 0) + 1;
  }
  return counts;
}

/** Every bar shows the per-level counts of `records` in its span, and together they cover them all. */
function assertBarsCount(c, records, what) {
  assert.ok(c.bars.length > 0, `${what}: no bars`);
  for (let i = 1; i < c.bars.length; i++) {
    assert.equal(c.bars[i].start, c.bars[i - 1].end, `${what}: bar ${i} does not start where bar ${i - 1} ends`);
    assert.equal(c.bars[i].end - c.bars[i].start, c.bars[0].end - c.bars[0].start, `${what}: bar ${i} is not as wide as the first`);
  }
  for (const [i, b] of c.bars.entries()) {
    assert.deepEqual(b.counts, countsIn(records, b.start, b.end),
      `${what}: counts of bar ${i} (${new Date(b.start).toISOString()} .. ${new Date(b.end).toISOString()})`);
  }
  assert.equal(c.total, records.length, `${what}: #volume data-total`);
  assert.equal(c.bars.reduce((n, b) => n + b.total, 0), records.length, `${what}: the bars' data-total summed`);
}

/** The gRPC-web GetHistogram calls the page makes, counted from now. */
function histogramCalls(page) {
  const calls = [];
  page.on('request', (r) => {
    if (r.url().endsWith('/GetHistogram')) calls.push(Date.now());
  });
  return calls;
}

/** Two services' entries over ten minutes, 5 s apart, minute 3 of the first left out. */
async function seedTimed(server) {
  const S = uniqueService('vol');
  const S2 = uniqueService('vol-other');
  const start = pastMinute();
  await pushHttp(server, timedEntries(S, start, 120, { skip: (i) => i >= 36 && i < 48 }));
  await pushHttp(server, timedEntries(S2, start, 40, { stepMs: 15000, shift: 2 }));
  return { S, S2, start, records: await queryAll(server, { service: S }), other: await queryAll(server, { service: S2 }) };
}

e2e('18a. the volume chart shows one bar per bucket, stacked by level in the list\'s colours, with the pushed counts', async ({ server, page }) => {
  const { S, records } = await seedTimed(server);
  assert.equal(records.length, 108);
  await openViewer(page, server, `/?service=${encodeURIComponent(S)}`);
  await waitConnected(page);
  const c = await waitChart(page, (c) => c.total === records.length, `${records.length} entries`);
  assertBarsCount(c, records, 'live chart');
  assert.ok(c.bars[0].start <= Date.parse(records[0].time) && c.bars.at(-1).end > Date.parse(records.at(-1).time),
    'the bars span every entry');
  assert.ok(c.bars.some((b) => b.total === 0), 'the left-out minute is an empty bar');

  // The same colour per level as the list's level cells.
  await waitListEquals(page, records, { what: 'the list beside the chart' });
  const colours = await page.evaluate(() => Object.fromEntries(['INFO', 'WARN', 'ERROR', 'DEBUG'].map((l) => {
    const cell = document.querySelector(`#log-list .level.level-${l.toLowerCase()}`);
    const seg = document.querySelector(`#volume .seg[data-level="${l}"]`);
    return [l, { list: cell && getComputedStyle(cell).color, chart: seg && getComputedStyle(seg).fill }];
  })));
  for (const [l, { list, chart: fill }] of Object.entries(colours)) {
    assert.ok(list && fill, `${l}: a list cell and a chart segment exist`);
    assert.equal(fill, list, `${l}: the chart's colour is the list's`);
  }
  const labels = await page.$$eval('#volume .volume-label', (ts) => ts.map((t) => t.textContent));
  assert.ok(labels.length >= 3 && labels.every((l) => /\d\d:\d\d/.test(l)), `time labels on the axis: ${short(labels)}`);

  // Hovering a bar tells its span and counts.
  const k = c.bars.findIndex((b) => Object.keys(b.counts).length >= 2);
  await page.mouse.move(c.bars[k].x, c.bars[k].y);
  const tip = await waitFor(() => page.evaluate(() => {
    const t = document.querySelector('#volume .volume-tip');
    return t && !t.hidden ? [...t.children].map((l) => l.textContent) : null;
  }), Boolean, { what: 'the tooltip over a bar' });
  for (const [level, n] of Object.entries(c.bars[k].counts)) assert.ok(tip.includes(`${level} ${n}`), `tooltip ${short(tip)} has ${level} ${n}`);
  assert.ok(tip.includes(`total ${c.bars[k].total}`), `tooltip ${short(tip)} has the total`);
  assert.match(tip[0], /\d\d:\d\d:\d\d – \d\d:\d\d:\d\d/, 'the tooltip starts with the span');
});

e2e('18b. live: new entries make the chart grow at once and it settles on the server\'s counts, without a request per entry', async ({ t, server, page }) => {
  const S = uniqueService('vol-live');
  await pushHttp(server, Array.from({ length: 30 }, (_, i) => ({ service: S, level: LEVELS[i % 6], message: `before ${i}` })));
  const calls = histogramCalls(page);
  await openViewer(page, server, `/?service=${encodeURIComponent(S)}`);
  await waitConnected(page);
  await waitChart(page, (c) => c.total === 30, '30 entries');
  assert.equal(await mode(page), 'live');

  // 300 entries in 15 pushes over about 3 s.
  const burstAt = Date.now();
  const before = calls.length;
  for (let b = 0; b < 15; b++) {
    await pushHttp(server, Array.from({ length: 20 }, (_, i) => ({ service: S, level: i % 4 ? 'info' : 'error', message: `live ${b}.${i}` })));
    if (b === 0) {
      await waitChart(page, (c) => c.total > 30, 'the total to grow after the first push', 5000);
      // The last fetch was the one that drew the chart, under 4 s ago.
      assert.equal(calls.length - before, 0, 'the chart grew by counting the live records, before fetching again');
    }
    await sleep(200);
  }
  const all = await queryAll(server, { service: S });
  assert.equal(all.length, 330);
  const settled = await waitChart(page, (c) => c.total === 330, 'all 330 entries counted', 20000);
  assertBarsCount(settled, all, 'the chart after the burst');
  await sleep(5000); // any refresh still due has come
  const during = calls.length - before;
  const seconds = (Date.now() - burstAt) / 1000;
  t.diagnostic(`GetHistogram calls in the ${seconds.toFixed(1)} s from the first push: ${during}`);
  assert.ok(during >= 1 && during <= Math.ceil(seconds / 4) + 1,
    `${during} GetHistogram calls in the ${seconds.toFixed(1)} s after 15 pushes (about one per 4 s at most)`);
  assert.equal((await chart(page)).total, 330, 'the total after the last refresh');
  assert.equal(await mode(page), 'live', 'still live');
});

e2e('18c. dragging across the chart sets a custom time range: the controls, the URL, the list and the chart follow', async ({ server, page }) => {
  const { S, records } = await seedTimed(server);
  await openViewer(page, server, `/?service=${encodeURIComponent(S)}`);
  await waitConnected(page);
  const c = await waitChart(page, (c) => c.total === records.length, 'all entries');
  const i = c.bars.findIndex((b) => b.total > 0) + 3;
  const j = i + 5;
  const from = c.bars[i].start;
  const to = c.bars[j].end;
  await page.mouse.move(c.bars[i].x, c.bars[i].y);
  await page.mouse.down();
  await page.mouse.move(c.bars[j].x, c.bars[j].y, { steps: 8 });
  await page.mouse.up();

  const p = await waitFor(() => urlParams(page), (p) => p.range === 'custom', { what: 'range=custom in the URL after the drag' });
  assert.equal(p.from, new Date(from).toISOString(), 'from= is the first dragged bar\'s start');
  assert.equal(p.to, new Date(to).toISOString(), 'to= is the last dragged bar\'s end');
  assert.equal(p.history, '1', 'a time range is a history view');
  assert.equal(await mode(page), 'history');
  assert.equal(await page.inputValue('#range'), 'custom', '#range');
  const local = (ms) => page.evaluate((ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60000).toISOString().slice(0, 19), ms);
  assert.equal(await page.inputValue('#range-start'), await local(from), '#range-start');
  assert.equal(await page.inputValue('#range-end'), await local(to), '#range-end');

  const inRange = records.filter((r) => Date.parse(r.time) >= from && Date.parse(r.time) < to);
  assert.ok(inRange.length > 0 && inRange.length < records.length, `${inRange.length} entries in the range`);
  assertRowsMatchRecords(await waitListEquals(page, inRange, { what: 'the list after the drag' }), inRange, 'row in range');
  const zoomed = await waitChart(page, (c) => c.bars[0]?.start >= from && c.total === inRange.length, 'the chart over the dragged range');
  assertBarsCount(zoomed, inRange, 'the zoomed chart');
  assert.ok(zoomed.bars.at(-1).end <= to, 'the zoomed chart ends with the range');

  // A reload restores the same range.
  await page.reload({ waitUntil: 'domcontentloaded' });
  await waitViewer(page);
  await waitListEquals(page, inRange, { what: 'the list after a reload' });
  await waitChart(page, (c) => c.total === inRange.length, 'the chart after a reload');
});

e2e('18d. clicking a bar jumps the list to the entries of that moment', async ({ server, page }) => {
  const S = uniqueService('vol-jump');
  // 600 entries a second apart: more than a history page, so the page
  // shown is the one the click chose.
  await pushHttp(server, timedEntries(S, pastMinute(), 600, { stepMs: 1000 }));
  const records = await queryAll(server, { service: S });
  await openViewer(page, server, `/?service=${encodeURIComponent(S)}`);
  await waitConnected(page);
  const c = await waitChart(page, (c) => c.total === 600, '600 entries');
  const k = Math.floor(c.bars.length / 2);
  const bar = c.bars[k];
  const inBar = records.filter((r) => Date.parse(r.time) >= bar.start && Date.parse(r.time) < bar.end);
  assert.ok(inBar.length > 0, 'the middle bar has entries');
  await page.mouse.click(bar.x, bar.y);

  await waitFor(() => mode(page), (m) => m === 'history', { what: 'history mode after the click' });
  const p = await waitFor(() => urlParams(page), (p) => p.after !== undefined, { what: 'after= in the URL' });
  assert.equal(Number(p.after), inBar[0].id - 1, 'after= is just before the bar\'s first entry');
  assert.equal(p.range, undefined, 'the time range is kept (all)');
  const first = await waitFor(() => domRows(page), (rows) => rows.length > 0 && rows[0].id === inBar[0].id,
    { what: `the list to start at the bar's first entry ${inBar[0].id}` });
  const listTop = await page.evaluate(() => document.querySelector('#log-list').getBoundingClientRect().top);
  assert.ok(Math.abs(first[0].top - listTop) < 2, 'the bar\'s first entry is at the top of the list');
  const shown = (await collectRows(page)).rows;
  const shownIds = new Set(ids(shown));
  for (const r of inBar) assert.ok(shownIds.has(r.id), `entry ${r.id} of the bar is shown`);
  const byId = new Map(records.map((r) => [r.id, r]));
  assert.ok(shown.every((r) => Date.parse(byId.get(r.id).time) >= bar.start), 'nothing older than the bar is shown');
  assert.ok(shown.length < records.length, 'a page, not everything');
  assert.ok(!(await disabled(page, '#older')), '#older pages on from there');
  assert.equal((await chart(page)).total, 600, 'the chart still shows everything');
});

e2e('18e. the chart counts what the filters select: levels, text, service', async ({ server, page }) => {
  const { S, S2, records, other } = await seedTimed(server);
  await openViewer(page, server, `/?service=${encodeURIComponent(S)}`);
  await waitConnected(page);
  await waitChart(page, (c) => c.total === records.length, 'all entries');

  await setFilterChecks(page, '#level-filter', 'data-level', ['ERROR', 'WARN']);
  const levels = records.filter((r) => ['ERROR', 'WARN'].includes(r.level));
  assertBarsCount(await waitChart(page, (c) => c.total === levels.length, `${levels.length} ERROR and WARN entries`), levels, 'levels ERROR,WARN');

  await page.fill('#search', 'needle');
  await page.press('#search', 'Enter');
  const text = levels.filter((r) => r.message.includes('needle'));
  assert.ok(text.length > 0 && text.length < levels.length);
  assertBarsCount(await waitChart(page, (c) => c.total === text.length, `${text.length} entries with "needle"`), text, 'levels and text');

  await setFilterChecks(page, '#level-filter', 'data-level', '*');
  await page.fill('#search', '');
  await page.press('#search', 'Enter');
  await page.selectOption('#service-select', S2);
  assertBarsCount(await waitChart(page, (c) => c.total === other.length, `${other.length} entries of ${S2}`), other, 'the other service');
});

e2e('18f. a failing histogram call shows a note in the chart and leaves the list alone; the chart recovers', async ({ server, page }) => {
  const S = uniqueService('vol-err');
  await pushHttp(server, Array.from({ length: 12 }, (_, i) => ({ service: S, level: 'warn', message: `entry ${i}` })));
  await page.route('**/GetHistogram', (route) => route.abort());
  await openViewer(page, server, `/?service=${encodeURIComponent(S)}`);
  await waitConnected(page);
  const failed = await waitFor(() => chart(page), (c) => c?.state === 'error', { what: 'the chart to say it failed' });
  assert.match(failed.note, /Volume unavailable/, 'the note in the chart');
  await waitListEquals(page, await queryAll(server, { service: S }), { what: 'the list while the chart fails' });
  assert.equal(await page.evaluate(() => document.querySelector('#notice').hidden), true, '#notice is untouched');
  assert.equal(await connState(page), 'connected');

  await page.unroute('**/GetHistogram');
  await pushHttp(server, [{ service: S, level: 'error', message: 'after the failure' }]);
  await waitFor(() => domRows(page), (rows) => rows.some((r) => r.msg === 'after the failure'), { what: 'the new entry live' });
  await waitChart(page, (c) => c.total === 13 && c.note === '', 'the chart back with 13 entries', 20000);
});

// ------------------------------------------------------------------ 19

e2e('19. a saved view (#save-view) is listed in #views in another browser, opens its filters by URL, and is deleted with its ×', async ({ server, page }) => {
  const S = uniqueService('views');
  await pushHttp(server, [
    { service: S, level: 'error', message: 'boom timeout' },
    { service: S, level: 'info', message: 'fine timeout' },
    { service: S, level: 'error', message: 'boom other' },
  ]);
  await openViewer(page, server, `/?service=${encodeURIComponent(S)}&levels=ERROR&q=timeout&range=24h`);
  await waitFor(() => domRows(page), (rs) => rs.length === 1, { what: 'the filtered view' });
  await page.fill('#view-name', 'errors with timeout');
  await page.click('#save-view button[type=submit]');
  const link = '#views a[data-name="errors with timeout"]';
  await page.waitForSelector(link, { timeout: 15000 });
  const u = new URL(await page.$eval(link, (a) => a.href));
  assert.equal(u.searchParams.get('service'), S, `saved ${u}`);
  assert.equal(u.searchParams.get('levels'), 'ERROR', `saved ${u}`);
  assert.equal(u.searchParams.get('q'), 'timeout', `saved ${u}`);
  assert.equal(u.searchParams.get('range'), '24h', `a relative range stays relative: ${u}`);

  // Another browser, another profile: the view is on the server.
  const other = await openBrowser();
  try {
    await openViewer(other.page, server, `/?service=${encodeURIComponent(S)}`);
    await other.page.waitForSelector(link, { timeout: 15000 });
    await other.page.click(link);
    await waitFor(() => domRows(other.page), (rs) => rs.length === 1 && rs[0].msg === 'boom timeout',
      { what: 'the saved view\'s entries in the other browser' });
    assert.equal((await urlParams(other.page)).q, 'timeout');
    const levels = await checkState(other.page, '#level-filter', 'data-level');
    assert.ok(levels.ERROR && !levels.INFO, `level checks ${short(levels)}`);
    await other.page.click('#views button.delete-view[data-name="errors with timeout"]');
    await waitFor(() => other.page.$$eval('#views li', (els) => els.length), (n) => n === 0, { what: 'the view deleted' });
  } finally {
    await other.close();
  }
  const res = await (await fetch(`${server.url}/v1/views`)).json();
  assert.deepEqual(res.views, [], 'deleted on the server');
});

// ------------------------------------------------------------------ 20

/** A webhook receiver on an ephemeral port that counts what it is sent. */
async function hookReceiver() {
  const got = [];
  const server = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => { got.push(body); res.writeHead(200).end(); });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/hook`, got, close: () => server.close() };
}

const ALERTED = uniqueService('alerted');
let hook;
e2e('20. an alert that fires is listed in #alerts with a link to its rule\'s view', async ({ server, page }) => {
  try {
    await openViewer(page, server, `/?service=${encodeURIComponent(ALERTED)}`);
    assert.ok(await page.isHidden('#alerts'), '#alerts is hidden before any firing');
    await pushHttp(server, [{ service: ALERTED, level: 'error', message: 'card declined' }]);
    await waitFor(() => hook.got.length, (n) => n >= 1, { what: 'the webhook to be called' });
    await page.reload();
    const item = await waitFor(() => page.$$eval('#firings li.firing a', (as) => as.map((a) => ({ text: a.textContent, href: a.href }))),
      (items) => items.length === 1, { what: 'the firing in #alerts', timeout: 40000 });
    assert.equal(item[0].text, 'declined cards');
    const u = new URL(item[0].href);
    assert.equal(u.origin, new URL(server.url).origin, `the link stays on this server: ${u}`);
    assert.equal(u.searchParams.get('service'), ALERTED);
    assert.equal(u.searchParams.get('levels'), 'ERROR,FATAL');
  } finally {
    hook.close();
  }
}, {
  server: async () => {
    hook = await hookReceiver();
    const dir = mkdtempSync(join(tmpdir(), 'tl-alerts-'));
    const file = join(dir, 'alerts.toml');
    writeFileSync(file, `[[alert]]\nname = "declined cards"\nservices = ["${ALERTED}"]\nmin_level = "error"\nwindow = "1m"\nwebhook = "${hook.url}"\n`);
    return { args: ['--alerts-file', file] };
  },
});
