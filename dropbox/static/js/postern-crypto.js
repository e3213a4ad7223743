// Postern browser crypto: HPKE (RFC 9180), envelope v1 writer, keyring v1 verifier.
// docs/format.md is the contract; section numbers refer to it. WebCrypto only (X25519,
// Ed25519, HKDF, HMAC, SHA-256, AES-GCM): no dependencies, no eval.

const subtle = globalThis.crypto.subtle;
const utf8 = (s) => new TextEncoder().encode(s);
const EMPTY = new Uint8Array(0);

/** Every error thrown here; `kind` is a format.md error class ('format', 'signature', ...). */
export class PosternError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'PosternError';
    this.kind = kind;
  }
}
const fail = (kind, message) => { throw new PosternError(kind, message); };
const format = (message) => fail('format', message);

// -- bytes --

const bytes = (b) => (b instanceof Uint8Array ? b : ArrayBuffer.isView(b)
  ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : new Uint8Array(b));

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => { out.set(p, at); return at + p.length; }, 0);
  return out;
}

const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const random = (n) => globalThis.crypto.getRandomValues(new Uint8Array(n));

/** Standard base64 with padding. */
export function toBase64(data) {
  const b = bytes(data);
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Strict base64 (section 1): decoding then encoding gives back the text. */
export function fromBase64(text, length) {
  if (typeof text !== 'string' || text.length % 4 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    format('not canonical base64');
  }
  const out = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  if (toBase64(out) !== text) format('not canonical base64');
  if (length !== undefined && out.length !== length) format(`expected ${length} bytes`);
  return out;
}

// -- primitives --

async function hmac(key, data) {
  // WebCrypto refuses empty HMAC keys; HMAC zero-pads keys, so 32 zero bytes are the same key.
  const k = await subtle.importKey('raw', key.length ? key : new Uint8Array(32),
    { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await subtle.sign('HMAC', k, data));
}

/** HKDF-SHA256(ikm, salt, info, L) with WebCrypto's HKDF. */
async function hkdf(ikm, salt, info, length) {
  const k = await subtle.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
  return new Uint8Array(await subtle.deriveBits(
    { name: 'HKDF', hash: 'SHA-256', salt, info: utf8(info) }, k, 8 * length));
}

// X25519 private keys are imported as PKCS#8 (a fixed 16-byte prefix, RFC 8410), which needs
// no public half; the public key is then read back from the JWK export.
const PKCS8_X25519 = Uint8Array.of(48, 46, 2, 1, 0, 48, 5, 6, 3, 43, 101, 110, 4, 34, 4, 32);

async function importX25519(key) {
  const k = await (key instanceof Uint8Array
    ? subtle.importKey('pkcs8', concat(PKCS8_X25519, key), 'X25519', true, ['deriveBits'])
    : subtle.importKey('jwk', key, 'X25519', true, ['deriveBits']));
  const { x } = await subtle.exportKey('jwk', k);
  return { privateKey: k, publicKey: fromBase64(`${x.replace(/-/g, '+').replace(/_/g, '/')}=`) };
}

// -- HPKE, RFC 9180 base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-GCM --

const u16 = (n) => Uint8Array.of(n >> 8, n & 255);
const KEM = concat(utf8('KEM'), u16(0x20));
const suiteId = (aeadId) => concat(utf8('HPKE'), u16(0x20), u16(1), u16(aeadId));

const labeledExtract = (suite, salt, label, ikm) =>
  hmac(salt, concat(utf8('HPKE-v1'), suite, utf8(label), ikm));

async function labeledExpand(suite, prk, label, info, length) {
  const labeled = concat(u16(length), utf8('HPKE-v1'), suite, utf8(label), info);
  const out = new Uint8Array(length);
  let block = EMPTY;
  for (let i = 1, at = 0; at < length; i++, at += 32) {
    block = await hmac(prk, concat(block, labeled, Uint8Array.of(i)));
    out.set(block.subarray(0, length - at), at);
  }
  return out;
}

/** DeriveKeyPair (section 7.1.3) for X25519: raw `{privateKey, publicKey}`. */
async function deriveKeyPair(ikm) {
  const prk = await labeledExtract(KEM, EMPTY, 'dkp_prk', bytes(ikm));
  const sk = await labeledExpand(KEM, prk, 'sk', EMPTY, 32);
  return { privateKey: sk, publicKey: (await importX25519(sk)).publicKey };
}

/** A sender context (section 5.2); `seal` uses and advances the sequence number `seq`. */
class SenderContext {
  constructor(aeadId, key, baseNonce, exporterSecret) {
    Object.assign(this, { aeadId, key, baseNonce, exporterSecret, seq: 0 });
    this.aesKey = subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt']);
  }

  nonce(seq) {
    const n = this.baseNonce.slice();
    for (let i = 11, s = seq; s > 0; i--, s = Math.floor(s / 256)) n[i] ^= s % 256;
    return n;
  }

  /** ContextS.Seal(aad, pt): ciphertext || tag. */
  async seal(aad, pt) {
    if (this.seq >= Number.MAX_SAFE_INTEGER) format('HPKE context exhausted');
    const iv = this.nonce(this.seq++);
    return new Uint8Array(await subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: bytes(aad) }, await this.aesKey, bytes(pt)));
  }

  /** Context.Export (section 5.3). */
  export(context, length) {
    return labeledExpand(suiteId(this.aeadId), this.exporterSecret, 'sec', bytes(context), length);
  }
}

/**
 * SetupBaseS(pkR, info): `{enc, sharedSecret, context}`. `aeadId` 1 is AES-128-GCM, 2 (the
 * default) AES-256-GCM. `ephemeral` (a raw 32-byte private key or a JWK with d and x) is for
 * test vectors only; by default a fresh key is generated.
 */
async function setupBaseS(pkR, info, { aeadId = 2, ephemeral } = {}) {
  const nk = { 1: 16, 2: 32 }[aeadId] || format(`unsupported AEAD id ${aeadId}`);
  pkR = bytes(pkR);
  if (pkR.length !== 32) format('a recipient public key is 32 bytes');
  let skE, enc;
  if (ephemeral === undefined) {
    const pair = await subtle.generateKey('X25519', false, ['deriveBits']);
    skE = pair.privateKey;
    enc = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
  } else {
    ({ privateKey: skE, publicKey: enc } = await importX25519(ephemeral));
  }
  let dh = new Uint8Array(32);
  try {
    const pub = await subtle.importKey('raw', pkR, 'X25519', false, []);
    dh = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: pub }, skE, 256));
  } catch { /* an all-zero result: refused below */ }
  if (dh.every((x) => x === 0)) format('the recipient public key is a low-order point');
  const prk = await labeledExtract(KEM, EMPTY, 'eae_prk', dh);
  const sharedSecret = await labeledExpand(KEM, prk, 'shared_secret', concat(enc, pkR), 32);
  // Key schedule (section 5.1) in base mode: psk and psk_id are empty.
  const suite = suiteId(aeadId);
  const context = concat(Uint8Array.of(0), await labeledExtract(suite, EMPTY, 'psk_id_hash', EMPTY),
    await labeledExtract(suite, EMPTY, 'info_hash', bytes(info)));
  const secret = await labeledExtract(suite, sharedSecret, 'secret', EMPTY);
  const expand = (label, n) => labeledExpand(suite, secret, label, context, n);
  return { enc, sharedSecret, context: new SenderContext(aeadId, await expand('key', nk),
    await expand('base_nonce', 12), await expand('exp', 32)) };
}

/** Single-shot SealBase: `{enc, ct}`. */
async function sealBase(pkR, info, aad, pt, options) {
  const { enc, context } = await setupBaseS(pkR, info, options);
  return { enc, ct: await context.seal(aad, pt) };
}

export const hpke = { AES_128_GCM: 1, AES_256_GCM: 2, deriveKeyPair, setupBaseS, sealBase };

/** The 16-byte key id of a public key (section 2.2); `algorithm` is 'x25519' or 'ed25519'. */
export async function keyId(algorithm, publicKey) {
  const data = concat(utf8(`postern/v1 key\n${algorithm}\n`), bytes(publicKey));
  return new Uint8Array(await subtle.digest('SHA-256', data)).slice(0, 16);
}

// -- envelope v1 (section 3) --

const CHUNK = 65536;
const KINDS = { message: 1, file: 2, reply: 3 };

/** Padmé (section 3.5), in arithmetic rather than 32-bit bitwise operations: sizes reach 2^40. */
export function padme(x) {
  if (x < 2) return x;
  const e = x.toString(2).length - 1;
  const z = 2 ** (e - e.toString(2).length);
  return Math.ceil(x / z) * z;
}

const paddedSize = (length, recordLength) => padme(Math.max(length + recordLength + 4, 1024));
const chunkCount = (padded) => Math.max(1, Math.ceil(padded / CHUNK));

/** Total envelope size, for the tus Upload-Length (section 8.3). */
export function envelopeLength(recipientCount, contentLength, filename = '', mediaType = '') {
  const s = paddedSize(contentLength, 12 + utf8(filename).length + mediaType.length);
  return 58 + 96 * recipientCount + s + 16 * chunkCount(s);
}

const BAD_NAME = /[\u0000-\u001f\u007f-\u009f/\\]|\p{Cs}/u;

/** The metadata record (section 3.5), checked as crypto.envelope.Metadata checks it. */
function record(kind, length, filename, mediaType) {
  const k = Object.hasOwn(KINDS, kind) ? KINDS[kind] : [1, 2, 3].includes(kind) ? kind
    : format('unknown kind');
  if (!Number.isSafeInteger(length) || length < 0 || length > 2 ** 40 - 398) {
    format('content length out of range');
  }
  const name = utf8(filename);
  if (typeof filename !== 'string' || (k !== 2 && filename) || BAD_NAME.test(filename) ||
      name.length > 255) format('invalid filename (only files have one)');
  if (typeof mediaType !== 'string' || !/^[\x20-\x7e]{0,127}$/.test(mediaType)) {
    format('invalid media type');
  }
  const out = new Uint8Array(12 + name.length + mediaType.length);
  const view = new DataView(out.buffer);
  out.set([1, k]);
  view.setUint32(2, Math.floor(length / 2 ** 32));
  view.setUint32(6, length % 2 ** 32);
  out[10] = name.length;
  out.set(name, 11);
  out[11 + name.length] = mediaType.length;
  out.set(utf8(mediaType), 12 + name.length);
  return out;
}

/** A name from the source's system made valid for a record (as crypto.clean_filename). */
export function cleanFilename(name) {
  name = name.replace(/\\/g, '/').split('/').pop().normalize('NFC');
  name = Array.from(name).filter((c) => !BAD_NAME.test(c)).join('')
    .replace(/^\p{White_Space}+|\p{White_Space}+$/gu, '');
  const b = utf8(name);
  for (let n = Math.min(b.length, 255); ; n--) { // at most 255 bytes, no split character
    try { return new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(0, n)); } catch { }
  }
}

async function buildHeader(publicKeys, fileKey, salt, ephemeralKeys) {
  const n = publicKeys.length;
  if (n < 1 || n > 32) format('an envelope has 1 to 32 recipients');
  if (fileKey.length !== 32 || salt.length !== 16) format('bad file key or salt length');
  if (ephemeralKeys && ephemeralKeys.length !== n) format('one ephemeral key per recipient');
  const ids = await Promise.all(publicKeys.map((pk) => keyId('x25519', pk)));
  if (new Set(ids.map(hex)).size !== n) format('a recipient is listed twice');
  const parts = [utf8('PSTRNENV'), Uint8Array.of(1, n)];
  for (let i = 0; i < n; i++) {
    const info = concat(utf8('postern/v1 envelope stanza\0'), ids[i]);
    const { enc, ct } = await sealBase(publicKeys[i], info, EMPTY, fileKey,
      { ephemeral: ephemeralKeys && ephemeralKeys[i] });
    parts.push(ids[i], enc, ct);
  }
  const covered = concat(...parts, salt);
  return concat(covered, await hmac(await hkdf(fileKey, EMPTY, 'postern/v1 envelope header', 32),
    covered));
}

/**
 * Plan one envelope (section 3) for `length` bytes of content: `{header, totalLength,
 * chunkCount, paddedLength, chunkOffset(i), sealChunk(i, readContent)}`. `sealChunk` seals
 * chunk i alone, in any order and as often as needed (a resumed upload gets the same bytes),
 * reading only the content it needs: `readContent(offset, size)` returns (a Promise of)
 * exactly `size` bytes, e.g. `(o, n) => file.slice(o, o + n).arrayBuffer()`.
 * `recipients` are 32-byte X25519 public keys (or objects with `publicKey`); `kind` is
 * 'message', 'file' or 'reply'. `fileKey`, `payloadSalt` and `ephemeralKeys` are for test
 * vectors only: leave them out and fresh random ones are used.
 */
export async function planEnvelope({ recipients, kind, filename = '', mediaType = '', length,
  fileKey = random(32), payloadSalt = random(16), ephemeralKeys }) {
  const rec = record(kind, length, filename, mediaType);
  const trailer = concat(rec, Uint8Array.of(0, 0, rec.length >> 8, rec.length & 255)); // || u32be(m)
  const size = paddedSize(length, rec.length);
  const n = chunkCount(size);
  [fileKey, payloadSalt] = [bytes(fileKey), bytes(payloadSalt)];
  const header = await buildHeader(recipients.map((r) => bytes(r.publicKey || r)), fileKey,
    payloadSalt, ephemeralKeys && ephemeralKeys.map((k) => (k.kty ? k : bytes(k))));
  const key = await subtle.importKey('raw', await hkdf(fileKey, payloadSalt,
    'postern/v1 envelope payload', 32), 'AES-GCM', false, ['encrypt']);
  const trailerAt = size - trailer.length;

  async function sealChunk(i, readContent) {
    if (!Number.isInteger(i) || i < 0 || i >= n) format('chunk index out of range');
    const start = i * CHUNK;
    const end = Math.min(start + CHUNK, size);
    let piece = new Uint8Array(end - start); // zeros: the padding
    if (start < length) {
      const want = Math.min(end, length) - start;
      const data = bytes(await readContent(start, want));
      if (data.length !== want) format('content shorter than its announced length');
      if (want === piece.length) piece = data; else piece.set(data);
    }
    if (end > trailerAt) {
      const from = Math.max(start, trailerAt);
      piece.set(trailer.subarray(from - trailerAt, end - trailerAt), from - start);
    }
    const iv = new Uint8Array(12); // u88be(i) || last-chunk flag
    new DataView(iv.buffer).setUint32(7, i);
    iv[11] = i === n - 1 ? 1 : 0;
    return new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv }, key, piece));
  }

  return {
    header,
    totalLength: header.length + size + 16 * n,
    chunkCount: n,
    paddedLength: size,
    chunkOffset: (i) => header.length + i * (CHUNK + 16),
    sealChunk,
  };
}

/** Seal small content (bytes or a string) in memory: the whole envelope. */
export async function sealBytes({ content, ...options }) {
  const data = typeof content === 'string' ? utf8(content) : bytes(content);
  const plan = await planEnvelope({ ...options, length: data.length });
  const chunks = [];
  for (let i = 0; i < plan.chunkCount; i++) {
    chunks.push(await plan.sealChunk(i, (at, size) => data.subarray(at, at + size)));
  }
  return concat(plan.header, ...chunks);
}

// -- strict JSON (section 1) --
// JSON.parse cannot be used: it keeps the last of duplicate members and reads 1.0 as 1.
// Here objects have a null prototype, integers are numbers (BigInt beyond 2^53) and other
// numbers are JsonFloat, which canonical JSON refuses.

class JsonFloat { constructor(value) { this.value = value; } }
const isObject = (v) => v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === null;
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;
const ESCAPES = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

function parseJson(text) {
  let i = 0;
  const bad = () => format(`not valid JSON (at ${i})`);
  const space = () => { while (' \t\n\r'.includes(text[i] || '.')) i++; };
  function string() {
    let out = '';
    for (let from = ++i; ; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x22 || c === 0x5c) {
        out += text.slice(from, i);
        if (c === 0x22) { i++; return out; }
        const e = text[++i];
        const u = text.substr(i + 1, 4);
        if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(u)) { out += String.fromCharCode(parseInt(u, 16)); i += 4; }
        else out += ESCAPES[e] ?? bad();
        from = i + 1;
      } else if (!(c >= 0x20)) bad(); // a control character, or the end of the text
    }
  }
  function value(depth) {
    space();
    const c = text[i];
    if (c === '"') return string();
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      const obj = c === '{' ? Object.create(null) : [];
      if (depth > 1000) bad();
      i++; space();
      if (text[i] === close) { i++; return obj; }
      for (let sep = ','; sep === ','; sep = text[i++]) {
        if (Array.isArray(obj)) obj.push(value(depth + 1));
        else {
          space();
          if (text[i] !== '"') bad();
          const key = string();
          if (Object.hasOwn(obj, key)) format(`duplicate JSON member ${key}`);
          space();
          if (text[i++] !== ':') bad();
          obj[key] = value(depth + 1);
        }
        space();
      }
      return text[i - 1] === close ? obj : bad();
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (m) {
      i = NUMBER.lastIndex;
      const v = Number(m[0]);
      return m[1] || m[2] ? new JsonFloat(v) : Number.isSafeInteger(v) ? v : BigInt(m[0]);
    }
    for (const [word, v] of [['true', true], ['false', false], ['null', null]]) {
      if (text.startsWith(word, i)) { i += word.length; return v; }
    }
    return bad();
  }
  const result = value(0);
  space();
  return i === text.length ? result : bad();
}

const byCodePoint = (a, b) => {
  const [x, y] = [Array.from(a), Array.from(b)].map((s) => s.map((c) => c.codePointAt(0)));
  const i = x.findIndex((c, j) => c !== y[j]);
  return i < 0 ? x.length - y.length : i >= y.length ? 1 : x[i] - y[i];
};
const SHORT = { 34: '\\"', 92: '\\\\', 8: '\\b', 12: '\\f', 10: '\\n', 13: '\\r', 9: '\\t' };
const quote = (s) => `"${s.replace(/[^\x20-\x7e]|["\\]/g, (ch) => {
  const c = ch.charCodeAt(0);
  return SHORT[c] || `\\u${c.toString(16).padStart(4, '0')}`;
})}"`;

/** Canonical JSON (section 1) of a parsed value; nesting deeper than 16 is refused. */
function canonical(v, depth = 0) {
  if (depth > 16) format('JSON nested too deeply');
  if (typeof v === 'string') return quote(v);
  if ((typeof v === 'number' || typeof v === 'bigint') && v >= 0) return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => canonical(x, depth + 1))}]`;
  if (isObject(v)) {
    return `{${Object.keys(v).sort(byCodePoint)
      .map((k) => `${quote(k)}:${canonical(v[k], depth + 1)}`)}}`;
  }
  return format('canonical JSON has only objects, arrays, strings and non-negative integers');
}

function parseCanonical(text) {
  const obj = parseJson(text);
  if (!isObject(obj) || canonical(obj) !== text) format('not a canonical JSON object');
  return obj;
}

// -- keyring v1 (section 4) --
// The checks run in the order of crypto/keyring/signed.py, so that a file that breaks several rules
// gets the same error class here as there.

function members(obj, names) {
  if (Object.keys(obj).length !== names.length || !names.every((n) => Object.hasOwn(obj, n))) {
    format(`members must be exactly ${names}`);
  }
}
const str = (obj, name) => (typeof obj[name] === 'string' ? obj[name] : format(`${name}: not a string`));
function list(obj, name, low, high) {
  const v = obj[name];
  return Array.isArray(v) && v.length >= low && v.length <= high ? v
    : format(`${name}: a list of ${low} to ${high} entries`);
}
function version(v) { // the integer 1; another integer is unsupported, anything else format
  if (typeof v !== 'bigint' && !Number.isInteger(v)) format('version: not an integer');
  if (v !== 1) fail('unsupported_version', `unsupported version ${v}`);
}

function checkTime(text, minYear) {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z$/.exec(text) || [];
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number);
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
  if (!(y >= minYear && d >= 1 && d <= days && h < 24 && mi < 60 && s < 60)) {
    format(`not a valid UTC time YYYY-MM-DDTHH:MM:SSZ: ${text}`);
  }
}

async function entries(obj, name, algorithm, low, high, seen) {
  const client = name === 'transfer_clients';
  const out = [];
  for (const raw of list(obj, name, low, high)) {
    if (!isObject(raw)) format(`${name}: entries are objects`);
    members(raw, ['key_id', 'public_key', 'label', client ? 'onion_auth_key' : 'journalist']);
    const publicKey = fromBase64(str(raw, 'public_key'), 32);
    const id = hex(await keyId(algorithm, publicKey));
    if (str(raw, 'key_id') !== id) format(`${name}: key_id does not match public_key`);
    const label = str(raw, 'label'); // section 2.3
    if (!/^[^ ].{0,127}$/su.test(label) || label.endsWith(' ') ||
        /[\u0000-\u001f\u007f-\u009f\u2028\u2029]|\p{Cs}/u.test(label)) format(`bad label ${label}`);
    const keys = [publicKey];
    if (client) keys.push(fromBase64(str(raw, 'onion_auth_key'), 32));
    else if (!/^[a-z0-9_-]{1,32}$/.test(str(raw, 'journalist'))) format(`${name}: bad journalist`);
    for (const k of keys.map(toBase64)) {
      if (seen.has(k)) format('a key appears twice in the manifest');
      seen.add(k);
    }
    if (out.length && out[out.length - 1].keyId > id) format(`${name}: not sorted by key_id`);
    out.push({ keyId: id, publicKey, label, journalist: raw.journalist });
  }
  return out;
}

async function parseManifest(text) {
  const m = parseCanonical(text);
  if (m.type !== 'postern-keyring') format('manifest: wrong type');
  if (m.version !== 1) fail('unsupported_version', 'unsupported manifest version');
  members(m, ['type', 'version', 'serial', 'issued', 'root', 'recipients', 'retired',
    'signing_keys', 'transfer_clients']);
  if (!Number.isInteger(m.serial) || m.serial < 1 || m.serial > 2 ** 53 - 1) format('bad serial');
  checkTime(str(m, 'issued'), 1000);
  const root = fromBase64(str(m, 'root'), 32);
  const seen = new Set();
  const recipients = await entries(m, 'recipients', 'x25519', 1, 32, seen);
  await entries(m, 'retired', 'x25519', 0, 256, seen);
  await entries(m, 'signing_keys', 'ed25519', 0, 64, seen);
  await entries(m, 'transfer_clients', 'ed25519', 0, 16, seen);
  return { serial: m.serial, issued: m.issued, root, recipients };
}

function parseRotation(raw) {
  if (!isObject(raw)) format('a rotation is an object');
  members(raw, ['type', 'version', 'statement', 'old_signature', 'new_signature']);
  if (raw.type !== 'postern-root-rotation') format('rotation: wrong type');
  version(raw.version);
  const text = str(raw, 'statement');
  if (text.length > 4096) format('rotation statement too long');
  const st = parseCanonical(text);
  members(st, ['type', 'version', 'old_root', 'new_root', 'issued']);
  if (st.type !== 'postern-root-rotation-statement' || st.version !== 1) {
    format('wrong rotation statement type or version');
  }
  checkTime(str(st, 'issued'), 1);
  const oldRoot = fromBase64(str(st, 'old_root'), 32);
  const newRoot = fromBase64(str(st, 'new_root'), 32);
  if (equal(oldRoot, newRoot)) format('a root cannot rotate to itself');
  return {
    message: utf8(`postern/v1 root rotation\n${text}`), oldRoot, newRoot,
    oldSignature: fromBase64(str(raw, 'old_signature'), 64),
    newSignature: fromBase64(str(raw, 'new_signature'), 64),
  };
}

async function verifyEd25519(publicKey, signature, message) {
  let ok = false;
  try {
    const key = await subtle.importKey('raw', publicKey, 'Ed25519', false, ['verify']);
    ok = await subtle.verify('Ed25519', key, signature, message);
  } catch { /* a key WebCrypto refuses verifies nothing */ }
  if (!ok) fail('signature', 'signature does not verify');
}

/** The root an unverified manifest names (section 4.2 step 2), or null. */
function namedRoot(text) {
  try {
    const obj = parseJson(text);
    return isObject(obj) && typeof obj.root === 'string' ? fromBase64(obj.root, 32) : null;
  } catch { return null; }
}

/**
 * Verify a signed keyring file (sections 4.2, 4.3 and 8.2) against the pinned root (base64 or
 * bytes). Pass the file's bytes, not a decoded string, so that invalid UTF-8 is refused. With
 * `expectedSerial` (the page's announced serial) the manifest's serial must equal it. Returns
 * `{serial, issued, root, recipients: [{keyId, publicKey, label, journalist}]}`; throws a
 * PosternError of kind 'format', 'unsupported_version', 'signature' or 'keyring'.
 */
export async function verifyKeyring(file, pinnedRoot, { expectedSerial } = {}) {
  if (typeof file === 'string') file = /\p{Cs}/u.test(file) ? format('not UTF-8') : utf8(file);
  file = bytes(file);
  const pinned = typeof pinnedRoot === 'string' ? fromBase64(pinnedRoot, 32) : bytes(pinnedRoot);
  if (file.length > 256 * 1024) format('a signed keyring is at most 256 KiB');
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(file);
  } catch { format('not UTF-8'); }
  const obj = parseJson(text);
  if (!isObject(obj) || obj.type !== 'postern-signed-keyring') format('not a signed keyring');
  version(obj.version);
  members(obj, ['type', 'version', 'manifest', 'signature', 'rotations']);
  const manifest = str(obj, 'manifest');
  if (/\p{Cs}/u.test(manifest)) format('the manifest is not valid Unicode');
  const signature = fromBase64(str(obj, 'signature'), 64);
  const rotations = list(obj, 'rotations', 0, 16).map(parseRotation);
  const roots = []; // the rotation chain (section 4.3)
  const known = (r) => roots.some((x) => equal(x, r));
  for (const r of rotations) {
    await verifyEd25519(r.oldRoot, r.oldSignature, r.message);
    await verifyEd25519(r.newRoot, r.newSignature, r.message);
    if (roots.length && !equal(r.oldRoot, roots[roots.length - 1])) {
      fail('keyring', 'the root rotation chain is broken');
    }
    if (!roots.length) roots.push(r.oldRoot);
    if (known(r.newRoot)) fail('keyring', 'the root rotation chain returns to an earlier root');
    roots.push(r.newRoot);
  }
  // Without rotations the chain is the manifest's root; if that cannot be read, the checks of
  // the signature and of the manifest below report the problem.
  if (!roots.length) roots.push(namedRoot(manifest) || pinned);
  if (!known(pinned)) fail('keyring', 'the root chain does not include the pinned root');
  const current = roots[roots.length - 1];
  await verifyEd25519(current, signature, utf8(`postern/v1 keyring\n${manifest}`));
  const result = await parseManifest(manifest);
  if (!equal(result.root, current)) fail('keyring', 'the manifest names another root');
  const announced = /^[1-9][0-9]{0,15}$/.test(expectedSerial) ? Number(expectedSerial) : expectedSerial;
  if (expectedSerial != null && result.serial !== announced) {
    fail('keyring', `keyring serial ${result.serial}, but the page announced ${expectedSerial}`);
  }
  return { ...result, root: toBase64(current) };
}

// -- feature probe --

/**
 * Try each primitive this module needs, for real. Returns `{ok, x25519, ed25519, hkdf, aesGcm,
 * errors}`; a page encrypts nothing (fails closed) unless `ok`.
 */
export async function cryptoSupport() {
  const result = { ok: false, errors: {} };
  const msg = utf8('postern');
  const probes = {
    async x25519() {
      const [a, b] = await Promise.all([0, 1].map(() =>
        subtle.generateKey('X25519', false, ['deriveBits'])));
      const [ab, ba] = await Promise.all([[a, b], [b, a]].map(([p, q]) =>
        subtle.deriveBits({ name: 'X25519', public: q.publicKey }, p.privateKey, 256)));
      return equal(new Uint8Array(ab), new Uint8Array(ba));
    },
    async ed25519() {
      const k = await subtle.generateKey('Ed25519', false, ['sign', 'verify']);
      const sig = await subtle.sign('Ed25519', k.privateKey, msg);
      return await subtle.verify('Ed25519', k.publicKey, sig, msg) &&
        !(await subtle.verify('Ed25519', k.publicKey, sig, utf8('Postern')));
    },
    async hkdf() { // RFC 5869 test case 3
      return hex(await hkdf(new Uint8Array(22).fill(11), EMPTY, '', 8)) === '8da4e775a563c18f';
    },
    async aesGcm() {
      const key = await subtle.generateKey({ name: 'AES-GCM', length: 256 }, false,
        ['encrypt', 'decrypt']);
      const iv = random(12);
      const ct = await subtle.encrypt({ name: 'AES-GCM', iv }, key, msg);
      const pt = await subtle.decrypt({ name: 'AES-GCM', iv }, key, ct);
      return ct.byteLength === 23 && equal(new Uint8Array(pt), msg);
    },
  };
  for (const [name, probe] of Object.entries(probes)) {
    try { result[name] = (await probe()) === true; } catch (e) {
      result[name] = false;
      result.errors[name] = String(e && e.name);
    }
  }
  result.ok = Boolean(globalThis.isSecureContext && result.x25519 && result.ed25519 &&
    result.hkdf && result.aesGcm);
  return result;
}
