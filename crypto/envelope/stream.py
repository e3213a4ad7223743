"""The payload (section 3.4): the padded plaintext cut into chunks, each sealed on its own.

A chunk is the unit of resumption (tus uploads seal chunk by chunk) and of parallel opening.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crypto.envelope.format import CHUNK, PAYLOAD_INFO, Metadata, chunk_count, padded_size
from crypto.errors import DecryptionError, FormatError
from crypto.kdf import hkdf_sha256

BATCH = 16  # chunks per read/write in the streaming loops


def payload_key(file_key: bytes, payload_salt: bytes) -> bytes:
    return hkdf_sha256(file_key, payload_salt, PAYLOAD_INFO, 32)


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class PayloadCipher:
    """Seals and opens single chunks (section 3.4): the unit of resumption and parallelism."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal_chunk(self, index: int, last: bool, piece: bytes) -> bytes:
        if not 0 < len(piece) <= CHUNK:
            raise FormatError("a chunk holds 1 to 65536 bytes")
        return self._aead.encrypt(_nonce(index, last), piece, None)

    def seal_chunk_into(self, index: int, last: bool, piece: memoryview, out: memoryview) -> None:
        self._aead.encrypt_into(_nonce(index, last), piece, None, out)

    def open_chunk(self, index: int, last: bool, chunk: bytes | memoryview) -> bytes:
        try:
            return self._aead.decrypt(_nonce(index, last), chunk, None)
        except InvalidTag:
            raise DecryptionError() from None

    def open_chunk_into(self, index: int, last: bool, chunk: memoryview, out: memoryview) -> None:
        try:
            self._aead.decrypt_into(_nonce(index, last), chunk, None, out)
        except InvalidTag:
            raise DecryptionError() from None


class ContentReader(Protocol):
    def __call__(self, offset: int, size: int) -> bytes: ...


@dataclass(frozen=True)
class PaddedPlaintext:
    """Section 3.5 for known metadata: where content, padding and trailer fall in P."""

    metadata: Metadata
    trailer: bytes = field(init=False, repr=False)
    size: int = field(init=False)

    def __post_init__(self) -> None:
        record = self.metadata.record()
        object.__setattr__(self, "trailer", record + struct.pack(">I", len(record)))
        object.__setattr__(self, "size", padded_size(self.metadata.length, len(record)))

    @property
    def chunks(self) -> int:
        return chunk_count(self.size)

    def piece(self, index: int, read_content: ContentReader) -> bytes:
        """Plaintext of chunk index; read_content(offset, size) supplies content bytes."""
        if not 0 <= index < self.chunks:
            raise FormatError("chunk index out of range")
        start, end = index * CHUNK, min((index + 1) * CHUNK, self.size)
        length = self.metadata.length
        trailer_at = self.size - len(self.trailer)
        parts = []
        if start < length:
            want = min(end, length) - start
            data = read_content(start, want)
            if len(data) != want:
                raise FormatError("content shorter than its announced length")
            parts.append(data)
        zero_end = min(end, trailer_at)
        if zero_end > max(start, length):
            parts.append(bytes(zero_end - max(start, length)))
        if end > trailer_at:
            parts.append(self.trailer[max(start, trailer_at) - trailer_at : end - trailer_at])
        return b"".join(parts)


def seal_piece(cipher: PayloadCipher, plan: PaddedPlaintext, index: int, piece: bytes) -> bytes:
    return cipher.seal_chunk(index, index == plan.chunks - 1, piece)
