"""Replay tests/vectors/envelope-v1.json against crypto.envelope (docs/format.md section 3)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import crypto
from crypto.envelope import Kind, Metadata, envelope_length, seal_bytes
from crypto.errors import DecryptionError, FormatError, UnsupportedVersion
from crypto.keys import Algorithm, key_id, x25519_public

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors"
VECTOR_FILE = VECTOR_DIR / "envelope-v1.json"
GENERATOR_FILE = VECTOR_DIR / "generate_envelope.py"


def _load_generator() -> ModuleType:
    """Import tests/vectors/generate_envelope.py (registered, as its dataclasses require)."""
    name = "postern_generate_envelope"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, GENERATOR_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


GENERATOR = _load_generator()
DOC: dict[str, Any] = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))
POSITIVE: list[dict[str, Any]] = DOC["positive"]
NEGATIVE: list[dict[str, Any]] = DOC["negative"]["vectors"]
TAMPERED: list[dict[str, Any]] = DOC["tampered"]["vectors"]
PRIVATE = {name: bytes.fromhex(entry["private"]) for name, entry in DOC["keys"].items()}
PUBLIC = {name: bytes.fromhex(entry["public"]) for name, entry in DOC["keys"].items()}


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["id"] for v in vectors]


def _content(length: int) -> bytes:
    """The content rule of the vector file, written out here on its own."""
    return bytes(i % 251 for i in range(251)) * (length // 251) + bytes(range(length % 251))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@cache
def _sealed(vector_id: str) -> bytes:
    """Seal a positive vector from the inputs written in the JSON (not the generator's)."""
    vector = next(v for v in POSITIVE if v["id"] == vector_id)
    record = vector["record"]
    return seal_bytes(
        _content(vector["content"]["length"]),
        [PUBLIC[name] for name in vector["recipients"]],
        Kind(record["kind_value"]),
        record["filename"],
        record["media_type"],
        file_key=bytes.fromhex(vector["file_key"]),
        payload_salt=bytes.fromhex(vector["payload_salt"]),
        ephemeral_keys=[bytes.fromhex(e) for e in vector["ephemeral_private_keys"]],
    )


def _open_all(data: bytes, keys: list[bytes]) -> tuple[Metadata, bytes]:
    opened = crypto.open_envelope(io.BytesIO(data), keys)
    return opened.metadata, opened.read_all()


def _check_without_key(data: bytes) -> None:
    crypto.parse_header(data).check_total_length(len(data))


def _assert_class(expected: str | None, action: Callable[[], object]) -> None:
    """Run action and check it fails with exactly the documented error class."""
    if expected is None:
        action()
    elif expected == "format":
        with pytest.raises(FormatError) as info:
            action()
        assert not isinstance(info.value, UnsupportedVersion)
    elif expected == "unsupported_version":
        with pytest.raises(UnsupportedVersion):
            action()
    elif expected == "decryption":
        with pytest.raises(DecryptionError):
            action()
    else:
        pytest.fail(f"unknown error class {expected!r}")


# -- the file itself ---------------------------------------------------------------------------


def test_vector_file_matches_generator():
    assert VECTOR_FILE.read_text(encoding="utf-8") == GENERATOR.render(), (
        "tests/vectors/envelope-v1.json is stale: run tests/vectors/generate_envelope.py"
    )


def test_vector_counts_and_coverage():
    assert {v["content"]["length"] for v in POSITIVE} >= {0, 1, 65535, 65536, 65537, 10485760}
    assert {v["record"]["kind"] for v in POSITIVE} == {"message", "file", "reply"}
    assert any(not v["record"]["filename"].isascii() for v in POSITIVE)
    assert any(len(v["recipients"]) == 3 for v in POSITIVE)
    assert len(NEGATIVE) >= 100
    assert len(TAMPERED) >= 30
    classes = {v["error"] for v in NEGATIVE}
    assert classes == {"format", "unsupported_version", "decryption"}
    assert len(set(_ids(POSITIVE) + _ids(NEGATIVE) + _ids(TAMPERED))) == (
        len(POSITIVE) + len(NEGATIVE) + len(TAMPERED)
    )


def test_content_rule():
    assert _content(600) == bytes(i % 251 for i in range(600))
    assert _content(600) == GENERATOR.content(600)


def test_keys():
    for name, entry in DOC["keys"].items():
        public = x25519_public(PRIVATE[name])
        assert public == PUBLIC[name]
        assert key_id(Algorithm.X25519, public).hex() == entry["key_id"]


# -- positive vectors --------------------------------------------------------------------------


@pytest.mark.parametrize("vector", POSITIVE, ids=_ids(POSITIVE))
def test_positive_reproduces(vector):
    data = _sealed(vector["id"])
    assert len(data) == vector["envelope_length"]
    assert _sha256(data) == vector["envelope_sha256"]
    if "envelope_hex" in vector:
        assert data.hex() == vector["envelope_hex"]
    else:
        assert len(data) > 70_000
    assert data[: vector["header_length"]].hex() == vector["header_hex"]
    record = vector["record"]
    metadata = Metadata(
        Kind(record["kind_value"]), record["length"], record["filename"], record["media_type"]
    )
    assert metadata.record().hex() == record["hex"]
    assert bytes.fromhex(record["filename_hex"]).decode("utf-8") == record["filename"]
    assert envelope_length(len(vector["recipients"]), metadata) == len(data)


@pytest.mark.parametrize("vector", POSITIVE, ids=_ids(POSITIVE))
def test_positive_opens(vector):
    data = _sealed(vector["id"])
    record = vector["record"]
    expected = Metadata(
        Kind(record["kind_value"]), record["length"], record["filename"], record["media_type"]
    )
    assert Kind(record["kind_value"]).name.lower() == record["kind"]
    header = crypto.parse_header(data)
    assert header.key_ids == {bytes.fromhex(DOC["keys"][n]["key_id"]) for n in vector["recipients"]}
    assert crypto.sealed_to(header, [PUBLIC[n] for n in vector["recipients"]])
    header.check_total_length(len(data))
    for name in vector["open_with"]:
        metadata, body = _open_all(data, [PRIVATE[name]])
        assert metadata == expected
        assert len(body) == vector["content"]["length"]
        assert _sha256(body) == vector["content"]["sha256"]
    assert vector["fail_with"]
    for name in vector["fail_with"]:
        with pytest.raises(DecryptionError):
            _open_all(data, [PRIVATE[name]])
    with pytest.raises(DecryptionError):
        _open_all(data, [PRIVATE[n] for n in vector["fail_with"]])


# -- negative vectors --------------------------------------------------------------------------


def _base() -> bytes:
    base = _sealed(DOC["negative"]["base"])
    assert len(base) == DOC["negative"]["base_length"]
    assert _sha256(base) == DOC["negative"]["base_sha256"]
    return base


@pytest.mark.parametrize("vector", NEGATIVE, ids=_ids(NEGATIVE))
def test_negative(vector):
    data = GENERATOR.apply_mutations(_base(), vector["mutations"], DOC["negative"]["header_length"])
    assert len(data) == vector["length"]
    assert _sha256(data) == vector["sha256"]
    assert vector["key_sets"]
    for names in vector["key_sets"]:
        keys = [PRIVATE[n] for n in names]
        _assert_class(vector["error"], partial(_open_all, data, keys))
    _assert_class(vector["error_without_key"], lambda: _check_without_key(data))


@pytest.mark.parametrize("vector", TAMPERED, ids=_ids(TAMPERED))
def test_tampered(vector):
    data = GENERATOR.seal_tampered(vector)
    assert len(data) == vector["envelope_length"]
    assert _sha256(data) == vector["envelope_sha256"]
    if "envelope_hex" in vector:
        assert data.hex() == vector["envelope_hex"]
    header = crypto.parse_header(data)
    assert header.raw.hex() == DOC["tampered"]["header_hex"]
    assert vector["error"] == "decryption"
    for names in vector["key_sets"]:
        keys = [PRIVATE[n] for n in names]
        _assert_class(vector["error"], partial(_open_all, data, keys))
    _assert_class(vector["error_without_key"], lambda: _check_without_key(data))


def test_tampered_header_is_the_base_header():
    base = _base()
    assert base[: DOC["negative"]["header_length"]].hex() == DOC["tampered"]["header_hex"]
    assert DOC["tampered"]["file_key"] == next(
        v["file_key"] for v in POSITIVE if v["id"] == DOC["negative"]["base"]
    )


def test_unmutated_base_opens():
    metadata, body = _open_all(_base(), [PRIVATE["r1"]])
    assert metadata.filename == "leak.tar"
    assert body == _content(metadata.length)
