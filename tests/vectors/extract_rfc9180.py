"""Regenerate ``tests/vectors/rfc9180.json`` from the installed cryptography_vectors.

The source is the CFRG HPKE test-vector set (the one RFC 9180 Appendix A is printed
from), shipped as ``HPKE/test-vectors.json`` in the ``cryptography_vectors`` package.
Only the vectors Postern's HPKE implements are kept: mode 0 (base), KEM 0x0020
DHKEM(X25519, HKDF-SHA256), KDF 0x0001 HKDF-SHA256, AEAD 0x0001 AES-128-GCM or
0x0002 AES-256-GCM. Every encryption and export of those vectors is kept.

Usage (from the repository root)::

    .venv/bin/python tests/vectors/extract_rfc9180.py

``tests/crypto/test_hpke.py`` checks that the committed file equals :func:`render`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
from pathlib import Path
from typing import Any

PACKAGE = "cryptography_vectors"
RESOURCE = ("HPKE", "test-vectors.json")
OUTPUT = Path(__file__).with_name("rfc9180.json")

MODE_BASE = 0
KEM_X25519_HKDF_SHA256 = 0x0020
KDF_HKDF_SHA256 = 0x0001
AEAD_IDS = (0x0001, 0x0002)

# Hex-string fields copied from each vector, in output order.
HEX_FIELDS = (
    "info",
    "ikmE",
    "ikmR",
    "skEm",
    "pkEm",
    "skRm",
    "pkRm",
    "enc",
    "shared_secret",
    "key_schedule_context",
    "secret",
    "key",
    "base_nonce",
    "exporter_secret",
)
ENCRYPTION_FIELDS = ("aad", "ct", "nonce", "pt")


def _hex(value: Any) -> str:
    """Validate and normalise one hex string (lower case)."""
    if not isinstance(value, str):
        raise TypeError(f"expected a hex string, got {type(value).__name__}")
    return bytes.fromhex(value).hex()


def _load_source() -> list[dict[str, Any]]:
    resource = importlib.resources.files(PACKAGE).joinpath(*RESOURCE)
    data = json.loads(resource.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise TypeError(f"{'/'.join(RESOURCE)} is not a JSON list")
    return data


def _selected(entry: dict[str, Any]) -> bool:
    return (
        entry["mode"] == MODE_BASE
        and entry["kem_id"] == KEM_X25519_HKDF_SHA256
        and entry["kdf_id"] == KDF_HKDF_SHA256
        and entry["aead_id"] in AEAD_IDS
    )


def _convert(entry: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "mode": entry["mode"],
        "kem_id": entry["kem_id"],
        "kdf_id": entry["kdf_id"],
        "aead_id": entry["aead_id"],
    }
    for field in HEX_FIELDS:
        out[field] = _hex(entry[field])
    out["encryptions"] = [
        {field: _hex(enc[field]) for field in ENCRYPTION_FIELDS} for enc in entry["encryptions"]
    ]
    out["exports"] = [
        {
            "exporter_context": _hex(exp["exporter_context"]),
            "L": int(exp["L"]),
            "exported_value": _hex(exp["exported_value"]),
        }
        for exp in entry["exports"]
    ]
    return out


def build() -> dict[str, Any]:
    """The content of rfc9180.json as a JSON-ready dictionary."""
    version = importlib.metadata.version(PACKAGE)
    vectors = [_convert(entry) for entry in _load_source() if _selected(entry)]
    return {
        "source": (
            "RFC 9180 (HPKE) Appendix A test vectors: the CFRG HPKE test-vectors.json "
            f"as shipped in the Python package {PACKAGE} {version} "
            f"(file {'/'.join(RESOURCE)}); filtered by tests/vectors/extract_rfc9180.py"
        ),
        "cryptography_vectors_version": version,
        "filter": {
            "mode": MODE_BASE,
            "kem_id": KEM_X25519_HKDF_SHA256,
            "kdf_id": KDF_HKDF_SHA256,
            "aead_id": list(AEAD_IDS),
        },
        "encoding": "byte strings are lower-case hex; mode and ids are integers",
        "vectors": vectors,
    }


def render() -> str:
    """The exact text of rfc9180.json."""
    return json.dumps(build(), indent=2) + "\n"


def main() -> None:
    text = render()
    OUTPUT.write_text(text, encoding="utf-8")
    count = len(json.loads(text)["vectors"])
    print(f"wrote {count} vectors to {OUTPUT}")


if __name__ == "__main__":
    main()
