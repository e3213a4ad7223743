"""The envelope header (sections 3.1 to 3.3): stanzas, parsing, building and the header MAC.

Parsing checks the structure only; the file key is recovered from a stanza with one of the
reader's X25519 private keys, and only then is the MAC checked.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from crypto import _hpke
from crypto._streams import read_up_to
from crypto.envelope.format import (
    HEADER_INFO,
    MAGIC,
    MAX_RECIPIENTS,
    PREFIX_LEN,
    STANZA_INFO,
    STANZA_LEN,
    VERSION,
    header_length,
    split_payload_length,
)
from crypto.errors import DecryptionError, FormatError, UnsupportedVersion
from crypto.kdf import hkdf_sha256
from crypto.keys import Algorithm, key_id


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


def parse_prefix(prefix: bytes) -> int:
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
    length = parse_prefix(bytes(data[:PREFIX_LEN]))
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


def read_header(src: BinaryIO) -> Header:
    prefix = read_up_to(src, PREFIX_LEN)
    length = parse_prefix(prefix)
    return parse_header(prefix + read_up_to(src, length - PREFIX_LEN))


def _mac(file_key: bytes, covered: bytes) -> bytes:
    mac_key = hkdf_sha256(file_key, b"", HEADER_INFO, 32)
    return hmac.new(mac_key, covered, hashlib.sha256).digest()


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


class RecipientKeys:
    """X25519 private keys prepared for opening many envelopes: their key objects, public
    keys and key ids are built here once, not again for every envelope."""

    def __init__(self, private_keys: Iterable[bytes]) -> None:
        self.by_id: dict[bytes, _hpke.RecipientKey] = {}
        for secret in private_keys:
            prepared = _hpke.prepare_key(secret)
            self.by_id[key_id(Algorithm.X25519, prepared.pk)] = prepared


def unwrap_file_key(header: Header, private_keys: Iterable[bytes] | RecipientKeys) -> bytes:
    """Recover the file key with any of the X25519 private keys and check the header MAC."""
    keys = private_keys if isinstance(private_keys, RecipientKeys) else RecipientKeys(private_keys)
    by_id = keys.by_id
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


def sealed_to(header: Header, recipients: Iterable[bytes]) -> bool:
    """True when the header names exactly these X25519 public keys (order ignored)."""
    return header.key_ids == frozenset(key_id(Algorithm.X25519, pk) for pk in recipients)
