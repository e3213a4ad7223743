"""Sealing an envelope: in one piece, from a stream, or incrementally (section 3.6)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from crypto.envelope.format import CHUNK, CT_CHUNK, MAX_CONTENT, Kind, Metadata
from crypto.envelope.header import build_header
from crypto.envelope.stream import BATCH, PaddedPlaintext, PayloadCipher, payload_key, seal_piece
from crypto.errors import CryptoError, FormatError


class Sealer:
    """Seals one envelope incrementally, for streams whose length is known only at the end.

    ``header`` is ready at once; ``update`` returns the chunks that are complete (a chunk of
    content alone is never the last one, section 3.6); ``finish`` yields the rest.
    """

    def __init__(
        self,
        recipients: Sequence[bytes],
        kind: Kind,
        filename: str = "",
        media_type: str = "",
        *,
        max_length: int = MAX_CONTENT,
        file_key: bytes | None = None,
        payload_salt: bytes | None = None,
        ephemeral_keys: Sequence[bytes] | None = None,
    ) -> None:
        self._template = Metadata(kind, 0, filename, media_type)
        self.file_key = os.urandom(32) if file_key is None else file_key
        self.payload_salt = os.urandom(16) if payload_salt is None else payload_salt
        self.header = build_header(recipients, self.file_key, self.payload_salt, ephemeral_keys)
        self._cipher = PayloadCipher(payload_key(self.file_key, self.payload_salt))
        self._max = min(max_length, MAX_CONTENT)
        self._pending = bytearray()
        self._index = 0
        self._length = 0
        self._finished = False

    @property
    def length(self) -> int:
        """Content bytes accepted so far."""
        return self._length

    def _accept(self, size: int) -> None:
        if self._finished:
            raise CryptoError("the envelope is already finished")
        if self._length + size > self._max:
            raise FormatError("content exceeds the allowed length")
        self._length += size

    def _seal_full_into(self, data: memoryview, out: memoryview) -> int:
        """Seal the whole chunks of data into out; return how many bytes were written."""
        count = len(data) // CHUNK
        for i in range(count):
            self._cipher.seal_chunk_into(
                self._index, False, data[i * CHUNK : (i + 1) * CHUNK],
                out[i * CT_CHUNK : (i + 1) * CT_CHUNK],
            )  # fmt: skip
            self._index += 1
        return count * CT_CHUNK

    def _seal_full(self, data: memoryview) -> bytes:
        out = bytearray(len(data) // CHUNK * CT_CHUNK)
        self._seal_full_into(data, memoryview(out))
        return bytes(out)

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        self._accept(len(data))
        if not self._pending and len(data) >= CHUNK:
            view = memoryview(data)
            full = len(view) - len(view) % CHUNK
            out = self._seal_full(view[:full])
            self._pending += view[full:]
            return out
        self._pending += data
        if len(self._pending) < CHUNK:
            return b""
        full = len(self._pending) - len(self._pending) % CHUNK
        out = self._seal_full(memoryview(self._pending)[:full])
        del self._pending[:full]
        return out

    def finish(self) -> Iterator[bytes]:
        """Yield the remaining chunks: the content tail, the padding and the trailer."""
        self._accept(0)
        self._finished = True
        plan = PaddedPlaintext(self._template.with_length(self._length))
        base = self._index * CHUNK
        tail = bytes(self._pending)
        self._pending.clear()

        def read_tail(offset: int, size: int) -> bytes:
            return tail[offset - base : offset - base + size]

        for index in range(self._index, plan.chunks):
            yield seal_piece(self._cipher, plan, index, plan.piece(index, read_tail))
        self._index = plan.chunks

    def seal_stream(self, src: BinaryIO, dst: BinaryIO) -> int:
        """Write the whole envelope for everything src yields; return the content length."""
        if self._index or self._pending or self._length or self._finished:
            raise CryptoError("seal_stream needs a fresh Sealer")
        dst.write(self.header)
        buf = bytearray(BATCH * CHUNK)
        view = memoryview(buf)
        # Reused for every batch: dst.write is done with the bytes when it returns.
        sealed = memoryview(bytearray(BATCH * CT_CHUNK))
        fill = 0
        while True:
            got = src.readinto(view[fill:])  # type: ignore[attr-defined]
            if not got:
                break
            fill += got
            if fill == len(buf):
                self._accept(fill)
                dst.write(sealed[: self._seal_full_into(view, sealed)])
                fill = 0
        if fill:
            dst.write(self.update(view[:fill]))
        for chunk in self.finish():
            dst.write(chunk)
        return self._length


def seal_stream(
    src: BinaryIO,
    dst: BinaryIO,
    recipients: Sequence[bytes],
    kind: Kind,
    filename: str = "",
    media_type: str = "",
) -> int:
    """Seal everything src yields into dst; return the content length."""
    return Sealer(recipients, kind, filename, media_type).seal_stream(src, dst)


def seal_bytes(
    content: bytes,
    recipients: Sequence[bytes],
    kind: Kind,
    filename: str = "",
    media_type: str = "",
    *,
    file_key: bytes | None = None,
    payload_salt: bytes | None = None,
    ephemeral_keys: Sequence[bytes] | None = None,
) -> bytes:
    sealer = Sealer(
        recipients,
        kind,
        filename,
        media_type,
        file_key=file_key,
        payload_salt=payload_salt,
        ephemeral_keys=ephemeral_keys,
    )
    return b"".join([sealer.header, sealer.update(content), *sealer.finish()])
