// Postern submit page (docs/format.md 8.2-8.4): encrypt in the browser, upload with tus.
// The form is taken over only once WebCrypto works and the keyring verifies against the root
// and serial the page announces. Otherwise (fail closed) it stays the plain form, which the
// server seals, and a notice says so. Every text shown comes from #postern-strings.
import { cleanFilename, cryptoSupport, planEnvelope, verifyKeyring } from './postern-crypto.js';

const byId = (id) => document.getElementById(id);
const form = byId('submit-form');
const status = byId('postern-status');
const S = byId('postern-strings')?.dataset;
// The page's own addresses: they carry its language (?lang=), so every page the script
// leads to, and every refusal, is in the language the source chose.
const URLS = form?.dataset || {};
const UPLOADS = URLS.uploads || '/api/uploads';
const DONE = URLS.done || '/submit/done';
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const CHUNK = 65552; // a sealed 64 KiB chunk (format.md 3.4)
const PER_PATCH = 16; // chunks per PATCH: about 1 MiB
const DELAYS = [1, 2, 4, 8, 15, 30, 60]; // seconds before each retry, then the last again
const PATIENCE = 90; // retries: over an hour (uploads are kept for 24 hours)
const lang = S?.locale || document.documentElement.lang || undefined;
const num = new Intl.NumberFormat(lang, { maximumFractionDigits: 1 });
const pct = new Intl.NumberFormat(lang, { style: 'percent' });
const fill = (text, values) => text.replace(/\{(\w+)\}/g, (m, k) => values?.[k] ?? m);
const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content;
let recipients;

function el(tag, props, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

/** A byte count in the page's language: its unit symbols (from the page) and its digits. */
function size(n) {
  const units = [[S.unitGib || 'GiB', 2 ** 30], [S.unitMib || 'MiB', 2 ** 20],
    [S.unitKib || 'KiB', 1024]];
  const [unit, f] = units.find(([, f]) => n >= f) || [S.unitB || 'B', 1];
  return `${num.format(n / f)} ${unit}`;
}

/** A refusal: `key` names the text to show; `retry` marks what may succeed if sent again,
 * `login` a 403, `wait` the server's Retry-After. */
class Failure extends Error {
  constructor(key, retry = false, values = {}, login = false, wait = 0) {
    super(key);
    Object.assign(this, { key, retry, values, login, wait });
  }
}

const CODES = { stale_keyring: 'stale', too_large: 'tooLarge', not_logged_in: 'expired',
  insufficient_storage: 'full' };
const RETRY = ['incomplete_body', 'offset_mismatch', 'upload_busy', 'insufficient_storage'];

async function call(job, method, url, headers, body, abortable = true) {
  let r;
  try {
    r = await fetch(url, {
      method, body, cache: 'no-store', credentials: 'same-origin', redirect: 'error',
      signal: abortable ? job.abort.signal : undefined,
      headers: { 'Tus-Resumable': '1.0.0', 'X-Postern-CSRF': job.token, ...headers },
    });
  } catch {
    throw job.abort.signal.aborted ? new Failure('cancelled') : new Failure('network', true);
  }
  if (r.ok) return r;
  let code = '';
  try { code = String((await r.json()).error); } catch { /* an HTML error page */ }
  throw new Failure(CODES[code] || (r.status === 403 ? 'expired' : 'failed'),
    r.status >= 500 || RETRY.includes(code), {}, r.status === 403,
    Math.min(Number(r.headers.get('Retry-After')) || 0, 600));
}

function offsetOf(response, total) {
  const n = Number(response.headers.get('Upload-Offset'));
  if (!Number.isSafeInteger(n) || n < 0 || n > total) throw new Failure('failed');
  return n;
}

const wait = (job, seconds) => new Promise((done, fail) => {
  const timer = setTimeout(done, seconds * 1000);
  job.abort.signal.addEventListener('abort', () => {
    clearTimeout(timer);
    fail(new Failure('cancelled'));
  }, { once: true });
});

/** The next PATCH body: the envelope from `offset` to the end of up to PER_PATCH chunks.
 * Chunks are deterministic (format.md 3.6): resuming re-seals just the one holding `offset`. */
async function slice(plan, offset, read) {
  const h = plan.header.length;
  const first = offset < h ? 0 : Math.floor((offset - h) / CHUNK);
  const ids = [];
  for (let i = first; i < Math.min(plan.chunkCount, first + PER_PATCH); i++) ids.push(i);
  const parts = await Promise.all(ids.map((i) => plan.sealChunk(i, read)));
  if (offset < h) parts.unshift(plan.header.subarray(offset));
  else parts[0] = parts[0].subarray(offset - plan.chunkOffset(first));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => { out.set(p, at); return at + p.length; }, 0);
  return out;
}

/** `step()` until it succeeds, waiting longer after each failure that may pass, and after a
 * new login when the session ended. */
async function persist(job, item, step) {
  for (let failures = 0; ; failures++) {
    try {
      return await step(failures);
    } catch (e) {
      if (e.login && !job.abort.signal.aborted) {
        await relogin(job);
        failures = -1;
        continue;
      }
      if (!e.retry || failures >= PATIENCE) throw e;
      item.show(undefined, e.key === 'full' ? S.full : S.retrying);
      await wait(job, Math.max(e.wait, DELAYS[Math.min(failures, DELAYS.length - 1)]));
    }
  }
}

async function token(path) {
  const r = await fetch(path, { cache: 'no-store' });
  const t = new DOMParser().parseFromString(await r.text(), 'text/html')
    .querySelector('[name=csrf_token]')?.value;
  if (!t) throw new Error();
  return t;
}

/** Log in again with the page's login form; resolves once `job.token` is the new session's. */
function relogin(job) {
  const box = byId('postern-login');
  const [field, button] = box.elements;
  const note = byId('postern-login-note');
  note.textContent = '';
  box.hidden = false;
  field.focus();
  return new Promise((done, fail) => {
    job.abort.signal.addEventListener('abort', () => fail(new Failure('cancelled')));
    box.onsubmit = async (event) => {
      event.preventDefault();
      button.disabled = true;
      note.textContent = S.loggingIn;
      try {
        const login = URLS.login || '/login';
        const r = await fetch(login, { method: 'POST', redirect: 'manual',
          body: new URLSearchParams({ csrf_token: await token(login), codename: field.value }) });
        // Logged in: a redirect; refused: the login page again.
        note.textContent = S.loginFailed;
        if (r.type === 'opaqueredirect') {
          job.token = await token(location.href);
          box.hidden = true;
          done();
        }
      } catch {
        note.textContent = S.retrying;
      }
      button.disabled = false;
    };
  });
}

async function upload(job, item) {
  const plan = await planEnvelope({ recipients, kind: item.kind, filename: item.filename,
    mediaType: item.type, length: item.size });
  const total = plan.totalLength;
  // The page chooses the upload's capability, so a creation whose answer was lost is asked
  // again for the same upload (format.md 8.3) instead of leaving one nobody can resume.
  const capability = [...crypto.getRandomValues(new Uint8Array(43))]
    .map((b) => B64URL[b & 63]).join('');
  // Not abortable: if the upload was made, its Location is needed to delete it again.
  const made = await persist(job, item, () => call(job, 'POST', UPLOADS,
    { 'Upload-Length': total, 'Upload-Capability': capability }, undefined, false));
  // The URL carries the upload's capability: HEAD, PATCH and DELETE need nothing else.
  const url = new URL(made.headers.get('Location') || '', location.href);
  const id = /^\/api\/uploads\/([0-9a-f]{32})\.[A-Za-z0-9_-]{43}$/.exec(url.pathname)?.[1];
  if (url.origin !== location.origin || !id) throw new Failure('failed');
  job.urls.push(url.href);
  item.id = id;
  let offset = 0;
  while (offset < total) {
    if (job.abort.signal.aborted) throw new Failure('cancelled');
    offset = await persist(job, item, async (failures) => {
      // After a failure the server says how much arrived; go on from there.
      const at = failures ? offsetOf(await call(job, 'HEAD', url), total) : offset;
      if (at === total) return at;
      return offsetOf(await call(job, 'PATCH', url, {
        'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': at,
      }, await slice(plan, at, item.read)), total);
    });
    item.show(offset / total);
  }
}

function lock(on) {
  for (const e of form.elements) e.disabled = on;
}

function say(text, error) {
  status.replaceChildren(el('p', { className: error ? 'error' : '', textContent: text }));
}

function check(items) {
  const most = Number(form.dataset.maxFiles);
  const largest = Number(form.dataset.maxFileBytes);
  const files = items.filter((i) => i.kind === 'file');
  if (!items.length) throw new Failure('empty');
  if (files.length > most) throw new Failure('tooMany', false, { count: most });
  const big = files.find((i) => i.size > largest);
  if (big) throw new Failure('tooLarge', false, { name: big.label, size: size(largest) });
}

async function send(event) {
  event.preventDefault();
  if (form.dataset.busy) return;
  const items = [];
  const text = new TextEncoder().encode(form.elements.message.value);
  if (text.length) {
    items.push({ kind: 'message', filename: '', type: 'text/plain; charset=utf-8',
      size: text.length, label: S.messageName, read: (o, n) => text.subarray(o, o + n) });
  }
  for (const f of form.elements.files.files) {
    items.push({ kind: 'file', filename: cleanFilename(f.name), size: f.size, label: f.name,
      type: f.type.replace(/[^\x20-\x7e]/g, '').slice(0, 127).trim() || 'application/octet-stream',
      read: (o, n) => f.slice(o, o + n).arrayBuffer() });
  }
  // The completion key (format.md 8.4): the same for every try of this submission.
  const key = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b + 256).join('');
  const job = { abort: new AbortController(), urls: [], token: form.elements.csrf_token.value };
  try {
    check(items);
  } catch (e) {
    say(fill(S[e.key], e.values), true);
    return;
  }
  const cancel = el('button', { type: 'button', textContent: S.cancel });
  cancel.addEventListener('click', () => job.abort.abort(), { once: true });
  const rows = items.map((item) => {
    const bar = el('progress', { max: 1, value: 0 });
    const line = el('span');
    item.show = (part = bar.value, note) => {
      bar.value = part;
      line.textContent = note || fill(S.progress, { name: item.label, percent: pct.format(part),
        sent: size(Math.round(part * item.size)), total: size(item.size) });
    };
    item.show(0);
    return el('li', {}, bar, ' ', line);
  });
  status.replaceChildren(el('p', { textContent: S.sending }), el('ul', {}, ...rows), cancel);
  form.dataset.busy = '1';
  lock(true);
  try {
    for (job.item of items) await upload(job, job.item);
    cancel.disabled = true;
    if (job.abort.signal.aborted) throw new Failure('cancelled');
    const body = JSON.stringify({ key,
      items: items.map((i) => ({ upload: i.id, kind: i.kind })) });
    const answer = await persist(job, { show: (_, note) => say(note || S.sending) },
      () => call(job, 'POST', URLS.submissions || '/api/submissions',
        { 'Content-Type': 'application/json' }, body, false));
    // Sent: from here on nothing may say otherwise.
    let next = new URL(DONE, location.href);
    try { next = new URL((await answer.json()).next, location.href); } catch { /* keep it */ }
    location.assign(next.origin === location.origin ? next.href : DONE);
  } catch (e) {
    job.abort.abort();
    const headers = { 'Tus-Resumable': '1.0.0' };
    await Promise.allSettled(job.urls.map((u) => fetch(u, { method: 'DELETE', headers })));
    const key = e instanceof Failure ? e.key : 'failed';
    const values = { name: job.item?.label, size: size(Number(form.dataset.maxFileBytes)),
      ...e.values };
    say(fill(S[key] || S.failed, values), key !== 'cancelled');
    delete form.dataset.busy;
    lock(false);
  }
}

async function start() {
  if (!form || !status || !S) return;
  let why = 'whySupport';
  try {
    if (!(await cryptoSupport()).ok) throw new Error('no WebCrypto');
    why = 'whyKeyring';
    const r = await fetch('/keyring.json', { cache: 'no-store', credentials: 'same-origin' });
    if (!r.ok) throw new Error('no keyring');
    const keyring = await verifyKeyring(new Uint8Array(await r.arrayBuffer()), meta('postern-root'));
    if (String(keyring.serial) !== meta('postern-keyring-serial')) {
      why = 'whySerial';
      throw new Error('serial');
    }
    recipients = keyring.recipients;
  } catch {
    form.dataset.postern = 'plain';
    form.before(el('p', { id: 'postern-notice', className: 'notice', role: 'status',
      textContent: `${S.noCrypto} ${S[why]} ${S.serverSeals}` }));
    return;
  }
  form.addEventListener('submit', send);
  form.dataset.postern = 'encrypt';
  form.before(el('p', { id: 'postern-notice', className: 'notice', textContent: S.ready }));
}

start();
