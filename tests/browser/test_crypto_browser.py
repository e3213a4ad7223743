"""dropbox/static/js/postern-crypto.js in real browsers: Chromium and Firefox ESR.

* Every applicable vector of tests/vectors (RFC 9180, envelope v1, keyring v1) is replayed by
  pages/crypto-vectors.js in Chromium and in Firefox at Tor Browser's "standard" and "safer"
  levels; at "safest" (no JavaScript) the page shows its noscript text and runs nothing.
* Envelopes sealed in the browser open with the Python reference implementation.
* ``cryptoSupport()`` finds X25519, Ed25519, HKDF and AES-GCM working.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

import crypto
from crypto.envelope import Kind, Metadata, envelope_length
from tests.browser.browsers import BrowserPage, ChromiumPage, StaticServer, wait_for_text
from tests.browser.conftest import FirefoxFactory

VECTORS = Path(__file__).resolve().parents[1] / "vectors"

pytestmark = pytest.mark.timeout(150)


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def _diagnostics(page: BrowserPage) -> str:
    if isinstance(page, ChromiumPage):
        return "console:\n" + "\n".join(page.console[-20:])
    return ""


def _open_api(page: BrowserPage, server: StaticServer) -> None:
    page.goto(server.url("/pages/crypto-api.html"))
    status = wait_for_text(page, "status", lambda text: text == "ready", timeout=30)
    assert status == "ready", f"{page.name}: the API page did not load. {_diagnostics(page)}"


# -- vectors ----------------------------------------------------------------------------------


def test_vectors(browser_page: BrowserPage, static_server: StaticServer) -> None:
    browser_page.goto(static_server.url("/pages/crypto-vectors.html"))
    status = wait_for_text(
        browser_page,
        "status",
        lambda text: text == "done" or (text or "").startswith("error"),
        timeout=120,
    )
    text = browser_page.text("result") or ""
    assert status == "done", f"{browser_page.name}: {status!r} {text} {_diagnostics(browser_page)}"
    results = json.loads(text)
    failures = [f"{f['name']}: {f['error']}" for f in results["failed"]]
    assert not failures, f"{browser_page.name}: {len(failures)} failed:\n" + "\n".join(failures)
    assert results["ok"]

    # Everything applicable was checked (so a vector file that grew is replayed in full).
    rfc = [v for v in _load("rfc9180.json")["vectors"] if v["mode"] == 0 and v["kem_id"] == 32]
    envelope = _load("envelope-v1.json")
    keyring = _load("keyring-v1.json")
    checked = results["checked"]
    assert checked["rfc9180"] >= sum(len(v["encryptions"]) + len(v["exports"]) for v in rfc)
    assert checked["envelope"] >= 3 * len(envelope["positive"])
    assert checked["keyring"] >= len(keyring["cases"])
    assert results["support"]["ok"], results["support"]


def test_firefox_levels_take_effect(firefox: FirefoxFactory, static_server: StaticServer) -> None:
    """The harness really runs the levels: "safer" has no WebAssembly, "standard" has it."""
    seen = {}
    for level in ("standard", "safer"):
        page = firefox(level)
        _open_api(page, static_server)
        seen[level] = page.evaluate("() => typeof WebAssembly")
    assert seen == {"standard": "object", "safer": "undefined"}


def test_safest_level_runs_no_script(firefox: FirefoxFactory, static_server: StaticServer) -> None:
    page = firefox("safest")
    before = len(static_server.requests)
    page.goto(static_server.url("/pages/crypto-vectors.html"))
    time.sleep(1)  # time for a script to start, were one allowed to
    assert page.displayed("noscript")
    assert page.text("status") == "not started"
    assert page.text("result") == ""
    assert not [p for p in static_server.requests[before:] if p.startswith("/vectors/")]


# -- interoperability with the Python implementation ------------------------------------------

SEAL_IN_BROWSER = """async ({ keys, cases }) => {
  const P = window.postern;
  const recipients = keys.map((k) => Uint8Array.from(atob(k), (c) => c.charCodeAt(0)));
  const out = [];
  for (const c of cases) {
    const content = new Uint8Array(c.size);
    for (let at = 0; at < c.size; at += 65536) {
      crypto.getRandomValues(content.subarray(at, at + 65536));
    }
    const options = { recipients, kind: c.kind, filename: c.filename, mediaType: c.mediaType };
    let envelope;
    if (c.blob) {
      // As the page does with a File: read lazily, seal the chunks concurrently.
      const blob = new Blob([content]);
      const plan = await P.planEnvelope({ ...options, length: blob.size });
      const read = (at, size) => blob.slice(at, at + size).arrayBuffer();
      const chunks = await Promise.all(
        Array.from({ length: plan.chunkCount }, (_, i) => plan.sealChunk(i, read)));
      envelope = new Uint8Array(plan.totalLength);
      envelope.set(plan.header);
      chunks.forEach((chunk, i) => envelope.set(chunk, plan.chunkOffset(i)));
    } else {
      envelope = await P.sealBytes({ ...options, content });
    }
    out.push({ content: P.toBase64(content), envelope: P.toBase64(envelope) });
  }
  return out;
}"""

CASES = [
    {"size": 0, "kind": "message", "filename": "", "mediaType": ""},
    {"size": 1, "kind": "reply", "filename": "", "mediaType": ""},
    {
        "size": 65536,
        "kind": "file",
        "filename": "Pr\u00fcfbericht \u2013 \u5be9\u8a08 \U0001f4c4.pdf",
        "mediaType": "application/pdf",
    },
    {"size": 200000, "kind": "file", "filename": "clip.mp4", "mediaType": "video/mp4", "blob": 1},
]


def test_browser_envelopes_open_in_python(
    browser_page: BrowserPage, static_server: StaticServer
) -> None:
    private = [X25519PrivateKey.generate() for _ in range(2)]
    secrets = [k.private_bytes_raw() for k in private]
    publics = [k.public_key().public_bytes_raw() for k in private]
    outsider = X25519PrivateKey.generate().private_bytes_raw()
    _open_api(browser_page, static_server)
    sealed = browser_page.evaluate(
        SEAL_IN_BROWSER,
        {"keys": [base64.b64encode(k).decode() for k in publics], "cases": CASES},
        timeout=60,
    )
    assert len(sealed) == len(CASES)
    fresh: set[bytes] = set()
    for case, result in zip(CASES, sealed, strict=True):
        content = base64.b64decode(result["content"])
        envelope = base64.b64decode(result["envelope"])
        expected = Metadata(
            Kind[str(case["kind"]).upper()],
            len(content),
            str(case["filename"]),
            str(case["mediaType"]),
        )
        assert len(content) == case["size"]
        assert len(envelope) == envelope_length(2, expected)
        header = crypto.parse_header(envelope)
        assert crypto.sealed_to(header, publics)
        fresh.add(header.payload_salt)
        fresh.update(stanza.enc for stanza in header.stanzas)
        for secret in secrets:
            metadata, opened = crypto.open_bytes(envelope, [secret])
            assert metadata == expected, case
            assert opened == content, case
        with pytest.raises(crypto.DecryptionError):
            crypto.open_bytes(envelope, [outsider])
    # Fresh salts and ephemeral keys for every envelope and stanza (section 3.6).
    assert len(fresh) == 3 * len(CASES)


def test_crypto_support(browser_page: BrowserPage, static_server: StaticServer) -> None:
    _open_api(browser_page, static_server)
    support = browser_page.evaluate("() => window.postern.cryptoSupport()")
    assert support == {
        "ok": True,
        "x25519": True,
        "ed25519": True,
        "hkdf": True,
        "aesGcm": True,
        "errors": {},
    }


SEAL_THROUGHPUT = """async (mib) => {
  const P = window.postern;
  const pair = await crypto.subtle.generateKey('X25519', true, ['deriveBits']);
  const pk = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
  const piece = crypto.getRandomValues(new Uint8Array(65536));
  const length = mib * 1048576;
  const plan = await P.planEnvelope({ recipients: [pk], kind: 'file', length });
  const read = (at, size) => piece.subarray(0, size);
  const start = performance.now();
  for (let i = 0; i < plan.chunkCount; i++) await plan.sealChunk(i, read);
  const ms = performance.now() - start;
  return { ms, mbPerSecond: length / 1e6 / (ms / 1000) };
}"""


def test_sealing_throughput(
    browser_page: BrowserPage, static_server: StaticServer, record_property: Any
) -> None:
    """Seal 128 MiB one chunk after another; report MB/s (a floor only catches a broken path)."""
    _open_api(browser_page, static_server)
    result = browser_page.evaluate(SEAL_THROUGHPUT, 128, timeout=90)
    record_property(f"{browser_page.name}-seal-mb-per-second", round(result["mbPerSecond"]))
    print(f"{browser_page.name}: sealed 128 MiB at {result['mbPerSecond']:.0f} MB/s")
    assert result["mbPerSecond"] > 5


def test_pages_run_under_the_strict_csp(
    browser_page: BrowserPage, static_server: StaticServer
) -> None:
    """The harness's CSP is enforced: what passes here passes without inline script or eval."""
    browser_page.goto(static_server.url("/pages/csp-probe.html"))
    external = wait_for_text(
        browser_page, "external", lambda text: text == "external script ran", timeout=30
    )
    assert external == "external script ran"
    assert browser_page.text("inline") == "inline script did not run"
    assert (browser_page.text("eval") or "").startswith("eval blocked")
