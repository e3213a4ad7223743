"""Rewrapping (section 3.7): the same payload under a new header for other recipients."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import BinaryIO

from crypto.envelope.format import CT_CHUNK
from crypto.envelope.header import Header, build_header, parse_header, unwrap_file_key
from crypto.envelope.opening import open_envelope
from crypto.envelope.stream import BATCH


def rewrap_header(
    header: Header,
    private_keys: Iterable[bytes],
    recipients: Sequence[bytes],
    ephemeral_keys: Sequence[bytes] | None = None,
) -> bytes:
    """A new header for the same file key and payload salt, sealed to recipients (section 3.7).

    The file key is recovered with private_keys and the old header MAC verified first
    (``DecryptionError`` otherwise). The payload that followed the old header follows the new
    one unchanged. This checks the header only: see :func:`rewrap` for a whole envelope.
    ephemeral_keys only for test vectors.
    """
    file_key = unwrap_file_key(header, private_keys)
    return build_header(recipients, file_key, header.payload_salt, ephemeral_keys)


def rewrap(
    src: BinaryIO, dst: BinaryIO, private_keys: Iterable[bytes], recipients: Sequence[bytes]
) -> Header:
    """Copy the envelope in src to dst with a new header for recipients (section 3.7).

    The whole envelope in src (seekable) is opened and verified with private_keys before
    anything is written to dst (``DecryptionError``/``FormatError`` otherwise); then the new
    header and the unchanged payload bytes are written. Returns the new header.
    """
    keys = list(private_keys)
    opened = open_envelope(src, keys)
    for _ in opened.iter_content():
        pass
    new = rewrap_header(opened.header, keys, recipients)
    dst.write(new)
    src.seek(opened.header.length)
    while True:
        block = src.read(BATCH * CT_CHUNK)
        if not block:
            break
        dst.write(block)
    return parse_header(new)


def rewrap_bytes(data: bytes, private_keys: Iterable[bytes], recipients: Sequence[bytes]) -> bytes:
    """:func:`rewrap` for an envelope held in memory."""
    out = io.BytesIO()
    rewrap(io.BytesIO(data), out, private_keys, recipients)
    return out.getvalue()
