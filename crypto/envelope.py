"""Envelope v1: HPKE-wrapped file key, header MAC, seekable STREAM payload.

docs/format.md section 3 is the contract; the section numbers below refer to it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crypto import _hpke
from crypto.errors import CryptoError, DecryptionError, FormatError, UnsupportedVersion
from crypto.kdf import hkdf_sha256
from crypto.keys import Algorithm, key_id

MAGIC = b"PSTRNENV"
VERSION = 1
CHUNK = 65536
TAG = 16
CT_CHUNK = CHUNK + TAG
STANZA_LEN = 96
MAX_RECIPIENTS = 32
PREFIX_LEN = 10  # magic, version, N
MIN_PADDED = 1024
MAX_PADDED = 1 << 40
MIN_RECORD = 12
MAX_RECORD = 394
MAX_CONTENT = MAX_PADDED - MAX_RECORD - 4
MAX_FILENAME = 255
MAX_MEDIA_TYPE = 127

STANZA_INFO = b"postern/v1 envelope stanza\x00"
HEADER_INFO = b"postern/v1 envelope header"
PAYLOAD_INFO = b"postern/v1 envelope payload"

_BATCH = 16  # chunks per read/write in the streaming loops
_ZEROS = bytes(CHUNK)


class Kind(IntEnum):
    MESSAGE = 1
    FILE = 2
    REPLY = 3


def _is_forbidden_filename_char(char: str) -> bool:
    code = ord(char)
    # Lone surrogates (os.fsdecode makes them from undecodable bytes) have no UTF-8 form.
    return code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF or char in "/\\"


@dataclass(frozen=True)
class Metadata:
    """The encrypted record of section 3.5: what the content is and how long it is."""

    kind: Kind
    length: int
    filename: str = ""
    media_type: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.kind, Kind):
            try:
                object.__setattr__(self, "kind", Kind(self.kind))
            except ValueError:
                raise FormatError(f"unknown envelope kind {self.kind!r}") from None
        if not 0 <= self.length <= MAX_CONTENT:
            raise FormatError("content length out of range")
        if self.kind is not Kind.FILE and self.filename:
            raise FormatError("only files carry a filename")
        forbidden = any(map(_is_forbidden_filename_char, self.filename))
        if forbidden or len(self.filename.encode("utf-8")) > MAX_FILENAME:
            raise FormatError("filename too long or contains a forbidden character")
        if len(self.media_type) > MAX_MEDIA_TYPE or not all(
            0x20 <= ord(c) <= 0x7E for c in self.media_type
        ):
            raise FormatError("media type too long or not printable ASCII")

    def record(self) -> bytes:
        name = self.filename.encode("utf-8")
        media = self.media_type.encode("ascii")
        return (
            struct.pack(">BBQB", 1, int(self.kind), self.length, len(name))
            + name
            + bytes([len(media)])
            + media
        )

    def with_length(self, length: int) -> Metadata:
        return Metadata(self.kind, length, self.filename, self.media_type)


def clean_filename(name: str) -> str:
    """Turn any name a browser sent into a valid record filename (never raises)."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(c for c in name if not _is_forbidden_filename_char(c)).strip()
    encoded = name.encode("utf-8")[:MAX_FILENAME]
    return encoded.decode("utf-8", "ignore")


def _parse_record(record: bytes) -> Metadata:
    """Parse a decrypted record; any problem is the opaque DecryptionError."""
    try:
        version, kind, length, name_len = struct.unpack_from(">BBQB", record, 0)
        if version != 1 or kind not in (1, 2, 3):
            raise DecryptionError()
        name_end = 11 + name_len
        media_len = record[name_end]
        if name_end + 1 + media_len != len(record):
            raise DecryptionError()
        filename = record[11:name_end].decode("utf-8")
        media_type = record[name_end + 1 :].decode("ascii")
        return Metadata(Kind(kind), length, filename, media_type)
    except (struct.error, IndexError, UnicodeDecodeError, FormatError):
        raise DecryptionError() from None


# -- sizes -----------------------------------------------------------------------------------


def padme(x: int) -> int:
    """Padmé (section 3.5): round up so that only O(log log x) bits of x show."""
    if x < 2:
        return x
    exponent = x.bit_length() - 1
    z = exponent - exponent.bit_length()
    mask = (1 << z) - 1
    return (x + mask) & ~mask


def padded_size(content_length: int, record_length: int) -> int:
    return padme(max(content_length + record_length + 4, MIN_PADDED))


def chunk_count(padded: int) -> int:
    return max(1, -(-padded // CHUNK))


def payload_length(padded: int) -> int:
    return padded + TAG * chunk_count(padded)


def header_length(recipients: int) -> int:
    return PREFIX_LEN + STANZA_LEN * recipients + 16 + 32


def envelope_length(recipients: int, metadata: Metadata) -> int:
    """Total envelope size for content described by metadata (what a tus upload announces)."""
    return header_length(recipients) + payload_length(
        padded_size(metadata.length, len(metadata.record()))
    )


def split_payload_length(total: int) -> tuple[int, int] | None:
    """Return (n, S) for a valid payload length T, or None (section 3.4)."""
    if total <= TAG:
        return None
    n = -(-total // CT_CHUNK)
    padded = total - TAG * n
    if padded <= CHUNK * (n - 1) or padded < MIN_PADDED or padded > MAX_PADDED:
        return None
    if padme(padded) != padded:
        return None
    return n, padded


# -- header ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stanza:
    key_id: bytes
    enc: bytes
    wrapped_file_key: bytes


@dataclass(frozen=True)
class Header:
    """A parsed header (section 3.1): structure checked, nothing verified under a key."""

    stanzas: tuple[Stanza, ...]
    payload_salt: bytes
    mac: bytes
    raw: bytes = field(repr=False)

    @property
    def length(self) -> int:
        return len(self.raw)

    @property
    def key_ids(self) -> frozenset[bytes]:
        return frozenset(s.key_id for s in self.stanzas)

    def check_total_length(self, total: int) -> None:
        """Rule 6 of section 3.1, for readers that know the whole envelope's length."""
        if split_payload_length(total - self.length) is None:
            raise FormatError("envelope length is not a valid v1 envelope length")


def _parse_prefix(prefix: bytes) -> int:
    if len(prefix) < PREFIX_LEN or prefix[:8] != MAGIC:
        raise FormatError("not a Postern envelope (bad magic)")
    if prefix[8] != VERSION:
        raise UnsupportedVersion(f"unsupported envelope version {prefix[8]}")
    count = prefix[9]
    if not 1 <= count <= MAX_RECIPIENTS:
        raise FormatError(f"stanza count {count} outside 1..{MAX_RECIPIENTS}")
    return header_length(count)


def parse_header(data: bytes) -> Header:
    """Parse the header at the start of data (which may continue with the payload)."""
    length = _parse_prefix(bytes(data[:PREFIX_LEN]))
    if len(data) < length:
        raise FormatError("truncated envelope header")
    raw = bytes(data[:length])
    stanzas = []
    for i in range(raw[9]):
        at = PREFIX_LEN + STANZA_LEN * i
        stanzas.append(Stanza(raw[at : at + 16], raw[at + 16 : at + 48], raw[at + 48 : at + 96]))
    if len({s.key_id for s in stanzas}) != len(stanzas):
        raise FormatError("duplicate recipient key id in envelope header")
    return Header(tuple(stanzas), raw[length - 48 : length - 32], raw[length - 32 :], raw)


def _read_exact(src: BinaryIO, size: int) -> bytes:
    data = src.read(size)
    return data if data is not None else b""


def read_header(src: BinaryIO) -> Header:
    prefix = _read_exact(src, PREFIX_LEN)
    length = _parse_prefix(prefix)
    return parse_header(prefix + _read_exact(src, length - PREFIX_LEN))


def _mac(file_key: bytes, covered: bytes) -> bytes:
    mac_key = hkdf_sha256(file_key, b"", HEADER_INFO, 32)
    return hmac.new(mac_key, covered, hashlib.sha256).digest()


def payload_key(file_key: bytes, payload_salt: bytes) -> bytes:
    return hkdf_sha256(file_key, payload_salt, PAYLOAD_INFO, 32)


def build_header(
    recipients: Sequence[bytes],
    file_key: bytes,
    payload_salt: bytes,
    ephemeral_keys: Sequence[bytes] | None = None,
) -> bytes:
    """Header for X25519 recipient public keys. ephemeral_keys only for test vectors."""
    if not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise FormatError(f"an envelope has 1 to {MAX_RECIPIENTS} recipients")
    if len(file_key) != 32 or len(payload_salt) != 16:
        raise FormatError("file key is 32 bytes and payload salt 16 bytes")
    if ephemeral_keys is not None and len(ephemeral_keys) != len(recipients):
        raise FormatError("one ephemeral key per recipient")
    ids = [key_id(Algorithm.X25519, pk) for pk in recipients]
    if len(set(ids)) != len(ids):
        raise FormatError("a recipient is listed twice")
    parts = [MAGIC, bytes([VERSION, len(recipients)])]
    for i, (kid, pk) in enumerate(zip(ids, recipients, strict=True)):
        enc, wrapped = _hpke.seal_base(
            pk,
            STANZA_INFO + kid,
            b"",
            file_key,
            ephemeral_private=None if ephemeral_keys is None else ephemeral_keys[i],
        )
        parts += [kid, enc, wrapped]
    parts.append(payload_salt)
    covered = b"".join(parts)
    return covered + _mac(file_key, covered)


def unwrap_file_key(header: Header, private_keys: Iterable[bytes]) -> bytes:
    """Recover the file key with any of the X25519 private keys and check the header MAC."""
    by_id: dict[bytes, bytes] = {}
    for secret in private_keys:
        by_id[key_id(Algorithm.X25519, _x25519_public(secret))] = secret
    for stanza in header.stanzas:
        candidate = by_id.get(stanza.key_id)
        if candidate is None:
            continue
        try:
            file_key = _hpke.open_base(
                stanza.enc, candidate, STANZA_INFO + stanza.key_id, b"", stanza.wrapped_file_key
            )
        except DecryptionError:
            continue
        if hmac.compare_digest(_mac(file_key, header.raw[:-32]), header.mac):
            return file_key
        raise DecryptionError()
    raise DecryptionError()


def _x25519_public(secret: bytes) -> bytes:
    from crypto.keys import x25519_public

    return x25519_public(secret)


# -- payload chunks --------------------------------------------------------------------------


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


# -- sealing ---------------------------------------------------------------------------------


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
        buf = bytearray(_BATCH * CHUNK)
        view = memoryview(buf)
        # Reused for every batch: dst.write is done with the bytes when it returns.
        sealed = memoryview(bytearray(_BATCH * CT_CHUNK))
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


# -- opening ---------------------------------------------------------------------------------


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
        batch = max(1, min(_BATCH, stop - first))  # a short envelope gets short buffers
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


def open_envelope(src: BinaryIO, private_keys: Iterable[bytes]) -> OpenedEnvelope:
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
    if len(tail) < 4:
        raise DecryptionError()
    (record_len,) = struct.unpack(">I", tail[-4:])
    if not MIN_RECORD <= record_len <= MAX_RECORD or record_len + 4 > len(tail):
        raise DecryptionError()
    metadata = _parse_record(tail[-4 - record_len : -4])
    if padded_size(metadata.length, record_len) != padded:
        raise DecryptionError()
    return OpenedEnvelope(src, header, key, chunks, padded, metadata, record_len + 4)


def _read_tail(
    src: BinaryIO, header_len: int, cipher: PayloadCipher, chunks: int, padded: int
) -> bytes:
    """Decrypt the last chunk, which always holds the whole trailer (section 3.4).

    For n >= 2 the padded size exceeds 65536, so it is a multiple of 2048 and the last
    piece holds at least 2048 bytes, more than the longest trailer (398 bytes).
    """
    last = chunks - 1
    src.seek(header_len + last * CT_CHUNK)
    return cipher.open_chunk(last, True, _read_exact(src, padded + TAG * chunks - last * CT_CHUNK))


def open_bytes(data: bytes, private_keys: Iterable[bytes]) -> tuple[Metadata, bytes]:
    import io

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
            offset += CHUNK * _BATCH


def open_file_parallel(
    src_path: str, dst_path: str, private_keys: Iterable[bytes], workers: int = 2
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
    per = -(-per // _BATCH) * _BATCH
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
        block = src.read(_BATCH * CT_CHUNK)
        if not block:
            break
        dst.write(block)
    return parse_header(new)


def rewrap_bytes(data: bytes, private_keys: Iterable[bytes], recipients: Sequence[bytes]) -> bytes:
    """:func:`rewrap` for an envelope held in memory."""
    import io

    out = io.BytesIO()
    rewrap(io.BytesIO(data), out, private_keys, recipients)
    return out.getvalue()


def sealed_to(header: Header, recipients: Iterable[bytes]) -> bool:
    """True when the header names exactly these X25519 public keys (order ignored)."""
    return header.key_ids == frozenset(key_id(Algorithm.X25519, pk) for pk in recipients)


__all__ = [
    "CHUNK",
    "Header",
    "Kind",
    "Metadata",
    "OpenedEnvelope",
    "PaddedPlaintext",
    "PayloadCipher",
    "Sealer",
    "build_header",
    "clean_filename",
    "envelope_length",
    "open_bytes",
    "open_envelope",
    "open_file_parallel",
    "padme",
    "parse_header",
    "payload_key",
    "read_header",
    "rewrap",
    "rewrap_bytes",
    "rewrap_header",
    "seal_bytes",
    "seal_piece",
    "seal_stream",
    "sealed_to",
    "split_payload_length",
    "unwrap_file_key",
]
