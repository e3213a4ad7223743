"""Envelope v1 layout: constants, the metadata record and the sizes that padding gives.

docs/format.md section 3 is the contract; the section numbers in this package refer to it.
Nothing here needs a key.
"""

from __future__ import annotations

import struct
import unicodedata
from dataclasses import dataclass
from enum import IntEnum

from crypto.errors import DecryptionError, FormatError

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


def parse_record(record: bytes) -> Metadata:
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


def parse_trailer(tail: bytes, padded: int) -> tuple[Metadata, int]:
    """The metadata record at the end of the last chunk's plaintext ``tail`` and the
    trailer's length (record and its 4-byte length), checked against the padded size
    ``padded`` the payload length gave (section 3.4); any mismatch is DecryptionError."""
    if len(tail) < 4:
        raise DecryptionError()
    (record_len,) = struct.unpack(">I", tail[-4:])
    if not MIN_RECORD <= record_len <= MAX_RECORD or record_len + 4 > len(tail):
        raise DecryptionError()
    metadata = parse_record(tail[-4 - record_len : -4])
    if padded_size(metadata.length, record_len) != padded:
        raise DecryptionError()
    return metadata, record_len + 4
