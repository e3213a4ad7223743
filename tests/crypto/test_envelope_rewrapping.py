"""Tests for crypto.envelope.rewrapping: an envelope moved to new recipients (docs/format.md
section 3.7), on the vectors.

Every positive vector of tests/vectors/envelope-v1.json is rewrapped: the result must open
with exactly the new recipients, give the same metadata and content, and keep the payload
bytes and payload salt; a rewrap with fixed ephemeral keys must equal the header that
section 3.1-3.3 builds from the vector's file key and salt.
"""

from __future__ import annotations

import io

import pytest

import crypto
from crypto.envelope import build_header
from crypto.errors import DecryptionError, FormatError
from tests.crypto.test_envelope_vectors import (
    DOC,
    POSITIVE,
    PRIVATE,
    PUBLIC,
    _ids,
    _open_all,
    _sealed,
)

ALL = ["r1", "r2", "r3", "outsider"]


def _new_set(old: list[str]) -> list[str]:
    """A recipient set that differs from old: the names old lacks, or just the outsider."""
    fresh = [n for n in ALL if n not in old]
    return fresh if fresh else ["outsider"]


@pytest.mark.parametrize("vector", POSITIVE, ids=_ids(POSITIVE))
def test_rewrap_moves_the_envelope_to_new_recipients(vector):
    data = _sealed(vector["id"])
    old_names = vector["recipients"]
    new_names = _new_set(old_names)
    opener = PRIVATE[vector["open_with"][0]]
    rewrapped = crypto.rewrap_bytes(data, [opener], [PUBLIC[n] for n in new_names])

    old_header, new_header = crypto.parse_header(data), crypto.parse_header(rewrapped)
    assert crypto.sealed_to(new_header, [PUBLIC[n] for n in new_names])
    assert new_header.payload_salt == old_header.payload_salt
    assert rewrapped[new_header.length :] == data[old_header.length :]
    assert len(rewrapped) - len(data) == 96 * (len(new_names) - len(old_names))
    new_header.check_total_length(len(rewrapped))

    expected = _open_all(data, [opener])
    for name in new_names:
        assert _open_all(rewrapped, [PRIVATE[name]]) == expected
    for name in [n for n in ALL if n not in new_names]:
        with pytest.raises(DecryptionError):
            _open_all(rewrapped, [PRIVATE[name]])


@pytest.mark.parametrize("vector", POSITIVE, ids=_ids(POSITIVE))
def test_rewrap_header_is_the_section_3_header_for_the_same_file_key(vector):
    data = _sealed(vector["id"])
    ephemeral = [bytes([7 + i]) * 32 for i in range(2)]
    new = [PUBLIC["r3"], PUBLIC["outsider"]]
    header = crypto.rewrap_header(
        crypto.parse_header(data), [PRIVATE[vector["open_with"][0]]], new, ephemeral
    )
    assert header == build_header(
        new,
        bytes.fromhex(vector["file_key"]),
        bytes.fromhex(vector["payload_salt"]),
        ephemeral,
    )
    assert header != data[: vector["header_length"]]


def _base() -> tuple[bytes, list[str]]:
    vector = next(v for v in POSITIVE if v["id"] == DOC["negative"]["base"])
    return _sealed(vector["id"]), vector["recipients"]


def test_a_key_that_does_not_open_it_cannot_rewrap_and_nothing_is_written():
    data, recipients = _base()
    outsider = next(n for n in ALL if n not in recipients)
    out = io.BytesIO()
    with pytest.raises(DecryptionError):
        crypto.rewrap(io.BytesIO(data), out, [PRIVATE[outsider]], [PUBLIC[outsider]])
    assert out.getvalue() == b""


@pytest.mark.parametrize("where", ["header mac", "first payload byte", "last byte"])
def test_a_damaged_envelope_is_refused_before_anything_is_written(where):
    data, recipients = _base()
    header_len = crypto.parse_header(data).length
    at = {"header mac": header_len - 1, "first payload byte": header_len, "last byte": -1}[where]
    damaged = bytearray(data)
    damaged[at] ^= 0x01
    out = io.BytesIO()
    with pytest.raises(DecryptionError):
        crypto.rewrap(io.BytesIO(bytes(damaged)), out, [PRIVATE[recipients[0]]], [PUBLIC["r3"]])
    assert out.getvalue() == b""


@pytest.mark.parametrize(
    "new",
    [[], [PUBLIC["r1"]] * 2, [bytes([i]) * 32 for i in range(1, 34)]],
    ids=["none", "twice", "33"],
)
def test_the_new_recipients_follow_the_writer_rules(new):
    data, recipients = _base()
    with pytest.raises(FormatError):
        crypto.rewrap_bytes(data, [PRIVATE[recipients[0]]], new)


def test_a_rewrapped_envelope_can_be_rewrapped_again_and_keeps_its_content():
    data, recipients = _base()
    once = crypto.rewrap_bytes(data, [PRIVATE[recipients[0]]], [PUBLIC["r3"]])
    twice = crypto.rewrap_bytes(once, [PRIVATE["r3"]], [PUBLIC["r1"], PUBLIC["outsider"]])
    assert _open_all(twice, [PRIVATE["outsider"]]) == _open_all(data, [PRIVATE[recipients[0]]])
    with pytest.raises(DecryptionError):
        _open_all(twice, [PRIVATE["r3"]])
