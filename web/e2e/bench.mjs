// Viewer benchmark: `cd web/e2e && node bench.mjs [--runs N] [--rows N] [--seconds N] [--cap N,M] [--only a|b] [--out FILE]`.
// Writes docs/VIEWER_BENCHMARK.md (method, machine, figures) and prints the
// figures as JSON. Two parts, each repeated --runs times (default 3):
//
// (a) Render 100,000 rows. 100k entries are pushed as NDJSON batches over HTTP,
//     then the viewer is opened at /?service=S&cap=100000 in a fresh page, and
//     the time from navigation start until window.__taillight.rows() reaches
//     100000 and two animation frames have passed (the list has painted) is
//     measured in the page. Then the list is scrolled from the bottom to the
//     top one screen per frame, and then by 60 random jumps; frames longer than
//     50 ms are counted (requestAnimationFrame deltas), with Long Tasks.
// (b) Live at 2,000 entries/s for a minute. The viewer is open live on one
//     service (?cap=--cap, default 10000, so the cap is exercised); a node
//     pusher POSTs 200 entries every 100 ms as NDJSON. In the page every
//     requestAnimationFrame gap above 50 ms counts as dropped frames; the JS
//     heap (CDP Performance.getMetrics JSHeapUsedSize) is read at the start,
//     every 10 s, and at the end; rows held are checked against the cap; how
//     far the viewer is behind the server at the end is measured.

import { writeFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { cpus, totalmem, release, platform, loadavg } from 'node:os';
import { execFileSync } from 'node:child_process';
import { basename, join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BIN, CHROMIUM, startServer, pushHttp, openBrowser, openViewer, waitFor, sleep, uniqueService, LEVELS, heldRows, lastId,
} from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const DOC_DEFAULT = join(here, '..', '..', 'docs', 'VIEWER_BENCHMARK.md');

const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : def;
};
const RUNS = opt('runs', 3);
const ROWS = opt('rows', 100000);
const SECONDS = opt('seconds', 60);
const LIVE_CAPS = (argv.includes('--cap') ? argv[argv.indexOf('--cap') + 1] : '10000,50000').split(',').map(Number);
const RATE_BATCH = 200; // entries per push
const RATE_EVERY = 100; // ms between pushes
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : null; // "a" or "b"
const DOC = argv.includes('--out') ? argv[argv.indexOf('--out') + 1] : DOC_DEFAULT; // where the report goes

const stats = (xs) => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return { min: NaN, median: NaN, max: NaN };
  const mid = Math.floor(s.length / 2);
  return { min: s[0], median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, max: s[s.length - 1] };
};
const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const mmm = (xs, d = 0, unit = '') => {
  const s = stats(xs);
  return `${fmt(s.min, d)} / ${fmt(s.median, d)} / ${fmt(s.max, d)}${unit}`;
};
const MB = (b) => b / 1048576;
const log = (...a) => console.error(new Date().toISOString().slice(11, 19), ...a);

function makeEntries(service, n, offset = 0) {
  const tags = [['http'], ['db'], ['cache'], ['auth', 'http'], []];
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    const k = offset + i;
    out[i] = {
      service,
      level: LEVELS[(k * 7) % 6],
      message: `request ${k} GET /v1/orders/${k % 9973} 200 in ${(k * 13) % 250} ms user=${k % 311}`,
      tags: tags[k % tags.length],
      attributes: { n: String(k), host: `web-${k % 4}` },
    };
  }
  return out;
}

async function cdpHeap(cdp) {
  const { metrics } = await cdp.send('Performance.getMetrics');
  const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
  return { used: m.JSHeapUsedSize, total: m.JSHeapTotalSize, nodes: m.Nodes };
}

// ------------------------------------------------------------------ (a)

async function benchRender(server, service, run) {
  const b = await openBrowser();
  const { page } = b;
  try {
    await openViewer(page, server, `/?service=${encodeURIComponent(service)}&cap=${ROWS}`, { timeout: 60000 });
    const r = await page.evaluate(async ({ target, limitMs }) => {
      const frame = () => new Promise((res) => requestAnimationFrame(res));
      let firstRow = null;
      let lastN = -1;
      let lastChange = performance.now();
      for (;;) {
        const n = window.__taillight.rows();
        if (firstRow === null && document.querySelector('#log-list .row[data-id]')) firstRow = performance.now();
        if (n >= target) break;
        if (n !== lastN) {
          lastN = n;
          lastChange = performance.now();
        }
        // Give up when the count has not moved for 30 s, or after limitMs.
        if (performance.now() > limitMs || performance.now() - lastChange > 30000) {
          return { timeout: true, rows: n, at: performance.now(), firstRow };
        }
        await frame();
      }
      const held = performance.now();
      await frame();
      await frame();
      const painted = performance.now();
      performance.mark('taillight-bench-rows-painted');
      return { rows: window.__taillight.rows(), held, painted, firstRow, domRows: document.querySelectorAll('#log-list .row').length };
    }, { target: ROWS, limitMs: 300000 });
    if (r.timeout) throw new Error(`window.__taillight.rows() reached only ${r.rows} of ${ROWS} (stalled or over the limit) at ${Math.round(r.at)} ms after navigation start, with ?cap=${ROWS}`);
    log(`(a) run ${run}: ${r.rows} rows held at ${r.held.toFixed(0)} ms, painted at ${r.painted.toFixed(0)} ms, first row ${r.firstRow?.toFixed(0)} ms, ${r.domRows} .row in DOM`);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    const heap = await cdpHeap(cdp);

    // Scroll test: bottom to top, one screen per frame; then random jumps.
    const scroll = await page.evaluate(async () => {
      const list = document.querySelector('#log-list');
      const frame = () => new Promise((res) => requestAnimationFrame(res));
      const long = [];
      let obs;
      try {
        obs = new PerformanceObserver((l) => long.push(...l.getEntries().map((e) => e.duration)));
        obs.observe({ type: 'longtask', buffered: false });
      } catch { /* no long task API */ }
      const measure = async (steps) => {
        const deltas = [];
        let prev = await frame();
        for (const step of steps) {
          step();
          const t = await frame();
          deltas.push(t - prev);
          prev = t;
        }
        return deltas;
      };
      list.scrollTop = list.scrollHeight;
      await frame();
      await frame();
      const screens = Math.ceil(list.scrollHeight / list.clientHeight);
      const maxSteps = Math.min(screens, 3000); // at most 3000 frames
      const stride = list.scrollHeight / maxSteps;
      const t0 = performance.now();
      const sweep = await measure(Array.from({ length: maxSteps }, () => () => { list.scrollTop = Math.max(0, list.scrollTop - stride); }));
      const sweepMs = performance.now() - t0;
      const atTop = list.scrollTop;
      let seed = 7;
      const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      const jumps = await measure(Array.from({ length: 60 }, () => () => { list.scrollTop = Math.floor(rnd() * list.scrollHeight); }));
      const firstVisible = document.querySelector('#log-list .row[data-id]')?.dataset.id;
      obs?.disconnect();
      list.scrollTop = list.scrollHeight;
      const summary = (d) => {
        const s = [...d].sort((a, b) => a - b);
        return {
          frames: d.length,
          long50: d.filter((x) => x > 50).length,
          p50: s[Math.floor(s.length * 0.5)],
          p95: s[Math.floor(s.length * 0.95)],
          max: s[s.length - 1],
        };
      };
      return {
        scrollHeight: list.scrollHeight,
        clientHeight: list.clientHeight,
        screens,
        sweepMs,
        atTop,
        domRowsAfter: document.querySelectorAll('#log-list .row').length,
        firstVisible,
        sweep: summary(sweep),
        jumps: summary(jumps),
        longTasks: long.length,
        longTaskMax: long.length ? Math.max(...long) : 0,
      };
    });
    scroll.heapAfter = (await cdpHeap(cdp)).used;
    log(`(a) run ${run}: sweep ${scroll.sweep.frames} frames, ${scroll.sweep.long50} > 50 ms (p95 ${scroll.sweep.p95?.toFixed(1)} ms, max ${scroll.sweep.max?.toFixed(1)}); jumps ${scroll.jumps.long50}/${scroll.jumps.frames} > 50 ms; long tasks ${scroll.longTasks}`);
    return { ...r, heapUsed: heap.used, nodes: heap.nodes, scroll, load: loadavg()[0], errors: b.errors.slice(0, 5) };
  } finally {
    await b.close();
  }
}

// ------------------------------------------------------------------ (b)

async function benchLive(run, LIVE_CAP) {
  noteBinary();
  const server = await startServer();
  const b = await openBrowser();
  const { page } = b;
  const service = uniqueService('bench-live');
  try {
    await pushHttp(server, makeEntries(service, 10)); // the service exists before the page opens
    await openViewer(page, server, `/?service=${encodeURIComponent(service)}&cap=${LIVE_CAP}`, { timeout: 60000 });
    await waitFor(() => page.evaluate(() => document.querySelector('#conn')?.dataset.state), (s) => s === 'connected', { timeout: 30000, what: 'connected' });
    await waitFor(() => lastId(page), (v) => v >= 10, { what: 'the 10 seed rows' });
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');

    // Frame monitor in the page.
    await page.evaluate(() => {
      const m = { frames: 0, gaps50: 0, dropped: 0, maxGap: 0, gaps: [], running: true, start: performance.now() };
      window.__bench = m;
      let prev = performance.now();
      const tick = (t) => {
        const d = t - prev;
        prev = t;
        m.frames++;
        if (d > 50) {
          m.gaps50++;
          m.dropped += Math.round(d / (1000 / 60)) - 1;
          m.gaps.push(d);
        }
        if (d > m.maxGap) m.maxGap = d;
        if (m.running) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });

    const samples = [];
    const sample = async (label) => {
      const h = await cdpHeap(cdp);
      const rows = await heldRows(page);
      const li = await lastId(page);
      const rate = await page.evaluate(() => document.querySelector('#rate')?.textContent.trim() ?? null);
      const s = { label, t: Date.now(), heapUsed: h.used, nodes: h.nodes, rows, lastId: li, rate };
      samples.push(s);
      log(`(b) run ${run} ${label}: heap ${MB(h.used).toFixed(1)} MB, nodes ${h.nodes}, rows ${rows}, lastId ${li}, #rate "${rate}"`);
      return s;
    };
    await sample('start');

    // A sampler every 10 s, apart from the pusher so a slow page never delays pushes.
    const t0 = Date.now();
    let sampling = true;
    const sampler = (async () => {
      for (let n = 10; sampling; n += 10) {
        const wait = t0 + n * 1000 - Date.now();
        if (wait > 0) await sleep(wait);
        if (!sampling) break;
        await sample(`${n}s`);
      }
    })();

    // The pusher: 200 entries every 100 ms, for SECONDS.
    let pushed = 0;
    let late = 0;
    const latencies = [];
    const inflight = new Set();
    let k = 10;
    for (let tick = 0; tick < (SECONDS * 1000) / RATE_EVERY; tick++) {
      const due = t0 + tick * RATE_EVERY;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      else if (wait < -RATE_EVERY) late++;
      const entries = makeEntries(service, RATE_BATCH, k);
      k += RATE_BATCH;
      const started = Date.now();
      const p = pushHttp(server, entries).then(() => {
        pushed += RATE_BATCH;
        latencies.push(Date.now() - started);
        inflight.delete(p);
      });
      inflight.add(p);
      if (inflight.size > 20) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    const tEnd = Date.now();
    const pushSeconds = (tEnd - t0) / 1000;
    const finalId = (await (await fetch(`${server.url}/v1/logs?service=${service}&page_size=1`)).json()).records[0].id;
    const endBehind = finalId - (await lastId(page));
    const caughtUp = await waitFor(() => lastId(page), (v) => v >= finalId, { timeout: 60000, interval: 20, what: 'viewer to catch up' })
      .then(() => Date.now() - tEnd)
      .catch(() => NaN);
    sampling = false;
    await sampler;
    await sample('end of pushing');
    const frames = await page.evaluate(() => {
      window.__bench.running = false;
      const { frames, gaps50, dropped, maxGap, gaps, start } = window.__bench;
      return { frames, gaps50, dropped, maxGap, gaps: gaps.length, elapsed: performance.now() - start };
    });
    await sleep(2000);
    const end = await sample('end (+2 s)');
    const gapMarkers = await page.evaluate(() => document.querySelectorAll('.gap-marker').length);
    const maxRows = Math.max(...samples.map((s) => s.rows));
    const res = {
      cap: LIVE_CAP,
      pushed: pushed + 10,
      pushSeconds,
      achievedRate: pushed / pushSeconds,
      late,
      pushLatency: stats(latencies),
      frames,
      expectedFrames: Math.round((frames.elapsed / 1000) * 60),
      samples,
      heapStart: samples[0].heapUsed,
      heapMid: samples.reduce((best, s) => (Math.abs(s.t - (t0 + pushSeconds * 500)) < Math.abs(best.t - (t0 + pushSeconds * 500)) ? s : best)).heapUsed,
      heapEnd: end.heapUsed,
      maxRows,
      rowsWithinCap: maxRows <= LIVE_CAP,
      endBehind,
      caughtUpMs: caughtUp,
      gapMarkers,
      load: loadavg()[0],
      errors: b.errors.slice(0, 5),
    };
    log(`(b) run ${run}: ${res.pushed} pushed at ${res.achievedRate.toFixed(0)}/s; frames ${frames.frames} (of ~${res.expectedFrames}), gaps>50ms ${frames.gaps50}, dropped ${frames.dropped}, max gap ${frames.maxGap.toFixed(0)} ms; heap ${MB(res.heapStart).toFixed(1)} -> ${MB(res.heapMid).toFixed(1)} -> ${MB(res.heapEnd).toFixed(1)} MB; max rows ${maxRows} (cap ${LIVE_CAP}); behind at end ${endBehind}, caught up +${caughtUp} ms; gap markers ${gapMarkers}`);
    return res;
  } finally {
    await b.close();
    await server.stop();
  }
}

// ------------------------------------------------------------------ main

function machine() {
  const c = cpus();
  let chromium = '';
  try {
    chromium = execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch { /* */ }
  let pw = '';
  try {
    pw = JSON.parse(readFileSync(join(here, 'node_modules', 'playwright-core', 'package.json'), 'utf8')).version;
  } catch { /* */ }
  let rev = '';
  try {
    rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here, encoding: 'utf8' }).trim();
  } catch { /* */ }
  return {
    cpu: `${c[0]?.model ?? '?'} × ${c.length}`,
    memory: `${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
    os: `${platform()} ${release()}`,
    node: process.version,
    chromium,
    playwright: pw,
    server: BIN,
    rev,
  };
}

// The server binary each part ran (it may be rebuilt while the benchmark runs).
const binaries = new Set();
const noteBinary = () => {
  try {
    const st = statSync(BIN);
    binaries.add(`${st.mtime.toISOString().replace('T', ' ').slice(0, 19)} UTC, ${st.size} bytes`);
  } catch { /* */ }
};
const m = machine();
log('machine', m);
const out = { machine: m, date: new Date().toISOString(), render: [], live: [] };

if (only !== 'b') {
  noteBinary();
  const server = await startServer();
  try {
    const service = uniqueService('bench-100k');
    const t = Date.now();
    for (let i = 0; i < ROWS; i += 5000) await pushHttp(server, makeEntries(service, Math.min(5000, ROWS - i), i));
    log(`(a) pushed ${ROWS} entries in ${Date.now() - t} ms`);
    for (let run = 1; run <= RUNS; run++) {
      try {
        out.render.push(await benchRender(server, service, run));
      } catch (e) {
        log(`(a) run ${run} failed: ${e.message}`);
        out.render.push({ error: e.message });
      }
    }
  } finally {
    await server.stop();
  }
}
if (only !== 'a') {
  for (const cap of LIVE_CAPS) {
    for (let run = 1; run <= RUNS; run++) {
      try {
        out.live.push(await benchLive(run, cap));
      } catch (e) {
        log(`(b) cap ${cap} run ${run} failed: ${e.message}`);
        out.live.push({ cap, error: e.message });
      }
    }
  }
}

console.log(JSON.stringify(out, null, 1));
mkdirSync(join(here, 'artifacts'), { recursive: true });
writeFileSync(join(here, 'artifacts', 'bench.json'), JSON.stringify(out, null, 1));

// ------------------------------------------------------------------ report

const R = out.render.filter((r) => !r.error);
const L = out.live.filter((r) => !r.error);
function liveTable(cap, L) {
  if (!L.length) return `### cap ${cap.toLocaleString('en')}\n\n_No successful run._`;
  return `### \`?cap=${cap}\`

| | min / median / max |
| --- | --- |
| entries pushed | ${mmm(L.map((r) => r.pushed))} |
| achieved rate | ${mmm(L.map((r) => r.achievedRate), 0, ' /s')} |
| push latency (median of each run) | ${mmm(L.map((r) => r.pushLatency.median), 0, ' ms')} |
| animation frames seen | ${mmm(L.map((r) => r.frames.frames))} (of ~${L[0].expectedFrames} at 60 Hz over the ${fmt(L[0].frames.elapsed / 1000, 0)} s watched) |
| rAF gaps > 50 ms | ${mmm(L.map((r) => r.frames.gaps50))} |
| dropped frames (in those gaps) | ${mmm(L.map((r) => r.frames.dropped))} |
| longest frame gap | ${mmm(L.map((r) => r.frames.maxGap), 0, ' ms')} |
| JS heap at start | ${mmm(L.map((r) => MB(r.heapStart)), 1, ' MB')} |
| JS heap in the middle (sample nearest ${SECONDS / 2} s) | ${mmm(L.map((r) => MB(r.heapMid)), 1, ' MB')} |
| JS heap at the end | ${mmm(L.map((r) => MB(r.heapEnd)), 1, ' MB')} |
| highest JS heap sampled | ${mmm(L.map((r) => MB(Math.max(...r.samples.map((x) => x.heapUsed)))), 1, ' MB')} |
| most rows held | ${mmm(L.map((r) => r.maxRows))} — ${L.every((r) => r.rowsWithinCap) ? `≤ ${cap.toLocaleString('en')} in every sample` : '**over the cap**'} |
| ids behind the server when pushing stopped | ${mmm(L.map((r) => r.endBehind))} |
| time until lastId() = last id after pushing stopped | ${mmm(L.map((r) => r.caughtUpMs), 0, ' ms')} (polled every 20 ms) |
| \`.gap-marker\`s shown | ${mmm(L.map((r) => r.gapMarkers))} |
| machine load (1-min average) after the run | ${mmm(L.map((r) => r.load), 2)} |

Samples of run 1:

| at | JS heap MB | DOM nodes | rows() | lastId() | #rate |
| --- | --- | --- | --- | --- | --- |
${L[0].samples.map((s) => `| ${s.label} | ${MB(s.heapUsed).toFixed(1)} | ${s.nodes} | ${s.rows} | ${s.lastId} | ${s.rate ?? ''} |`).join('\n')}`;
}

const errs = [...out.render, ...out.live].filter((r) => r.error).map((r) => `- ${r.error}`);
const md = `# Viewer benchmark

Generated by \`web/e2e/bench.mjs\` (\`cd web/e2e && npm ci && node bench.mjs\`) on ${out.date.slice(0, 10)}.
Figures are **min / median / max over ${RUNS} runs** unless noted.

## Machine

| | |
| --- | --- |
| CPU | ${m.cpu} (shared by the server, Chromium and the node pusher) |
| memory | ${m.memory} |
| OS | ${m.os} |
| browser | ${m.chromium}, headless, \`--disable-gpu\` (software rendering), driven by playwright-core ${m.playwright} |
| node | ${m.node} |
| server | the \`${basename(m.server)}\` binary (debug build), SQLite in a temp dir, \`--heartbeat 1s\`, git ${m.rev} plus the work tree |
| server binary | ${[...binaries].join('; ')}${binaries.size > 1 ? ' (**rebuilt during the benchmark**)' : ''} |
| viewport | 1400 × 900 |

## Method

**(a) Rendering 100,000 rows.** ${ROWS.toLocaleString('en')} entries of one service (about 90-byte messages, 0–2 tags,
2 attributes) are pushed as NDJSON batches of 5,000 to \`POST /v1/logs\`. Each run opens a fresh
browser profile at \`/?service=S&cap=${ROWS}\` and measures, inside the page, the time from
navigation start (\`performance.now()\`, checked each animation frame) until
\`window.__taillight.rows()\` reaches ${ROWS.toLocaleString('en')} ("held"), and then two more
animation frames ("painted"). The **scroll test** then moves \`#log-list\` from the bottom to
the top in equal steps, one step per animation frame (at most 3,000 frames, so one screen or
more per frame), then makes 60 random jumps; every frame whose \`requestAnimationFrame\` delta
exceeds 50 ms counts as a long frame. Long Tasks (PerformanceObserver) are counted too.

**(b) 2,000 entries/s for ${SECONDS} s.** A fresh server and browser per run. The viewer is open live
at \`/?service=S&cap=N\` for N in ${LIVE_CAPS.map((c) => c.toLocaleString('en')).join(' and ')} (both below the ${(2000 * SECONDS).toLocaleString('en')} entries
pushed, so trimming is exercised). A node pusher POSTs ${RATE_BATCH} entries as NDJSON every ${RATE_EVERY} ms. In
the page a \`requestAnimationFrame\` loop counts gaps above 50 ms ("dropped" = frames of
16.7 ms missing in those gaps). The JS heap is CDP \`Performance.getMetrics\` \`JSHeapUsedSize\`
at the start, every 10 s, when pushing stops and 2 s later (no forced GC). \`__taillight.rows()\` is sampled with
it and must stay ≤ cap. At the end: how many ids the viewer's \`lastId()\` trailed the server
when pushing stopped, and how long after that it showed the last id.

## Reading the figures

- The server, Chromium and the node pusher share the machine's 2 cores, and Chromium draws
  in software (\`--disable-gpu\`): frame figures are pessimistic next to a desktop with a GPU.
  Other work on the machine adds noise; the min and max columns show the spread.
- \`requestAnimationFrame\` deltas come in multiples of 16.7 ms (60 Hz), so a p95 of 33.3 ms
  means at least 5 % of frames missed one vsync.
- "ids behind the server when pushing stopped" of 200 is one batch (the last POST) committed
  but not yet on the page at that instant; the next line says how soon it arrived.
- DOM nodes are CDP's count, which includes detached nodes not yet collected.

## (a) ${ROWS.toLocaleString('en')} rows

${R.length ? `| | min / median / max |
| --- | --- |
| first row painted | ${mmm(R.map((r) => r.firstRow), 0, ' ms')} |
| rows() = ${ROWS.toLocaleString('en')} | ${mmm(R.map((r) => r.held), 0, ' ms')} |
| painted (two frames later) | ${mmm(R.map((r) => r.painted), 0, ' ms')} |
| \`.row\` elements in the DOM | ${mmm(R.map((r) => r.domRows))} |
| JS heap after loading | ${mmm(R.map((r) => MB(r.heapUsed)), 1, ' MB')} |
| DOM nodes after loading | ${mmm(R.map((r) => r.nodes))} |
| scroll sweep: frames | ${mmm(R.map((r) => r.scroll.sweep.frames))} (list ${R[0].scroll.scrollHeight.toLocaleString('en')} px, ${R[0].scroll.screens} screens) |
| scroll sweep: frames > 50 ms | ${mmm(R.map((r) => r.scroll.sweep.long50))} |
| scroll sweep: frame time p50 | ${mmm(R.map((r) => r.scroll.sweep.p50), 1, ' ms')} |
| scroll sweep: frame time p95 | ${mmm(R.map((r) => r.scroll.sweep.p95), 1, ' ms')} |
| scroll sweep: longest frame | ${mmm(R.map((r) => r.scroll.sweep.max), 1, ' ms')} |
| scroll sweep: duration | ${mmm(R.map((r) => r.scroll.sweepMs), 0, ' ms')} |
| random jumps: frames > 50 ms (of 60) | ${mmm(R.map((r) => r.scroll.jumps.long50))} |
| random jumps: frame time p95 | ${mmm(R.map((r) => r.scroll.jumps.p95), 1, ' ms')} |
| random jumps: longest frame | ${mmm(R.map((r) => r.scroll.jumps.max), 1, ' ms')} |
| long tasks during scrolling | ${mmm(R.map((r) => r.scroll.longTasks))} (longest ${mmm(R.map((r) => r.scroll.longTaskMax), 0, ' ms')}) |
| \`.row\` elements after scrolling | ${mmm(R.map((r) => r.scroll.domRowsAfter))} |
| JS heap after scrolling | ${mmm(R.map((r) => MB(r.scroll.heapAfter)), 1, ' MB')} |
| machine load (1-min average) after the run | ${mmm(R.map((r) => r.load), 2)} |` : '_No successful run._'}

## (b) 2,000 entries/s for ${SECONDS} s

${LIVE_CAPS.map((cap) => liveTable(cap, L.filter((r) => r.cap === cap))).join('\n\n')}
${errs.length ? `\n## Failed runs\n\n${errs.join('\n')}\n` : ''}`;
mkdirSync(dirname(DOC), { recursive: true });
writeFileSync(DOC, md);
log(`wrote ${DOC}`);
