/* Browser test of the mailshift dashboard, driven by tests/integration/test_ui.sh
 * against a real coordinator (API + scheduler), a worker and Dovecot.
 * Debian's chromium, headless, through playwright-core (no browser download).
 *
 * Environment:
 *   UI_URL        the dashboard, e.g. http://127.0.0.1:19050/ui/?poll=1
 *   MIGRATION     the migration's id (imported and verified, no pass yet)
 *   TOKEN_FILE    file holding the API token (pasted into the page's field)
 *   MESSAGES      messages at the source, all accounts
 *   ACCOUNTS      the accounts' source logins, comma-separated
 *   SHOTS         directory for the screenshots
 * Prints "ok   - ..." or "FAIL - ..." per check (the suite counts them) and
 * exits 1 if any failed. */
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} not set`);
  return process.env[k];
};
const UI_URL = env('UI_URL');
const M = env('MIGRATION');
const TOKEN = fs.readFileSync(env('TOKEN_FILE'), 'utf8').trim();
const MESSAGES = Number(env('MESSAGES'));
const ACCOUNTS = env('ACCOUNTS').split(',');
const SHOTS = env('SHOTS');

let failed = 0;
function check(name, ok, detail) {
  if (ok) console.log(`ok   - ${name}`);
  else { failed++; console.log(`FAIL - ${name}${detail ? `: ${detail}` : ''}`); }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* The state counts the migration view shows: {state: count}. */
async function states(page) {
  return page.$$eval('#states .state', (els) =>
    Object.fromEntries(els.map((e) => [e.dataset.state, Number(e.dataset.count)])));
}
async function numberOf(page, sel) {
  const t = await page.textContent(sel).catch(() => null);
  return t === null ? NaN : Number(t);
}
async function bytesOf(page, sel) {
  return Number(await page.getAttribute(sel, 'data-bytes').catch(() => NaN));
}
/* Polls fn until it returns a truthy value or ms pass; returns the last value. */
async function until(fn, ms, step = 250) {
  const end = Date.now() + ms;
  let v;
  while (Date.now() < end) {
    v = await fn();
    if (v) return v;
    await sleep(step);
  }
  return v;
}
/* Waits for the next redraw of the view (the "updated" stamp changes). */
async function nextRedraw(page) {
  const before = await page.textContent('#updated');
  await until(async () => (await page.textContent('#updated')) !== before, 10000, 100);
}
async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/* Non-blank pixels in the plot area of the throughput canvas. */
async function chartInk(page) {
  return page.$eval('#throughput', (c) => {
    const g = c.getContext('2d');
    const { data } = g.getImageData(0, 0, c.width, c.height);
    let blue = 0;
    for (let i = 0; i < data.length; i += 4)
      if (data[i + 2] > 150 && data[i] < 100 && data[i + 3] > 0) blue++; /* the bars' #2d6cdf */
    return blue;
  });
}

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const consoleErrors = [];
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  /* The API's failures, for the log (the first 401s are expected). */
  page.on('response', (r) => {
    if (r.status() >= 400 && r.url().includes('/v1/') && r.status() !== 401)
      console.log(`# HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });
  try {
    /* The API wants a token: the page asks for it. */
    await page.goto(UI_URL);
    const asked = await until(() => page.isVisible('#token-box'), 10000);
    check('without a token the page asks for one (the API answered 401)', asked);
    await shot(page, '01-token');
    await page.fill('#token', TOKEN);
    await page.click('#token-form button');
    const listed = await until(() => page.isVisible(`#migrations tr[data-migration="${M}"]`), 10000);
    check('with the token the migrations list shows the migration', listed);
    const stored = await page.evaluate(() => sessionStorage.getItem('mailshift-token'));
    check('the token is kept in sessionStorage, not in localStorage',
      stored === TOKEN && await page.evaluate(() => localStorage.length === 0));
    await shot(page, '02-migrations');

    await page.click(`#migrations tr[data-migration="${M}"] a`);
    await until(() => page.isVisible('#states'), 10000);
    const before = await states(page);
    check(`before the start every account is verified (${JSON.stringify(before)})`,
      before.verified === ACCOUNTS.length);

    /* Start from the page's button. */
    await page.click('button[data-action=start]');
    const started = await until(async () => {
      const s = await states(page);
      return (s.running || 0) + (s.queued || 0) > 0 ? s : null;
    }, 20000);
    check(`the start button queued the accounts (${JSON.stringify(started)})`, !!started);

    /* While it progresses: the numbers grow, the chart is drawn. */
    const samples = [];
    const end = Date.now() + 20000;
    while (Date.now() < end && samples.length < 6) {
      await nextRedraw(page);
      const done = await numberOf(page, '#messages-done');
      if (samples.length === 0 || done > samples[samples.length - 1]) samples.push(done);
      if (samples.length === 2) await shot(page, '03-progress');
    }
    const total = await numberOf(page, '#messages-total');
    check(`messages done grow while pass 1 runs (${samples.join(' < ')} of ${total})`,
      samples.length >= 3 && samples[samples.length - 1] < MESSAGES);
    const running = await states(page);
    check(`the state counts show running accounts (${JSON.stringify(running)})`,
      (running.running || 0) >= 1);
    const eta = await page.textContent('#eta');
    check(`an ETA is shown while copying (${eta})`, /^\d+:\d\d/.test(eta));

    /* Pause: the accounts' states change to paused; resume: they run again. */
    await page.click('button[data-action=pause]');
    const paused = await until(async () => {
      const s = await states(page);
      return s.paused === ACCOUNTS.length ? s : null;
    }, 30000);
    check(`pause: every account shows paused (${JSON.stringify(paused || await states(page))})`,
      !!paused);
    const rowsPaused = await page.$$eval('#accounts tr[data-state=paused]', (r) => r.length);
    check('pause: the accounts table shows each account paused', rowsPaused === ACCOUNTS.length);
    await shot(page, '05-paused');
    /* A running account stops at its next checkpoint (the worker sees the
     * pause within seconds): then nothing more is copied for a while. */
    let heldAt = NaN, heldAfter = NaN;
    const holdEnd = Date.now() + 40000;
    while (Date.now() < holdEnd) {
      await nextRedraw(page);
      heldAt = await numberOf(page, '#messages-done');
      await sleep(4000);
      await nextRedraw(page);
      heldAfter = await numberOf(page, '#messages-done');
      if (heldAfter === heldAt) break;
    }
    check(`once paused nothing more is copied for 4 s (${heldAt} then ${heldAfter})`,
      heldAfter === heldAt && heldAt < MESSAGES);
    await page.click('button[data-action=resume]');
    const resumed = await until(async () => {
      const s = await states(page);
      return !s.paused && (s.running || 0) + (s.queued || 0) > 0 ? s : null;
    }, 30000);
    check(`resume: the accounts are queued or running again (${JSON.stringify(resumed)})`, !!resumed);

    /* The chart: the minutes of this pass drawn as bars. */
    const drawn = await until(async () =>
      Number(await page.getAttribute('#throughput', 'data-points')) >= 1
        && await chartInk(page) > 50, 30000, 1000);
    check('the throughput chart is drawn from /throughput (points and bars on the canvas)', drawn);
    await shot(page, '04-chart');

    /* The end: all synced, done equals the source's counts. */
    const finished = await until(async () => {
      const s = await states(page);
      return s.synced === ACCOUNTS.length ? s : null;
    }, 400000, 1000);
    check(`at the end every account is synced (${JSON.stringify(finished || await states(page))})`,
      !!finished);
    await nextRedraw(page);
    const doneM = await numberOf(page, '#messages-done');
    const totalM = await numberOf(page, '#messages-total');
    check(`at the end messages done = total = the source's ${MESSAGES} (${doneM} of ${totalM})`,
      doneM === MESSAGES && totalM === MESSAGES);
    const doneB = await bytesOf(page, '#bytes-done');
    const totalB = await bytesOf(page, '#bytes-total');
    check(`at the end bytes done = bytes total (${doneB} of ${totalB})`,
      doneB > 0 && doneB === totalB);
    check('the errors section says there are none', await page.isVisible('#errors-none'));
    await shot(page, '06-synced');

    /* One account: its folders, both sides equal. */
    await page.click(`#accounts tr[data-account="${ACCOUNTS[0]}"] a`);
    await until(() => page.isVisible('#folders tbody tr'), 10000);
    const folders = await page.$$eval('#folders tbody tr', (rows) => rows.map((r) =>
      [...r.querySelectorAll('td')].map((td) => td.textContent)));
    const src = folders.reduce((n, f) => n + Number(f[2]), 0);
    const dst = folders.reduce((n, f) => n + Number(f[3]), 0);
    check(`account view: ${folders.length} folders, source and destination counts equal`
      + ` (${src} / ${dst})`, folders.length > 1 && src === dst && src > 0);
    check('account view: the state is synced',
      (await page.getAttribute('#account-state', 'data-state')) === 'synced');
    await shot(page, '07-account');
    check(`no script error in the page (${consoleErrors.join('; ')})`, consoleErrors.length === 0);
  } finally {
    await shot(page, '99-last').catch(() => {});
    await browser.close();
  }
}

main().then(() => process.exit(failed ? 1 : 0), (e) => {
  console.log(`FAIL - the browser test stopped: ${e.stack || e}`);
  process.exit(1);
});
