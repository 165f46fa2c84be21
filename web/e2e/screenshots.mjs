// Screenshots of the viewer for the docs: `cd web/e2e && node screenshots.mjs`.
// Starts its own server, pushes a realistic mix of services, levels, tags and
// attributes, and writes 1400x900 PNGs to docs/screenshots/:
//   live.png      the live view of one service while entries arrive
//   filtered.png  the same service filtered to ERROR/WARN with the tag "db"
//   expanded.png  one entry expanded (attributes, copy, permalink)
//   dark.png      the live view in the dark theme

import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  startServer, pushHttp, pushCli, openBrowser, openViewer, waitConnected, waitFor, sleep, domRows, mode,
} from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const OUT = join(here, '..', '..', 'docs', 'screenshots');
mkdirSync(OUT, { recursive: true });

// A deterministic pseudo-random sequence, so the pictures are the same each run.
let seed = 42;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const pick = (a) => a[Math.floor(rnd() * a.length)];

const SERVICES = {
  api: {
    tags: ['http', 'auth', 'db', 'cache'],
    msgs: [
      ['INFO', ['http'], () => `GET /v1/orders/${1000 + Math.floor(rnd() * 9000)} 200 in ${Math.floor(rnd() * 80) + 3} ms`, () => ({ method: 'GET', status: '200', route: '/v1/orders/:id' })],
      ['INFO', ['http'], () => `POST /v1/checkout 201 in ${Math.floor(rnd() * 300) + 40} ms`, () => ({ method: 'POST', status: '201', route: '/v1/checkout' })],
      ['DEBUG', ['cache'], () => `cache miss key=user:${Math.floor(rnd() * 500)}`, () => ({ cache: 'redis', ttl: '300' })],
      ['WARN', ['db'], () => `slow query: SELECT * FROM orders WHERE customer_id = $1 took ${Math.floor(rnd() * 900) + 500} ms`, () => ({ db: 'orders-primary', rows: String(Math.floor(rnd() * 5000)) })],
      ['ERROR', ['db'], () => 'connection to orders-primary:5432 refused (attempt 3/5)', () => ({ db: 'orders-primary', host: 'db-1.internal', attempt: '3' })],
      ['WARN', ['auth'], () => `token for client web-${Math.floor(rnd() * 40)} expires in 5 minutes`, () => ({ client: 'web', scope: 'orders:read' })],
      ['ERROR', ['auth', 'http'], () => 'POST /v1/login 401 invalid signature on bearer token', () => ({ status: '401', ip: '10.4.2.17' })],
    ],
  },
  worker: {
    tags: ['queue', 'email', 'db'],
    msgs: [
      ['INFO', ['queue'], () => `job ${Math.floor(rnd() * 1e6)} done in ${Math.floor(rnd() * 2000)} ms`, () => ({ queue: 'default', worker: `w-${Math.floor(rnd() * 8)}` })],
      ['INFO', ['email'], () => 'sent order confirmation', () => ({ template: 'order_confirmed', provider: 'ses' })],
      ['WARN', ['queue'], () => `queue depth ${Math.floor(rnd() * 4000) + 1000} above threshold 1000`, () => ({ queue: 'emails' })],
      ['ERROR', ['email'], () => 'SMTP 421 try again later', () => ({ provider: 'ses', retry_in: '30s' })],
      ['FATAL', ['db'], () => 'migration lock held for 300 s, giving up', () => ({ lock: 'schema_migrations' })],
    ],
  },
  web: {
    tags: ['ssr', 'assets'],
    msgs: [
      ['INFO', ['ssr'], () => `rendered /products/${Math.floor(rnd() * 300)} in ${Math.floor(rnd() * 120) + 10} ms`, () => ({ cache: 'miss' })],
      ['TRACE', ['assets'], () => 'served /static/app.9f3c1.js from cache', () => ({ bytes: '182331' })],
      ['WARN', ['ssr'], () => 'hydration mismatch on <ProductCard>', () => ({ component: 'ProductCard' })],
    ],
  },
};

function entry(service, when) {
  const [level, tags, msg, attrs] = pick(SERVICES[service].msgs);
  return { service, level, tags, message: msg(), attributes: attrs(), time: new Date(when).toISOString() };
}

const server = await startServer();
const { page, close } = await openBrowser();
try {
  // Twenty minutes of history, mostly api.
  const now = Date.now();
  const batch = [];
  for (let i = 0; i < 400; i++) {
    const service = rnd() < 0.6 ? 'api' : rnd() < 0.6 ? 'worker' : 'web';
    batch.push(entry(service, now - (400 - i) * 3000));
  }
  await pushHttp(server, batch);

  await openViewer(page, server, '/?service=api');
  await waitConnected(page);
  // A few live ones, over gRPC as an application would.
  await pushCli(server, { service: 'api', level: 'error', tags: ['db'], attrs: { db: 'orders-primary', host: 'db-1.internal' }, messages: ['connection pool exhausted (50/50 in use), waiting'] });
  await pushCli(server, { service: 'api', level: 'info', tags: ['http'], attrs: { method: 'GET', status: '200' }, messages: ['GET /v1/orders/4711 200 in 12 ms', 'GET /v1/orders/4712 200 in 9 ms'] });
  await waitFor(() => domRows(page), (rows) => rows.some((r) => r.msg === 'GET /v1/orders/4712 200 in 9 ms'), { what: 'live rows' });
  await sleep(1200); // let the rate meter settle
  await page.screenshot({ path: join(OUT, 'live.png') });
  console.log('live.png', await mode(page));

  await openViewer(page, server, '/?service=api&levels=ERROR,WARN&tags=db');
  await waitConnected(page).catch(() => {});
  await waitFor(() => domRows(page), (rows) => rows.length > 0 && rows.every((r) => ['ERROR', 'WARN'].includes(r.level)), { what: 'filtered rows' });
  await sleep(500);
  await page.screenshot({ path: join(OUT, 'filtered.png') });
  console.log('filtered.png');

  await openViewer(page, server, '/?service=api');
  await waitConnected(page);
  const rows = await waitFor(() => domRows(page), (r) => r.length > 10, { what: 'rows' });
  // An ERROR row in the middle of the screen, so its details open in view.
  const middle = rows.slice(Math.floor(rows.length / 3), Math.floor((rows.length * 2) / 3));
  const target = middle.find((r) => r.level === 'ERROR') || middle.find((r) => r.level === 'WARN') || middle[0];
  await page.click(`.row[data-id="${target.id}"] .msg`);
  await page.waitForSelector(`.row[data-id="${target.id}"][aria-expanded="true"] .details`);
  await sleep(300);
  await page.screenshot({ path: join(OUT, 'expanded.png') });
  console.log('expanded.png', target.id);

  await openViewer(page, server, '/?service=api');
  await waitConnected(page);
  for (let i = 0; i < 2; i++) {
    if ((await page.evaluate(() => document.documentElement.dataset.theme)) === 'dark') break;
    await page.click('#theme');
    await sleep(200);
  }
  const theme = await page.evaluate(() => document.documentElement.dataset.theme);
  if (theme !== 'dark') throw new Error(`#theme did not switch to dark (data-theme=${theme})`);
  await pushCli(server, { service: 'api', level: 'warn', tags: ['auth'], messages: ['token for client web-7 expires in 5 minutes'] });
  await sleep(800);
  await page.screenshot({ path: join(OUT, 'dark.png') });
  console.log('dark.png');
} finally {
  await close();
  await server.stop();
}
