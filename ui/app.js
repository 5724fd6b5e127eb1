/* mailshift dashboard: plain JavaScript, no build step, no framework.
 * Reads the coordinator's HTTP API (/v1) and redraws the current view every
 * few seconds.  Views (by URL hash):
 *   #/                        migrations
 *   #/m/ID                    one migration: states, progress, throughput,
 *                             ETA, accounts, errors, pass buttons
 *   #/m/ID/a/ACCOUNT          one account: folders, passes, errors, proof
 * The API token, when the API wants one, is kept in sessionStorage only.
 * Every text from the API is set with textContent, never parsed as HTML. */
'use strict';

const TOKEN_KEY = 'mailshift-token';
const params = new URLSearchParams(location.search);
/* ?poll=SECS sets the refresh period (default 3 s). */
const POLL_MS = Math.max(1, Number(params.get('poll')) || 3) * 1000;
const STATE_ORDER = ['new', 'verified', 'auth_failed', 'verify_failed', 'queued', 'running',
  'waiting', 'failed', 'paused', 'synced', 'done', 'cancelled'];

let timer = null;
let busy = false;
/* Rates measured between polls, per migration: {at, bytes, rate}. */
const rates = new Map();

/* ---- small DOM helpers ---- */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function bytes(n) {
  if (n === null || n === undefined || n < 0) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n, u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${Math.round(n)} B` : `${v.toFixed(1)} ${units[u]}`;
}

function duration(secs) {
  if (secs === null || secs === undefined || !isFinite(secs) || secs < 0) return '-';
  secs = Math.round(secs);
  const hh = Math.floor(secs / 3600), mm = Math.floor(secs / 60) % 60, ss = secs % 60;
  const two = (x) => String(x).padStart(2, '0');
  return hh > 0 ? `${hh}:${two(mm)}:${two(ss)}` : `${mm}:${two(ss)}`;
}

/* An API time (RFC 3339) as "2026-12-07 00:02:34" UTC; other values as they are. */
function when(t) {
  if (typeof t !== 'string' || Number.isNaN(Date.parse(t))) return t;
  return new Date(t).toISOString().replace('T', ' ').slice(0, 19);
}

function pct(done, total) {
  if (!total || total <= 0) return 0;
  return Math.min(100, Math.floor((done * 100) / total));
}

function showMessage(text, isError) {
  const box = document.getElementById('message');
  box.textContent = text;
  box.className = isError ? 'error' : '';
  box.hidden = !text;
}

/* ---- the API ---- */
class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'unreachable', `the API does not answer (${e.message})`, null);
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!res.ok) {
    const err = (data && data.error) || {};
    if (res.status === 401) document.getElementById('token-box').hidden = false;
    throw new ApiError(res.status, err.code || `http_${res.status}`,
      err.message || `HTTP ${res.status}`, err.field || null);
  }
  return data;
}

/* Every item of a paginated list. */
async function apiAll(path, max = 100000) {
  const items = [];
  let after = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await api('GET',
      `${path}${sep}limit=1000${after !== null ? `&after=${encodeURIComponent(after)}` : ''}`);
    if (Array.isArray(page)) return page;
    items.push(...(page.items || []));
    after = page.next === undefined ? null : page.next;
  } while (after !== null && items.length < max);
  return items;
}

function mpath(m, rest = '') { return `/v1/migrations/${encodeURIComponent(m)}${rest}`; }
function apath(m, a, rest = '') {
  return mpath(m, `/accounts/${encodeURIComponent(a)}${rest}`);
}

/* An action button: runs fn, shows its answer or the API's error, redraws. */
function action(label, fn, opts = {}) {
  return h('button', {
    type: 'button', class: opts.danger ? 'danger' : null, 'data-action': opts.id || label,
    onclick: async (ev) => {
      ev.target.disabled = true;
      try {
        const r = await fn();
        showMessage(`${label}: ${summarize(r)}`, false);
      } catch (e) {
        showMessage(`${label}: ${e.code ? `${e.code}: ` : ''}${e.message}`, true);
      } finally {
        ev.target.disabled = false;
        refresh();
      }
    },
  }, label);
}

function summarize(r) {
  if (r === null || r === undefined) return 'done';
  if (typeof r !== 'object') return String(r);
  return Object.entries(r).filter(([, v]) => typeof v !== 'object')
    .map(([k, v]) => `${k} ${v}`).join(', ') || 'done';
}

/* ---- pieces of views ---- */
function statesView(states) {
  const keys = Object.keys(states || {});
  const order = STATE_ORDER.filter((s) => keys.includes(s))
    .concat(keys.filter((s) => !STATE_ORDER.includes(s)));
  const shown = order.filter((s) => states[s] > 0);
  if (shown.length === 0) return h('span', { class: 'muted' }, 'no accounts');
  return h('span', { class: 'states' }, shown.map((s) =>
    h('span', { class: 'state', 'data-state': s, 'data-count': states[s] }, `${s} `,
      h('b', {}, states[s]))));
}

function barView(done, total) {
  return h('div', { class: 'bar', title: `${pct(done, total)} %` },
    h('span', { style: `width:${pct(done, total)}%` }));
}

/* The API knows a folder's source count once the folder is synced, so its
 * totals are lower bounds while accounts run: the source's counts come from
 * the estimate (asked once per migration), and the API's totals are used
 * alone only when nothing runs. */
const estimates = new Map();

function wantEstimate(m) {
  if (estimates.has(m)) return;
  estimates.set(m, null);
  api('POST', mpath(m, '/estimate'), {}).then((r) => estimates.set(m, r), () => {});
}

function totals(m, active) {
  const est = estimates.get(String(m.id));
  /* Once nothing runs the API's totals are exact (every folder synced). */
  const pick = (source, known, done) => {
    const t = active || known === null || known === undefined ? source ?? -1 : known;
    return t >= (done || 0) && t > 0 ? t : null;
  };
  return {
    messages: pick(est && est.messages, m.messages_total, m.messages_done),
    bytes: pick(est && est.bytes, m.bytes_total, m.bytes_done),
  };
}

function progressView(m, rate, total, running) {
  const left = total.bytes === null ? null : total.bytes - (m.bytes_done || 0);
  /* No ETA while nothing runs (paused, waiting): the rate says nothing then. */
  const eta = left === null ? null : left <= 0 ? 0
    : rate >= 1 && running ? left / rate : null;
  const of = (t, fmt) => (t === null ? '?' : fmt(t));
  return h('div', { class: 'progress', id: 'progress' },
    h('span', {}, 'messages'), barView(m.messages_done, total.messages),
    h('span', {}, h('span', { id: 'messages-done' }, m.messages_done ?? 0), ' of ',
      h('span', { id: 'messages-total' }, of(total.messages, (t) => t)),
      total.messages === null ? '' : ` (${pct(m.messages_done, total.messages)} %)`),
    h('span', {}, 'bytes'), barView(m.bytes_done, total.bytes),
    h('span', {}, h('span', { id: 'bytes-done', 'data-bytes': m.bytes_done ?? 0 },
      bytes(m.bytes_done ?? 0)), ' of ',
    h('span', { id: 'bytes-total', 'data-bytes': total.bytes ?? '' }, of(total.bytes, bytes)),
    total.bytes === null ? '' : ` (${pct(m.bytes_done, total.bytes)} %)`),
    h('span', {}, 'rate'), h('span', { id: 'rate' }, rate >= 1 ? `${bytes(rate)}/s` : '-'),
    h('span', {}, 'ETA ', h('b', { id: 'eta' }, eta === null ? '-' : duration(eta))));
}

/* Bytes per second between two polls of the same migration, smoothed. */
function measureRate(m) {
  const now = Date.now() / 1000;
  const prev = rates.get(m.id);
  let rate = prev ? prev.rate : 0;
  if (prev && now > prev.at && m.bytes_done >= prev.bytes) {
    const r = (m.bytes_done - prev.bytes) / (now - prev.at);
    rate = prev.rate > 0 ? 0.5 * r + 0.5 * prev.rate : r;
  }
  rates.set(m.id, { at: now, bytes: m.bytes_done || 0, rate });
  return rate;
}

/* The throughput chart: bytes per minute as bars, messages per minute as a
 * line, drawn on a canvas sized to its box.  data-points tells a test how
 * many minutes were drawn. */
function drawThroughput(canvas, allRows) {
  /* The hour is cut to the minutes with traffic (two before the first), at
   * least the last ten, so a short pass is not a sliver at the right edge. */
  const first = allRows.findIndex((r) => (r.bytes || 0) > 0 || (r.messages || 0) > 0);
  const rows = first < 0 ? allRows : allRows.slice(Math.max(0,
    Math.min(first - 2, allRows.length - 10)));
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 600, hgt = canvas.clientHeight || 180;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(hgt * dpr);
  const g = canvas.getContext('2d');
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, hgt);
  const pad = { l: 80, r: 48, t: 10, b: 22 };
  const pw = w - pad.l - pad.r, ph = hgt - pad.t - pad.b;
  const maxB = Math.max(1, ...rows.map((r) => r.bytes || 0));
  const maxM = Math.max(1, ...rows.map((r) => r.messages || 0));
  canvas.dataset.points = rows.length;
  canvas.dataset.maxBytes = rows.length ? maxB : 0;
  g.strokeStyle = '#d9dde3';
  g.fillStyle = '#6b7380';
  g.font = '11px system-ui, sans-serif';
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + ph - (ph * i) / 4;
    g.beginPath(); g.moveTo(pad.l, y); g.lineTo(pad.l + pw, y); g.stroke();
    g.textAlign = 'right';
    g.fillText(`${bytes((maxB * i) / 4 / 60)}/s`, pad.l - 6, y + 4);
    g.textAlign = 'left';
    g.fillText(`${Math.round((maxM * i) / 4)}`, pad.l + pw + 6, y + 4);
  }
  if (first < 0) {
    g.textAlign = 'center';
    g.fillText('nothing copied in the last hour', pad.l + pw / 2, pad.t + ph / 2);
    return;
  }
  /* Minutes are placed by their time: a minute the API leaves out (nothing
   * copied) stays an empty slot. */
  const times = rows.map((r) => Date.parse(r.at));
  const t0 = Math.min(...times), t1 = Math.max(...times);
  const slots = Math.round((t1 - t0) / 60000) + 1;
  const slot = pw / slots;
  const xOf = (i) => pad.l + Math.round((times[i] - t0) / 60000) * slot;
  g.fillStyle = '#2d6cdf';
  rows.forEach((r, i) => {
    const bh = (ph * (r.bytes || 0)) / maxB;
    g.fillRect(xOf(i) + 1, pad.t + ph - bh, Math.max(1, slot - 2), bh);
  });
  g.strokeStyle = '#c77700';
  g.lineWidth = 2;
  g.beginPath();
  rows.forEach((r, i) => {
    const x = xOf(i) + slot / 2, y = pad.t + ph - (ph * (r.messages || 0)) / maxM;
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
  g.fillStyle = '#6b7380';
  g.textAlign = 'left';
  g.fillText(new Date(t0).toLocaleTimeString(), pad.l, hgt - 6);
  g.textAlign = 'right';
  g.fillText(new Date(t1).toLocaleTimeString(), pad.l + pw, hgt - 6);
}

function table(headers, rows, attrs = {}) {
  return h('table', attrs,
    h('thead', {}, h('tr', {}, headers.map((x) =>
      h('th', { class: x.startsWith('#') ? 'num' : null }, x.replace(/^#/, ''))))),
    h('tbody', {}, rows));
}

function num(v) { return h('td', { class: 'num' }, v ?? 0); }
function cell(v) { return h('td', {}, v === null || v === undefined ? '-' : v); }

function crumbs(...parts) {
  const nav = document.getElementById('crumbs');
  nav.replaceChildren(...parts.flatMap((p, i) => [i ? ' / ' : '',
    p.href ? h('a', { href: p.href }, p.text) : h('span', {}, p.text)]));
}

/* ---- views ---- */
function totalsOf(m) {
  const st = m.states || {};
  return totals(m, (st.queued || 0) + (st.running || 0) + (st.waiting || 0) > 0);
}

async function viewMigrations() {
  crumbs({ text: 'migrations' });
  const items = await apiAll('/v1/migrations');
  const rows = items.map((m) => h('tr', { 'data-migration': m.id },
    cell(h('a', { href: `#/m/${m.id}` }, m.id)),
    cell(h('a', { href: `#/m/${m.id}` }, m.name)),
    num(m.accounts),
    h('td', {}, statesView(m.states)),
    h('td', {}, barView(m.messages_done, totalsOf(m).messages),
      `${m.messages_done ?? 0} of ${totalsOf(m).messages ?? '?'} messages`),
    h('td', {}, barView(m.bytes_done, totalsOf(m).bytes),
      `${bytes(m.bytes_done ?? 0)} of ${totalsOf(m).bytes === null ? '?' : bytes(totalsOf(m).bytes)}`),
    num(m.current_pass), num(m.errors)));
  return [h('section', { class: 'card' }, h('h1', {}, 'Migrations'),
    items.length === 0 ? h('p', { class: 'muted' }, 'No migration yet.')
      : table(['ID', 'Name', '#Accounts', 'States', 'Messages', 'Bytes', '#Pass', '#Errors'],
        rows, { id: 'migrations' }))];
}

async function viewMigration(m) {
  const [mig, accounts, throughput, errors] = await Promise.all([
    api('GET', mpath(m)),
    apiAll(mpath(m, '/accounts')),
    api('GET', mpath(m, '/throughput?minutes=60')).catch(() => []),
    api('GET', mpath(m, '/errors?limit=50')).catch(() => ({ items: [] })),
  ]);
  crumbs({ text: 'migrations', href: '#/' }, { text: `${mig.id} ${mig.name}` });
  const rate = measureRate(mig);
  const st = mig.states || {};
  const active = (st.queued || 0) + (st.running || 0) + (st.waiting || 0) > 0;
  if (active) wantEstimate(String(mig.id));
  const pass = mig.current_pass || 0;
  const canvas = h('canvas', { id: 'throughput' });
  const errItems = Array.isArray(errors) ? errors : errors.items || [];
  const tput = Array.isArray(throughput) ? throughput : throughput.items || [];

  const out = [
    h('section', { class: 'card' },
      h('h1', { id: 'migration-title', 'data-migration': mig.id }, `Migration ${mig.id}: ${mig.name}`),
      h('p', {}, `pass ${pass} · ${mig.accounts ?? accounts.length} accounts · `,
        h('span', { id: 'error-count' }, mig.errors ?? 0), ' errors'),
      h('div', { id: 'states' }, statesView(mig.states)),
      h('div', { class: 'buttons' },
        action('Start (pass 1)', () => api('POST', mpath(m, '/passes'), { kind: 'bulk' }),
          { id: 'start' }),
        action('Delta pass', () => api('POST', mpath(m, '/passes'), { kind: 'delta' }),
          { id: 'delta' }),
        action('Final pass', () => api('POST', mpath(m, '/passes'), { kind: 'final' }),
          { id: 'final' }),
        action('Pause', () => api('POST', mpath(m, '/pause')), { id: 'pause' }),
        action('Resume', () => api('POST', mpath(m, '/resume')), { id: 'resume' }),
        pass > 0 ? action(`Retry failed of pass ${pass}`,
          () => api('POST', mpath(m, `/passes/${pass}/retry`), {}), { id: 'retry' }) : null),
      progressView(mig, rate, totals(mig, active), (st.running || 0) > 0)),
    h('section', { class: 'card' }, h('h2', {}, 'Throughput (per minute, last hour)'), canvas,
      h('p', { class: 'muted' }, 'bars: bytes · line: messages')),
    h('section', { class: 'card' }, h('h2', {}, 'Accounts'),
      table(['Source', 'Destination', 'State', '#Pass', '#Messages', '#Bytes', '#Errors',
        'Now', 'Last error'],
      accounts.map((a) => h('tr', { 'data-account': a.source_login, 'data-state': a.state },
        cell(h('a', { href: `#/m/${m}/a/${encodeURIComponent(a.source_login)}` },
          a.source_login)),
        cell(a.destination_login),
        h('td', {}, h('span', { class: 'state', 'data-state': a.state }, a.state)),
        num(`${a.pass_done ?? 0}/${a.pass ?? 0}`),
        num(a.progress && a.progress.messages > (a.messages || 0)
          ? a.progress.messages : a.messages),
        num(bytes(a.progress && a.progress.bytes > (a.bytes || 0) ? a.progress.bytes : a.bytes)),
        num(a.errors),
        cell(a.progress ? `${a.progress.folder || ''}${a.progress.worker
          ? ` (${a.progress.worker})` : ''}` : null),
        h('td', { class: 'err' }, a.last_error || ''))), { id: 'accounts' })),
    h('section', { class: 'card' }, h('h2', {}, 'Errors (latest 50)'),
      errItems.length === 0 ? h('p', { class: 'muted', id: 'errors-none' }, 'No message errors.')
        : table(['At', 'Account', 'Folder', '#UID', 'Error'], errItems.map((e) => h('tr', {},
          cell(when(e.at)), cell(e.account), cell(e.folder), num(e.uid),
          h('td', { class: 'err' }, e.error))), { id: 'errors' })),
  ];
  /* The canvas is drawn once it is in the page and has a size. */
  requestAnimationFrame(() => drawThroughput(canvas, tput));
  return out;
}

async function viewAccount(m, a) {
  const acc = await api('GET', apath(m, a));
  const proof = await api('GET', apath(m, a, '/proof')).catch((e) => {
    if (e.status === 404) return null;
    throw e;
  });
  crumbs({ text: 'migrations', href: '#/' }, { text: `migration ${m}`, href: `#/m/${m}` },
    { text: acc.source_login });
  const out = [
    h('section', { class: 'card' },
      h('h1', {}, `${acc.source_login} → ${acc.destination_login}`),
      h('p', {}, 'state ', h('span', { class: 'state', id: 'account-state', 'data-state': acc.state },
        acc.state), ` · pass ${acc.pass_done ?? 0} of ${acc.pass ?? 0} done · ${acc.messages ?? 0}`
        + ` messages · ${bytes(acc.bytes ?? 0)} · ${errorCount(acc)} errors`),
      acc.last_error ? h('p', { class: 'err' }, acc.last_error) : null,
      h('div', { class: 'buttons' },
        action('Pause', () => api('POST', apath(m, a, '/pause')), { id: 'pause' }),
        action('Resume', () => api('POST', apath(m, a, '/resume')), { id: 'resume' }),
        action('Retry', () => api('POST', mpath(m, `/passes/${acc.pass || 1}/retry`),
          { accounts: [acc.source_login] }), { id: 'retry' }),
        action('Run proof', () => api('POST', mpath(m, '/proof'), { accounts: [acc.source_login] }),
          { id: 'proof' }))),
    h('section', { class: 'card' }, h('h2', {}, 'Folders'),
      table(['Source', 'Destination', '#Source msgs', '#Destination msgs', '#Copied', '#Matched',
        '#Failed', '#Bytes', 'Synced', 'Error'],
      (acc.folders || []).map((f) => h('tr', { 'data-folder': f.source_name },
        cell(f.source_name), cell(f.destination_name), num(f.source_messages),
        num(f.destination_messages), num(f.copied), num(f.matched), num(f.failed),
        num(bytes(f.bytes ?? 0)), cell(when(f.synced_at)), h('td', { class: 'err' }, f.error || ''))),
      { id: 'folders' })),
    h('div', { class: 'grid2' },
      h('section', { class: 'card' }, h('h2', {}, 'Passes'),
        table(['#Pass', 'Kind', 'State', '#Messages', '#Bytes', 'Started', 'Finished'],
          (acc.passes || []).map((p) => h('tr', {}, num(p.number ?? p.pass), cell(p.kind),
            cell(p.state), num(p.messages), num(bytes(p.bytes ?? 0)), cell(when(p.started_at)),
            cell(when(p.finished_at)))))),
      h('section', { class: 'card' }, h('h2', {}, 'State history'),
        table(['At', 'From', 'To', 'By', 'Reason'], (acc.history || []).map((x) => h('tr', {},
          cell(when(x.at)), cell(x.from_state), cell(x.to_state), cell(x.actor), cell(x.reason)))))),
    h('section', { class: 'card' }, h('h2', {}, 'Errors'),
      (acc.errors || []).length === 0 ? h('p', { class: 'muted' }, 'No message errors.')
        : table(['At', 'Folder', '#UID', 'Error'], acc.errors.map((e) => h('tr', {}, cell(when(e.at)),
          cell(e.folder), num(e.uid), h('td', { class: 'err' }, e.error))))),
    h('section', { class: 'card', id: 'proof' }, h('h2', {}, 'Proof of completeness'),
      proofView(proof)),
  ];
  return out;
}

/* An account's error count: a number in the lists, in the detail maybe the
 * list of errors itself. */
function errorCount(acc) {
  if (Array.isArray(acc.errors)) return acc.errors.length;
  return acc.errors ?? 0;
}

function proofView(p) {
  if (!p) return h('p', { class: 'muted' }, 'No proof yet: "Run proof" compares both sides.');
  return h('div', {},
    h('p', {}, h('b', { id: 'proof-verdict', 'data-exact': p.exact ? 'true' : 'false' },
      p.exact ? 'Complete: the destination holds exactly the source\'s messages'
        : 'Differences found'), ` (at ${when(p.at) || '-'})`),
    table(['Folder', '#Source', '#Destination', '#Missing', '#Extra', '#Changed'],
      (p.folders || []).map((f) => h('tr', {}, cell(f.name), num(f.source), num(f.destination),
        num(f.missing), num(f.extra), num(f.changed)))),
    (p.differences || []).length === 0 ? null
      : table(['Folder', 'Kind', '#Source UID', '#Destination UID', 'Detail'],
        p.differences.map((d) => h('tr', {}, cell(d.folder), cell(d.kind), num(d.source_uid),
          num(d.destination_uid), cell(d.detail)))));
}

/* ---- routing and polling ---- */
function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  if (parts[0] === 'm' && parts[1] && parts[2] === 'a' && parts[3])
    return () => viewAccount(parts[1], decodeURIComponent(parts[3]));
  if (parts[0] === 'm' && parts[1]) return () => viewMigration(parts[1]);
  return viewMigrations;
}

async function refresh() {
  if (busy) return;
  busy = true;
  clearTimeout(timer);
  try {
    const nodes = await route()();
    document.getElementById('view').replaceChildren(...nodes);
    document.getElementById('updated').textContent =
      `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.loaded = 'true';
  } catch (e) {
    document.getElementById('updated').textContent = `${e.code || 'error'}: ${e.message}`;
    if (e.status === 401) showMessage('The API wants a token: paste it above.', true);
    else if (e.status === 404) showMessage(`Not found: ${e.message}`, true);
  } finally {
    busy = false;
    timer = setTimeout(refresh, POLL_MS);
  }
}

document.getElementById('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = document.getElementById('token');
  if (input.value.trim()) sessionStorage.setItem(TOKEN_KEY, input.value.trim());
  input.value = '';
  document.getElementById('token-box').hidden = true;
  showMessage('', false);
  refresh();
});
window.addEventListener('hashchange', () => { showMessage('', false); refresh(); });
refresh();
