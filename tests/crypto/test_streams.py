"""Tests for crypto._streams: exact reads from streams that return fewer bytes than asked."""

from __future__ import annotations

import io
from typing import BinaryIO, cast

import pytest

from crypto import FormatError, Kind, read_header, seal_bytes
from crypto._streams import read_exact, read_up_to
from crypto.keys import x25519_public

SECRET = bytes(range(32))


class Trickle(io.RawIOBase):
    """A raw stream that returns at most one byte per read, like a slow pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._data.read(min(1, len(buffer)))
        buffer[: len(data)] = data
        return len(data)


def trickle(data: bytes) -> BinaryIO:
    return cast(BinaryIO, Trickle(data))


def test_read_up_to_reads_again_after_a_short_read() -> None:
    assert read_up_to(trickle(b"abcdef"), 4) == b"abcd"


def test_read_up_to_stops_at_the_end() -> None:
    assert read_up_to(io.BytesIO(b"ab"), 4) == b"ab"
    assert read_up_to(io.BytesIO(b""), 4) == b""


def test_read_exact_reads_the_count() -> None:
    src = trickle(b"abcdef")
    assert read_exact(src, 5, "thing") == b"abcde"
    assert read_exact(src, 0, "thing") == b""


def test_read_exact_calls_a_short_stream_truncated() -> None:
    with pytest.raises(FormatError, match=r"\Atruncated thing: inside\Z"):
        read_exact(io.BytesIO(b"abc"), 4, "thing: inside")


def test_an_envelope_header_is_read_from_a_trickling_stream() -> None:
    envelope = seal_bytes(b"hello", [x25519_public(SECRET)], Kind.MESSAGE)
    header = read_header(trickle(envelope))
    assert header.raw == envelope[: header.length]
