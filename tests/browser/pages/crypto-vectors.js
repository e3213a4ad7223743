// Replays tests/vectors/*.json against dropbox/static/js/postern-crypto.js in the browser.
// The outcome is written as JSON to <pre id="result"> and to window.posternVectorResults;
// #status says "running", then "done" (or "error: ..."). Loaded by crypto-vectors.html.

import * as P from '../static/js/postern-crypto.js';

const results = { ok: false, passed: 0, failed: [], checked: {}, notApplicable: {}, timings: {} };
const status = document.getElementById('status');

const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const unhex = (s) => Uint8Array.from(s.match(/../g) || [], (x) => parseInt(x, 16));
const utf8 = (s) => new TextEncoder().encode(s);
const sha256 = async (b) => hex(new Uint8Array(await crypto.subtle.digest('SHA-256', b)));
const b64url = (b) => P.toBase64(b).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

/** Run one named check: it returns true, or a string (or false) saying what differs. */
async function check(name, fn) {
  const section = name.split('/')[0];
  results.checked[section] = (results.checked[section] || 0) + 1;
  let outcome;
  try {
    outcome = await fn();
  } catch (e) {
    outcome = `threw ${e && e.name}${e && e.kind ? ` (${e.kind})` : ''}: ${e && e.message}`;
  }
  if (outcome === true) results.passed += 1;
  else results.failed.push({ name, error: outcome || 'mismatch' });
}

function same(what, actual, expected) {
  return actual === expected ? true : `${what}: got ${actual}, expected ${expected}`;
}

async function timed(section, fn) {
  const start = performance.now();
  await fn();
  results.timings[section] = Math.round(performance.now() - start);
}

// -- RFC 9180 ---------------------------------------------------------------------------------

async function rfc9180(file) {
  for (const v of file.vectors) {
    if (v.mode !== 0 || v.kem_id !== 32 || v.kdf_id !== 1 || ![1, 2].includes(v.aead_id)) {
      results.notApplicable.rfc9180 = (results.notApplicable.rfc9180 || 0) + 1;
      continue;
    }
    const name = `rfc9180/aead-${v.aead_id}`;
    for (const who of ['E', 'R']) {
      await check(`${name}/derive-key-pair-${who}`, async () => {
        const pair = await P.hpke.deriveKeyPair(unhex(v[`ikm${who}`]));
        return same('sk', hex(pair.privateKey), v[`sk${who}m`]) === true
          ? same('pk', hex(pair.publicKey), v[`pk${who}m`]) : same('sk', hex(pair.privateKey), v[`sk${who}m`]);
      });
    }
    const setup = await P.hpke.setupBaseS(unhex(v.pkRm), unhex(v.info),
      { aeadId: v.aead_id, ephemeral: unhex(v.skEm) });
    const ctx = setup.context;
    for (const [field, actual] of [['enc', setup.enc], ['shared_secret', setup.sharedSecret],
      ['key', ctx.key], ['base_nonce', ctx.baseNonce], ['exporter_secret', ctx.exporterSecret]]) {
      await check(`${name}/${field}`, async () => same(field, hex(actual), v[field]));
    }
    for (const [i, e] of v.encryptions.entries()) {
      await check(`${name}/encryption-${i}`, async () => {
        const nonce = hex(ctx.nonce(ctx.seq));
        const ct = hex(await ctx.seal(unhex(e.aad), unhex(e.pt)));
        return nonce !== e.nonce ? same('nonce', nonce, e.nonce) : same('ct', ct, e.ct);
      });
    }
    for (const [i, e] of v.exports.entries()) {
      await check(`${name}/export-${i}`, async () =>
        same('exported', hex(await ctx.export(unhex(e.exporter_context), e.L)), e.exported_value));
    }
    await check(`${name}/ephemeral-as-jwk`, async () => {
      const jwk = { kty: 'OKP', crv: 'X25519', d: b64url(unhex(v.skEm)), x: b64url(unhex(v.pkEm)) };
      const s = await P.hpke.setupBaseS(unhex(v.pkRm), unhex(v.info),
        { aeadId: v.aead_id, ephemeral: jwk });
      return same('enc', hex(s.enc), v.enc) === true
        ? same('key', hex(s.context.key), v.key) : same('enc', hex(s.enc), v.enc);
    });
    await check(`${name}/single-shot`, async () => {
      const e = v.encryptions[0];
      const { enc, ct } = await P.hpke.sealBase(unhex(v.pkRm), unhex(v.info), unhex(e.aad),
        unhex(e.pt), { aeadId: v.aead_id, ephemeral: unhex(v.skEm) });
      return hex(enc) === v.enc && same('ct', hex(ct), e.ct);
    });
  }
}

// -- envelope v1 ------------------------------------------------------------------------------

// Content byte i is i mod 251; read lazily, one piece at a time, as from a File.
const PATTERN = Uint8Array.from({ length: 65536 + 251 }, (_, i) => i % 251);
const readPattern = (offset, size) =>
  Promise.resolve(PATTERN.subarray(offset % 251, offset % 251 + size));
function content(length) {
  const out = new Uint8Array(length);
  for (let at = 0; at < length; at += 65536) out.set(PATTERN.subarray(at % 251, at % 251 + Math.min(65536, length - at)), at);
  return out;
}

async function envelopes(file) {
  const keys = file.keys;
  for (const [name, key] of Object.entries(keys)) {
    await check(`envelope/key-id-${name}`, async () =>
      same('key_id', hex(await P.keyId('x25519', unhex(key.public))), key.key_id));
  }
  for (const v of file.positive) {
    const name = `envelope/${v.id}`;
    const options = {
      recipients: v.recipients.map((r) => unhex(keys[r].public)),
      kind: v.record.kind,
      filename: v.record.filename,
      mediaType: v.record.media_type,
      fileKey: unhex(v.file_key),
      payloadSalt: unhex(v.payload_salt),
      ephemeralKeys: v.ephemeral_private_keys.map(unhex),
    };
    const plan = await P.planEnvelope({ ...options, length: v.content.length });
    await check(`${name}/header`, async () => same('header', hex(plan.header), v.header_hex));
    await check(`${name}/sizes`, async () => {
      const sizes = [plan.totalLength, plan.chunkCount, plan.paddedLength, plan.header.length,
        P.envelopeLength(v.recipients.length, v.content.length, v.record.filename,
          v.record.media_type)];
      return same('sizes', sizes.join(), [v.envelope_length, v.chunks, v.padded_length,
        v.header_length, v.envelope_length].join());
    });
    await check(`${name}/envelope`, async () => {
      const out = new Uint8Array(plan.totalLength);
      out.set(plan.header);
      // Seal the chunks last first: each depends only on (key, index, last, piece).
      for (let i = plan.chunkCount - 1; i >= 0; i--) {
        out.set(await plan.sealChunk(i, readPattern), plan.chunkOffset(i));
      }
      if (v.envelope_hex !== undefined && hex(out) !== v.envelope_hex) return 'bytes differ';
      return same('sha256', await sha256(out), v.envelope_sha256);
    });
    if (v.content.length <= 1 << 20) {
      await check(`${name}/seal-bytes`, async () => {
        const data = content(v.content.length);
        if (await sha256(data) !== v.content.sha256) return 'content rule differs';
        return same('sha256', await sha256(await P.sealBytes({ ...options, content: data })),
          v.envelope_sha256);
      });
    }
  }
  // The readers' vectors need a decrypting reader, which the browser does not have.
  results.notApplicable.envelope = file.negative.vectors.length + file.tampered.vectors.length;
  await envelopeArguments(keys);
}

/** The writer refuses what section 3 forbids. */
async function envelopeArguments(keys) {
  const pk = unhex(keys.r1.public);
  const refuses = (name, options, length = 5) => check(`envelope/refuses-${name}`, async () => {
    try {
      const plan = await P.planEnvelope({ recipients: [pk], kind: 'message', length, ...options });
      await plan.sealChunk(0, async () => new Uint8Array(4));
    } catch (e) {
      return same('kind', e.kind, 'format');
    }
    return 'accepted';
  });
  await refuses('no-recipient', { recipients: [] });
  await refuses('33-recipients', { recipients: Array.from({ length: 33 }, (_, i) => new Uint8Array(32).fill(i + 9)) });
  await refuses('same-recipient-twice', { recipients: [pk, pk] });
  await refuses('low-order-recipient', { recipients: [new Uint8Array(32)] });
  await refuses('filename-on-message', { filename: 'a.txt' });
  await refuses('slash-in-filename', { kind: 'file', filename: 'a/b' });
  await refuses('lone-surrogate-filename', { kind: 'file', filename: 'a\ud800' });
  await refuses('256-byte-filename', { kind: 'file', filename: 'é'.repeat(128) });
  await refuses('non-ascii-media-type', { mediaType: 'text/é' });
  await refuses('unknown-kind', { kind: 'note' });
  await refuses('negative-length', {}, -1);
  await refuses('length-over-limit', {}, 2 ** 40 - 397);
  await refuses('short-content', {}); // the reader gives 4 bytes of 5
  await check('envelope/longest-content-length', async () =>
    same('chunks', (await P.planEnvelope({ recipients: [pk], kind: 'file', length: 2 ** 40 - 398 }))
      .chunkCount, 2 ** 24));
  await check('envelope/clean-filename', async () =>
    same('name', P.cleanFilename(' C:\\Users\\x\\re\u0301port\u0007.pdf '), 'r\u00e9port.pdf'));
}

// -- keyring v1 -------------------------------------------------------------------------------

async function keyrings(file) {
  for (const c of file.cases) {
    await check(`keyring/${c.name}`, async () => {
      let actual;
      try {
        const r = await P.verifyKeyring(utf8(c.keyring), c.pinned_root);
        // The server's install rule (section 4.2), not the page's: serials only go up.
        if (c.installed_serial !== null && r.serial <= c.installed_serial) actual = 'keyring';
        else actual = `ok ${r.serial} ${r.recipients.map((x) => x.keyId).join()}`;
      } catch (e) {
        if (!(e instanceof P.PosternError)) throw e;
        actual = e.kind;
      }
      const expected = c.expected === 'ok'
        ? `ok ${c.serial} ${c.recipient_key_ids.join()}` : c.expected;
      return same('outcome', actual, expected);
    });
  }
  const valid = file.cases.find((c) => c.name === 'valid');
  const outcome = (p) => p.then((r) => `ok ${r.serial}`, (e) => e.kind);
  await check('keyring/announced-serial-equal', async () => same('outcome',
    await outcome(P.verifyKeyring(utf8(valid.keyring), valid.pinned_root, { expectedSerial: 7 })), 'ok 7'));
  await check('keyring/announced-serial-from-meta', async () => same('outcome',
    await outcome(P.verifyKeyring(utf8(valid.keyring), valid.pinned_root, { expectedSerial: '7' })), 'ok 7'));
  for (const bad of ['7.0', '0x7', ' 7', '07', 'seven']) {
    await check(`keyring/announced-serial-malformed-${bad.trim()}`, async () => same('outcome',
      await outcome(P.verifyKeyring(utf8(valid.keyring), valid.pinned_root, { expectedSerial: bad })), 'keyring'));
  }
  await check('keyring/announced-serial-other', async () => same('outcome',
    await outcome(P.verifyKeyring(utf8(valid.keyring), valid.pinned_root, { expectedSerial: 8 })), 'keyring'));
  await check('keyring/file-as-string', async () => same('outcome',
    await outcome(P.verifyKeyring(valid.keyring, valid.pinned_root)), 'ok 7'));
  await check('keyring/invalid-utf8', async () => same('outcome',
    await outcome(P.verifyKeyring(Uint8Array.of(...utf8(valid.keyring), 0xff), valid.pinned_root)), 'format'));
  await check('keyring/recipient-keys', async () => {
    const r = await P.verifyKeyring(utf8(valid.keyring), valid.pinned_root);
    const m = JSON.parse(JSON.parse(valid.keyring).manifest);
    return same('recipients', r.recipients.map((x) => `${P.toBase64(x.publicKey)} ${x.label}`).join(),
      m.recipients.map((x) => `${x.public_key} ${x.label}`).join());
  });
}

// -- main -------------------------------------------------------------------------------------

async function main() {
  status.textContent = 'running';
  const load = async (name) => {
    const response = await fetch(`../vectors/${name}`);
    if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
    return response.json();
  };
  const [rfc, envelope, keyring] = await Promise.all(
    ['rfc9180.json', 'envelope-v1.json', 'keyring-v1.json'].map(load));
  await timed('support', async () => {
    results.support = await P.cryptoSupport();
    await check('support/all-primitives', async () => results.support.ok || JSON.stringify(results.support));
  });
  await timed('rfc9180', () => rfc9180(rfc));
  await timed('envelope', () => envelopes(envelope));
  await timed('keyring', () => keyrings(keyring));
  results.ok = results.failed.length === 0 && results.passed > 0;
}

main().then(() => {
  window.posternVectorResults = results;
  document.getElementById('result').textContent = JSON.stringify(results, null, 1);
  status.textContent = 'done';
}, (error) => {
  results.error = `${error && error.name}: ${error && error.message}`;
  window.posternVectorResults = results;
  document.getElementById('result').textContent = JSON.stringify(results, null, 1);
  status.textContent = `error: ${results.error}`;
});
