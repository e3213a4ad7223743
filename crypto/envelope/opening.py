"""Opening an envelope: verify key, header MAC, length and trailer, then decrypt as read."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from crypto._streams import read_up_to
from crypto.envelope.format import (
    CHUNK,
    CT_CHUNK,
    TAG,
    Kind,
    Metadata,
    parse_trailer,
    split_payload_length,
)
from crypto.envelope.header import Header, RecipientKeys, read_header, unwrap_file_key
from crypto.envelope.stream import BATCH, PayloadCipher, payload_key
from crypto.errors import DecryptionError

_ZEROS = bytes(CHUNK)


class OpenedEnvelope:
    """An envelope whose key, header MAC, length and trailer have been verified.

    The content is decrypted only as it is read; a failure on the way raises DecryptionError,
    after which everything already produced must be discarded (section 3.4, rule 3).
    """

    def __init__(
        self,
        src: BinaryIO,
        header: Header,
        key: bytes,
        chunks: int,
        padded: int,
        metadata: Metadata,
        trailer_len: int,
    ) -> None:
        self._src = src
        self.header = header
        self._key = key
        self._cipher = PayloadCipher(key)
        self.chunks = chunks
        self.padded = padded
        self.metadata = metadata
        self._pad_end = padded - trailer_len

    def _batches(self, first: int, stop: int) -> Iterator[memoryview]:
        """Yield the verified content of chunks first..stop-1, in reused buffers."""
        src = self._src
        src.seek(self.header.length + first * CT_CHUNK)
        batch = max(1, min(BATCH, stop - first))  # a short envelope gets short buffers
        inbuf = bytearray(batch * CT_CHUNK)
        outbuf = bytearray(batch * CHUNK)
        inview, outview = memoryview(inbuf), memoryview(outbuf)
        index = first
        while index < stop:
            count = min(batch, stop - index)
            want = count * CT_CHUNK
            if index + count == self.chunks:
                want = (self.padded + TAG * self.chunks) - index * CT_CHUNK
            got = src.readinto(inview[:want])  # type: ignore[attr-defined]
            if got != want:
                raise DecryptionError()
            produced = 0
            for j in range(count):
                i = index + j
                chunk = inview[j * CT_CHUNK : min((j + 1) * CT_CHUNK, want)]
                size = len(chunk) - TAG
                self._cipher.open_chunk_into(
                    i, i == self.chunks - 1, chunk, outview[produced : produced + size]
                )
                produced += size
            start = index * CHUNK
            if start + produced <= self.metadata.length:
                yield outview[:produced]
            else:
                yield self._check_padding_span(index, outview[:produced])
            index += count

    def _check_padding_span(self, first: int, data: memoryview) -> memoryview:
        start = first * CHUNK
        length = self.metadata.length
        content_end = max(0, min(len(data), length - start))
        zero_end = max(content_end, min(len(data), self._pad_end - start))
        span = data[content_end:zero_end]
        for at in range(0, len(span), CHUNK):
            # bytes.startswith compares any buffer with memcmp: no copy, no per-item compare.
            if not _ZEROS.startswith(span[at : at + CHUNK]):
                raise DecryptionError()
        return data[:content_end]

    def write_to(self, dst: BinaryIO) -> int:
        """Decrypt all content into dst; return its length."""
        written = 0
        for part in self._batches(0, self.chunks):
            if part:
                dst.write(part)
                written += len(part)
        return written

    def iter_content(self) -> Iterator[bytes]:
        for part in self._batches(0, self.chunks):
            if part:
                yield bytes(part)

    def read_all(self) -> bytes:
        return b"".join(self.iter_content())


def open_envelope(src: BinaryIO, private_keys: Iterable[bytes] | RecipientKeys) -> OpenedEnvelope:
    """Verify an envelope in a seekable binary file and return it ready to read."""
    src.seek(0)
    header = read_header(src)
    total = src.seek(0, os.SEEK_END)
    file_key = unwrap_file_key(header, private_keys)
    split = split_payload_length(total - header.length)
    if split is None:
        raise DecryptionError()
    chunks, padded = split
    key = payload_key(file_key, header.payload_salt)
    tail = _read_tail(src, header.length, PayloadCipher(key), chunks, padded)
    metadata, trailer_len = parse_trailer(tail, padded)
    return OpenedEnvelope(src, header, key, chunks, padded, metadata, trailer_len)


def _read_tail(
    src: BinaryIO, header_len: int, cipher: PayloadCipher, chunks: int, padded: int
) -> bytes:
    """Decrypt the last chunk, which always holds the whole trailer (section 3.4).

    For n >= 2 the padded size exceeds 65536, so it is a multiple of 2048 and the last
    piece holds at least 2048 bytes, more than the longest trailer (398 bytes).
    """
    last = chunks - 1
    src.seek(header_len + last * CT_CHUNK)
    # A short read (the file shrank since its length was taken) fails the tag check.
    chunk = read_up_to(src, padded + TAG * chunks - last * CT_CHUNK)
    return cipher.open_chunk(last, True, chunk)


def open_bytes(
    data: bytes, private_keys: Iterable[bytes] | RecipientKeys
) -> tuple[Metadata, bytes]:
    opened = open_envelope(io.BytesIO(data), private_keys)
    return opened.metadata, opened.read_all()


def _open_range(
    src_path: str, dst_path: str, header_len: int, key: bytes, shape: tuple[int, int, int, int],
    first: int, stop: int,
) -> None:  # fmt: skip
    """Worker of open_file_parallel: decrypt chunks first..stop-1 into dst at their offsets."""
    chunks, padded, length, trailer_len = shape
    metadata = Metadata(Kind.FILE, length)
    with open(src_path, "rb") as src, open(dst_path, "r+b") as dst:
        opened = OpenedEnvelope(
            src,
            Header((), b"", b"", bytes(header_len)),
            key,
            chunks,
            padded,
            metadata,
            trailer_len,
        )
        offset = first * CHUNK
        for part in opened._batches(first, stop):
            if part:
                os.pwrite(dst.fileno(), part, offset)
            offset += CHUNK * BATCH


def open_file_parallel(
    src_path: str, dst_path: str, private_keys: Iterable[bytes] | RecipientKeys, workers: int = 2
) -> Metadata:
    """Decrypt an envelope file into dst_path using several processes.

    dst_path is created (it must not exist) and removed again if anything fails.
    """
    import multiprocessing

    with open(src_path, "rb") as src:
        opened = open_envelope(src, private_keys)
    fd = os.open(dst_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, opened.metadata.length)
    finally:
        os.close(fd)
    # Key material goes to the workers over a pipe of this machine's own processes.
    key = opened._key
    shape = (opened.chunks, opened.padded, opened.metadata.length, opened.padded - opened._pad_end)
    per = -(-opened.chunks // max(1, workers))
    per = -(-per // BATCH) * BATCH
    ranges = [(a, min(a + per, opened.chunks)) for a in range(0, opened.chunks, per)]
    context = multiprocessing.get_context("fork")
    try:
        with context.Pool(len(ranges)) as pool:
            results = [
                pool.apply_async(
                    _open_range,
                    (src_path, dst_path, opened.header.length, key, shape, a, b),
                )
                for a, b in ranges
            ]
            for result in results:
                result.get()
    except BaseException:
        os.unlink(dst_path)
        raise
    return opened.metadata
