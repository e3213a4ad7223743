"""Reading byte counts from binary streams, for the readers of the envelope and bundle formats.

A read may return fewer bytes than asked (a pipe, an unbuffered file) without the stream
having ended: these helpers read again until they have the count or the stream ends.
"""

from __future__ import annotations

from typing import BinaryIO

from crypto.errors import FormatError


def read_up_to(src: BinaryIO, size: int) -> bytes:
    """Read ``size`` bytes, or fewer only if the stream ends first."""
    parts: list[bytes] = []
    remaining = size
    while remaining:
        data = src.read(remaining)
        if not data:  # the end of the stream (None: a non-blocking stream has nothing yet)
            break
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)


def read_exact(src: BinaryIO, size: int, what: str) -> bytes:
    """Read exactly ``size`` bytes; a stream that ends first is FormatError("truncated WHAT")."""
    data = read_up_to(src, size)
    if len(data) != size:
        raise FormatError(f"truncated {what}")
    return data
