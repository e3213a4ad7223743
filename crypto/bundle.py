"""Inbound and outbound bundles v1 (docs/format.md sections 10 and 11).

A bundle is one file: a magic, a version, a signed canonical JSON manifest and the envelopes
it lists, concatenated. The inbound bundle carries what the server received to the station,
signed by the server; the outbound bundle carries replies, deletions and acknowledgements
back, signed by a journalist signing key.

Readers stream: a manifest is at most 16 MiB and is read whole, but envelopes (up to 1 TiB
each) are copied in bounded pieces into sinks the caller opens, and reach the caller's store
only once the whole bundle has verified (:class:`EnvelopeSink`).
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import os
import re
import stat
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, BinaryIO, Literal, Protocol, TypeVar

from crypto._encoding import (
    b64decode,
    b64encode,
    canonical_json,
    get_int,
    get_list,
    get_str,
    parse_canonical_object,
    parse_json,
    require_members,
)
from crypto.envelope import MAX_RECIPIENTS, header_length, split_payload_length
from crypto.errors import FormatError, SignatureError, UnsupportedVersion
from crypto.keyring import MAX_SERIAL, verify_signature
from crypto.keys import KEY_ID_LEN, Algorithm, KeyKind, PrivateKey, key_id

INBOUND_MAGIC = b"PSTRNBIN"
OUTBOUND_MAGIC = b"PSTRNBOT"
VERSION = 1
INBOUND_LABEL = b"postern/v1 inbound manifest\n"
OUTBOUND_LABEL = b"postern/v1 outbound manifest\n"

SIGNATURE_LEN = 64
MIN_MANIFEST = 2
MAX_MANIFEST = 16 * 1024 * 1024
#: Bytes before the manifest: magic, version, u32be(M).
PREFIX_LEN = 8 + 1 + 4

MAX_ITEMS = 100_000
MAX_ENVELOPE = 1 << 40
MAX_INBOUND_TOTAL = 1 << 44
MAX_REPLIES = 10_000
MAX_REPLY = 16 * 1024 * 1024
MAX_DELETIONS = 100_000
MAX_ACKNOWLEDGED = 100_000

ITEM_KINDS = ("message", "file")
DELETION_SCOPES = ("item", "source_data", "source")

#: Envelope bytes are copied in pieces of at most this size.
PIECE = 1024 * 1024

_ITEM_ID_RE = re.compile(r"\A(?:0|[1-9][0-9]{0,19})\Z")
_HEX_RE = re.compile(r"\A[0-9a-f]*\Z")
_DAY_RE = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")

_INBOUND_MEMBERS = ("type", "version", "server_key", "keyring_serial", "made", "items")
_ITEM_MEMBERS = ("id", "source_id", "reply_public_key", "kind", "size", "sha256", "day")
_OUTBOUND_MEMBERS = (
    "type",
    "version",
    "bundle_id",
    "signed_by",
    "made",
    "replies",
    "deletions",
    "acknowledged",
)


# -- field checks ----------------------------------------------------------------------------


def valid_envelope_size(size: int) -> bool:
    """Whether ``size`` is a v1 envelope length for some number of recipients (1 to 32).

    Section 10.2: at least the header of one recipient plus a valid payload length (section
    3.4), and at most 2^40.
    """
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_ENVELOPE:
        return False
    return any(
        split_payload_length(size - header_length(n)) is not None
        for n in range(1, MAX_RECIPIENTS + 1)
        if size > header_length(n)
    )


def _check_item_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not _ITEM_ID_RE.match(value):
        raise FormatError(f"{what}: an item id is 1 to 20 decimal digits without leading zeros")
    return value


def _hex_field(obj: Mapping[str, Any], name: str, length: int, what: str) -> bytes:
    text = get_str(obj, name, what)
    if len(text) != 2 * length or not _HEX_RE.match(text):
        raise FormatError(f"{what}: {name} must be {2 * length} lowercase hex digits")
    return bytes.fromhex(text)


def _day_field(obj: Mapping[str, Any], name: str, what: str) -> date:
    text = get_str(obj, name, what)
    if not _DAY_RE.match(text):
        raise FormatError(f"{what}: {name} must be a date YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise FormatError(f"{what}: {name} is not a valid date") from None
    return day


def _check_day(value: object, what: str) -> None:
    # A datetime is a date too, but its isoformat() would carry a time.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise FormatError(f"{what} must be a date")


def _check_bytes(value: object, length: int, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != length:
        raise FormatError(f"{what} must be {length} bytes")


def _check_version(obj: Mapping[str, Any], what: str) -> None:
    """Section 10.2: a version other than the integer 1 is unsupported_version."""
    value = obj.get("version")
    if isinstance(value, bool) or value != 1:
        raise UnsupportedVersion(f"{what}: unsupported version {value!r}")


def _parse_manifest_object(text: bytes, type_name: str, what: str) -> dict[str, Any]:
    """Canonical JSON text of an object, then its type, then its version."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"{what}: not UTF-8") from None
    obj = parse_canonical_object(decoded, max_bytes=MAX_MANIFEST, what=what)
    if obj.get("type") != type_name:
        raise FormatError(f"{what}: type must be {type_name!r}")
    _check_version(obj, what)
    return obj


# -- inbound manifest ------------------------------------------------------------------------


@dataclass(frozen=True)
class InboundItem:
    """One envelope of an inbound bundle, as the server describes it (section 10.2)."""

    id: str
    source_id: bytes
    reply_public_key: bytes
    kind: str
    size: int
    sha256: bytes
    day: date

    def __post_init__(self) -> None:
        _check_item_id(self.id, "inbound item")
        _check_bytes(self.source_id, 16, "an item's source_id")
        _check_bytes(self.reply_public_key, 32, "an item's reply_public_key")
        if self.kind not in ITEM_KINDS:
            raise FormatError("an item's kind must be 'message' or 'file'")
        if not valid_envelope_size(self.size):
            raise FormatError(f"item {self.id}: size {self.size!r} is not a valid envelope length")
        _check_bytes(self.sha256, 32, "an item's sha256")
        _check_day(self.day, "an item's day")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source_id": self.source_id.hex(),
            "reply_public_key": b64encode(self.reply_public_key),
            "kind": self.kind,
            "size": self.size,
            "sha256": self.sha256.hex(),
            "day": self.day.isoformat(),
        }


@dataclass(frozen=True)
class InboundManifest:
    """The server-signed list of the envelopes in an inbound bundle (section 10.2)."""

    server_key: bytes
    keyring_serial: int
    made: date
    items: tuple[InboundItem, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))
        _check_bytes(self.server_key, 32, "server_key")
        serial = self.keyring_serial
        if isinstance(serial, bool) or not isinstance(serial, int):
            raise FormatError("keyring_serial must be an integer")
        if not 1 <= serial <= MAX_SERIAL:
            raise FormatError(f"keyring_serial must be from 1 to {MAX_SERIAL}")
        _check_day(self.made, "made")
        if len(self.items) > MAX_ITEMS:
            raise FormatError(f"an inbound manifest lists at most {MAX_ITEMS} items")
        ids = set()
        for item in self.items:
            if not isinstance(item, InboundItem):
                raise FormatError("items must be InboundItem values")
            if item.id in ids:
                raise FormatError(f"item id {item.id} appears twice in the manifest")
            ids.add(item.id)
        if sum(item.size for item in self.items) > MAX_INBOUND_TOTAL:
            raise FormatError("the items of an inbound manifest add up to more than 2^44 bytes")

    @property
    def total_size(self) -> int:
        return sum(item.size for item in self.items)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "postern-inbound-manifest",
            "version": 1,
            "server_key": b64encode(self.server_key),
            "keyring_serial": self.keyring_serial,
            "made": self.made.isoformat(),
            "items": [item.to_json() for item in self.items],
        }

    def canonical(self) -> str:
        return canonical_json(self.to_json())


def _parse_inbound_item(raw: object) -> InboundItem:
    what = "inbound manifest item"
    if not isinstance(raw, dict):
        raise FormatError(f"{what}: must be an object")
    require_members(raw, _ITEM_MEMBERS, what)
    kind = get_str(raw, "kind", what)
    if kind not in ITEM_KINDS:
        raise FormatError(f"{what}: kind must be 'message' or 'file'")
    size = get_int(raw, "size", what, 1, MAX_ENVELOPE)
    return InboundItem(
        id=_check_item_id(raw["id"], what),
        source_id=_hex_field(raw, "source_id", 16, what),
        reply_public_key=b64decode(
            get_str(raw, "reply_public_key", what), length=32, what=f"{what} reply_public_key"
        ),
        kind=kind,
        size=size,
        sha256=_hex_field(raw, "sha256", 32, what),
        day=_day_field(raw, "day", what),
    )


def _parse_inbound_manifest(text: bytes, signer: bytes) -> InboundManifest:
    """Parse manifest text whose signature by ``signer`` has already been verified."""
    what = "inbound manifest"
    obj = _parse_manifest_object(text, "postern-inbound-manifest", what)
    require_members(obj, _INBOUND_MEMBERS, what)
    server_key = b64decode(get_str(obj, "server_key", what), length=32, what=f"{what} server_key")
    if server_key != signer:
        raise FormatError(f"{what}: server_key is not the key that signed it")
    manifest = InboundManifest(
        server_key=server_key,
        keyring_serial=get_int(obj, "keyring_serial", what, 1, MAX_SERIAL),
        made=_day_field(obj, "made", what),
        items=tuple(_parse_inbound_item(raw) for raw in get_list(obj, "items", what, 0, MAX_ITEMS)),
    )
    # Every field was checked on the way: this is a last guard.
    if manifest.canonical().encode("utf-8") != text:
        raise FormatError(f"{what}: not in canonical form")
    return manifest


def _signed_block(text: bytes, signature: bytes) -> bytes:
    if not MIN_MANIFEST <= len(text) <= MAX_MANIFEST:
        raise FormatError(f"a manifest is {MIN_MANIFEST} to {MAX_MANIFEST} bytes")
    return struct.pack(">I", len(text)) + text + signature


def sign_inbound_manifest(manifest: InboundManifest, server_key: PrivateKey) -> bytes:
    """The signed block ``u32be(M) || manifest || signature`` (section 10.1 after the version).

    ``server_key`` must be the server key the manifest names.
    """
    if server_key.kind is not KeyKind.SERVER or server_key.public.key != manifest.server_key:
        raise SignatureError("an inbound manifest must be signed by the server key it names")
    text = manifest.canonical().encode("utf-8")
    return _signed_block(text, server_key.sign(INBOUND_LABEL + text))


def _split_block(block: bytes, what: str) -> tuple[bytes, bytes]:
    if len(block) < 4:
        raise FormatError(f"{what}: truncated before the manifest length")
    (length,) = struct.unpack(">I", block[:4])
    if not MIN_MANIFEST <= length <= MAX_MANIFEST:
        raise FormatError(
            f"{what}: manifest length {length} outside {MIN_MANIFEST}..{MAX_MANIFEST}"
        )
    if len(block) < 4 + length:
        raise FormatError(f"{what}: truncated inside the manifest")
    if len(block) < 4 + length + SIGNATURE_LEN:
        raise FormatError(f"{what}: truncated inside the signature")
    if len(block) > 4 + length + SIGNATURE_LEN:
        raise FormatError(f"{what}: data after the signature")
    return block[4 : 4 + length], block[4 + length :]


def parse_signed_inbound_manifest(block: bytes, server_public: bytes) -> InboundManifest:
    """Verify and parse a signed block (``u32be(M) || manifest || signature``, nothing after)."""
    text, signature = _split_block(bytes(block), "signed inbound manifest")
    verify_signature(server_public, signature, INBOUND_LABEL + text)
    return _parse_inbound_manifest(text, server_public)


# -- outbound manifest -----------------------------------------------------------------------


@dataclass(frozen=True)
class Deletion:
    """One deletion of an outbound bundle (section 11.2).

    ``item`` names an item by ``id``; ``source_data`` and ``source`` name a source by
    ``source_id``.
    """

    scope: Literal["item", "source_data", "source"]
    id: str | None = None
    source_id: bytes | None = None

    def __post_init__(self) -> None:
        if self.scope not in DELETION_SCOPES:
            raise FormatError(f"unknown deletion scope {self.scope!r}")
        if self.scope == "item":
            if self.source_id is not None:
                raise FormatError("an item deletion names an id, not a source_id")
            _check_item_id(self.id, "deletion")
        else:
            if self.id is not None:
                raise FormatError(f"a {self.scope} deletion names a source_id, not an id")
            _check_bytes(self.source_id, 16, "a deletion's source_id")

    def to_json(self) -> dict[str, Any]:
        if self.scope == "item":
            return {"scope": self.scope, "id": self.id}
        source_id = self.source_id if self.source_id is not None else b""
        return {"scope": self.scope, "source_id": source_id.hex()}


@dataclass(frozen=True)
class OutboundReply:
    """One reply envelope of an outbound bundle, for the source ``source_id``."""

    source_id: bytes
    size: int
    sha256: bytes

    def __post_init__(self) -> None:
        _check_bytes(self.source_id, 16, "a reply's source_id")
        if not valid_envelope_size(self.size) or self.size > MAX_REPLY:
            raise FormatError(
                f"reply size {self.size!r} is not a valid envelope length of at most "
                f"{MAX_REPLY} bytes"
            )
        _check_bytes(self.sha256, 32, "a reply's sha256")

    def to_json(self) -> dict[str, Any]:
        return {"source_id": self.source_id.hex(), "size": self.size, "sha256": self.sha256.hex()}


def _no_duplicates(values: Sequence[object], what: str) -> None:
    if len(set(values)) != len(values):
        raise FormatError(f"{what}: the same entry appears twice")


@dataclass(frozen=True)
class OutboundManifest:
    """What a journalist sends back to the server (section 11.2)."""

    bundle_id: bytes
    signed_by: bytes
    made: date
    replies: tuple[OutboundReply, ...]
    deletions: tuple[Deletion, ...]
    acknowledged: tuple[str, ...]

    def __post_init__(self) -> None:
        for name in ("replies", "deletions", "acknowledged"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        _check_bytes(self.bundle_id, 16, "bundle_id")
        _check_bytes(self.signed_by, KEY_ID_LEN, "signed_by")
        _check_day(self.made, "made")
        limits = (
            ("replies", OutboundReply, MAX_REPLIES),
            ("deletions", Deletion, MAX_DELETIONS),
            ("acknowledged", str, MAX_ACKNOWLEDGED),
        )
        for name, kind, limit in limits:
            values = getattr(self, name)
            if len(values) > limit:
                raise FormatError(f"an outbound manifest has at most {limit} {name}")
            if not all(isinstance(value, kind) for value in values):
                raise FormatError(f"{name} must be {kind.__name__} values")
            _no_duplicates(values, f"outbound manifest {name}")
        for item_id in self.acknowledged:
            _check_item_id(item_id, "acknowledged")

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "postern-outbound-manifest",
            "version": 1,
            "bundle_id": self.bundle_id.hex(),
            "signed_by": self.signed_by.hex(),
            "made": self.made.isoformat(),
            "replies": [reply.to_json() for reply in self.replies],
            "deletions": [deletion.to_json() for deletion in self.deletions],
            "acknowledged": list(self.acknowledged),
        }

    def canonical(self) -> str:
        return canonical_json(self.to_json())


def _parse_deletion(raw: object) -> Deletion:
    what = "outbound manifest deletion"
    if not isinstance(raw, dict):
        raise FormatError(f"{what}: must be an object")
    scope = raw.get("scope")
    if scope == "item":
        require_members(raw, ("scope", "id"), what)
        return Deletion("item", id=_check_item_id(raw["id"], what))
    if scope == "source_data" or scope == "source":
        require_members(raw, ("scope", "source_id"), what)
        return Deletion(scope, source_id=_hex_field(raw, "source_id", 16, what))
    raise FormatError(f"{what}: scope must be 'item', 'source_data' or 'source'")


def _parse_reply(raw: object) -> OutboundReply:
    what = "outbound manifest reply"
    if not isinstance(raw, dict):
        raise FormatError(f"{what}: must be an object")
    require_members(raw, ("source_id", "size", "sha256"), what)
    return OutboundReply(
        source_id=_hex_field(raw, "source_id", 16, what),
        size=get_int(raw, "size", what, 1, MAX_REPLY),
        sha256=_hex_field(raw, "sha256", 32, what),
    )


def _parse_outbound_manifest(text: bytes, signer_id: bytes) -> OutboundManifest:
    what = "outbound manifest"
    obj = _parse_manifest_object(text, "postern-outbound-manifest", what)
    require_members(obj, _OUTBOUND_MEMBERS, what)
    signed_by = _hex_field(obj, "signed_by", KEY_ID_LEN, what)
    if signed_by != signer_id:  # cannot differ: the key was found by it
        raise FormatError(f"{what}: signed_by is not the key that signed it")
    acknowledged = get_list(obj, "acknowledged", what, 0, MAX_ACKNOWLEDGED)
    manifest = OutboundManifest(
        bundle_id=_hex_field(obj, "bundle_id", 16, what),
        signed_by=signed_by,
        made=_day_field(obj, "made", what),
        replies=tuple(_parse_reply(r) for r in get_list(obj, "replies", what, 0, MAX_REPLIES)),
        deletions=tuple(
            _parse_deletion(d) for d in get_list(obj, "deletions", what, 0, MAX_DELETIONS)
        ),
        acknowledged=tuple(_check_item_id(a, f"{what} acknowledged") for a in acknowledged),
    )
    # Every field was checked on the way: this is a last guard.
    if manifest.canonical().encode("utf-8") != text:
        raise FormatError(f"{what}: not in canonical form")
    return manifest


def _named_signer(text: bytes) -> bytes | None:
    """The ``signed_by`` key id an unverified outbound manifest names, or None."""
    try:
        obj = parse_json(text, max_bytes=MAX_MANIFEST, what="outbound manifest")
    except FormatError:
        return None
    if not isinstance(obj, dict):
        return None
    value = obj.get("signed_by")
    if not isinstance(value, str) or len(value) != 2 * KEY_ID_LEN or not _HEX_RE.match(value):
        return None
    return bytes.fromhex(value)


# -- streaming -------------------------------------------------------------------------------


class EnvelopeSink(Protocol):
    """Where a reader puts one envelope of a bundle.

    The reader calls ``write`` with the envelope's bytes in order (exactly ``size`` bytes in
    all, since the sink is opened for an entry whose size it can see), then, once the *whole
    bundle* has verified (every envelope and the end of the file), ``commit`` on every sink in
    manifest order. If anything fails, the reader calls ``abort`` on every sink it opened
    and has not committed, and nothing must remain of them. A sink may close its file once
    it has received ``size`` bytes: the reader writes nothing more to it.
    """

    def write(self, data: bytes, /) -> object: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


def _read_exact(src: BinaryIO, size: int, what: str) -> bytes:
    parts: list[bytes] = []
    remaining = size
    while remaining:
        data = src.read(min(remaining, PIECE))
        if not data:
            raise FormatError(f"truncated {what}")
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)


def _read_signed_part(src: BinaryIO, magic: bytes, what: str) -> tuple[bytes, bytes]:
    """Read and check magic, version and M; return (manifest text, signature)."""
    head = b""
    while len(head) < len(magic):
        more = src.read(len(magic) - len(head))
        if not more:
            break
        head += more
    if head != magic:
        raise FormatError(f"not a Postern {what} (bad magic)")
    version = _read_exact(src, 1, f"{what}: no version")
    if version[0] != VERSION:
        raise UnsupportedVersion(f"unsupported {what} version {version[0]}")
    (length,) = struct.unpack(">I", _read_exact(src, 4, f"{what}: no manifest length"))
    if not MIN_MANIFEST <= length <= MAX_MANIFEST:
        raise FormatError(
            f"{what}: manifest length {length} outside {MIN_MANIFEST}..{MAX_MANIFEST}"
        )
    text = _read_exact(src, length, f"{what}: inside the manifest")
    signature = _read_exact(src, SIGNATURE_LEN, f"{what}: inside the signature")
    return text, signature


_Entry = TypeVar("_Entry")


def _stream_envelopes(
    src: BinaryIO,
    entries: Sequence[tuple[_Entry, int, bytes]],
    open_sink: Callable[[_Entry], EnvelopeSink],
    what: str,
) -> None:
    """Copy each entry's envelope into its sink; commit all only if everything verifies."""
    opened: list[EnvelopeSink] = []
    try:
        for index, (entry, size, digest) in enumerate(entries):
            sink = open_sink(entry)
            opened.append(sink)
            hasher = hashlib.sha256()
            remaining = size
            while remaining:
                data = src.read(min(remaining, PIECE))
                if not data:
                    raise FormatError(f"truncated {what}: envelope {index} ends early")
                hasher.update(data)
                sink.write(data)
                remaining -= len(data)
            if not hmac.compare_digest(hasher.digest(), digest):
                raise FormatError(f"{what}: envelope {index} does not match its SHA-256")
        if src.read(1):
            raise FormatError(f"{what}: trailing data after the last envelope")
    except BaseException as exc:
        _abort_all(opened, exc)
        raise
    committed = 0
    try:
        for sink in opened:
            sink.commit()
            committed += 1
    except BaseException as exc:
        _abort_all(opened[committed:], exc)
        raise


def _abort_all(sinks: Iterable[EnvelopeSink], error: BaseException) -> None:
    """Abort every sink, even if an abort fails; failures become notes on ``error``.

    The error that stopped the reader is the one raised (its class tells what was wrong
    with the bundle); a sink that could not clean up is mentioned beside it.
    """
    for sink in sinks:
        try:
            sink.abort()
        except Exception as failure:  # noqa: BLE001 - kept as a note, the others still run
            error.add_note(f"aborting an envelope sink also failed: {failure!r}")


# -- inbound bundle --------------------------------------------------------------------------


def write_inbound_bundle(dst: BinaryIO, signed_block: bytes, envelopes: Iterable[BinaryIO]) -> int:
    """Write magic, version, the signed block, then each envelope stream; return bytes written.

    The block is not verified again (only its framing is checked), nor are the envelopes:
    the caller has checked them against the manifest.
    """
    _split_block(bytes(signed_block), "signed inbound manifest")
    written = _write_all(dst, INBOUND_MAGIC + bytes([VERSION]) + signed_block)
    for envelope in envelopes:
        while True:
            data = envelope.read(PIECE)
            if not data:
                break
            written += _write_all(dst, data)
    return written


def _write_all(dst: BinaryIO, data: bytes) -> int:
    view = memoryview(data)
    while view:
        count = dst.write(view)
        if count is None:  # a non-blocking stream is a caller's bug
            raise OSError("the destination stream would block")
        view = view[count:]
    return len(data)


def read_inbound_bundle(
    src: BinaryIO,
    server_public: bytes,
    open_sink: Callable[[InboundItem], EnvelopeSink],
) -> InboundManifest:
    """Verify an inbound bundle against the pinned server key and stream out its envelopes.

    Checks, in the order of section 10.1: magic, version, M, signature, manifest, then each
    envelope's size and SHA-256, then the end of the file. Every sink is committed only
    after all of that passed; on any error every sink is aborted and the error raised.
    """
    what = "inbound bundle"
    text, signature = _read_signed_part(src, INBOUND_MAGIC, what)
    verify_signature(server_public, signature, INBOUND_LABEL + text)
    manifest = _parse_inbound_manifest(text, server_public)
    entries = [(item, item.size, item.sha256) for item in manifest.items]
    _stream_envelopes(src, entries, open_sink, what)
    return manifest


# -- outbound bundle -------------------------------------------------------------------------


def write_outbound_bundle(
    dst: BinaryIO,
    *,
    signing_key: PrivateKey,
    made: date,
    replies: Sequence[tuple[bytes, bytes]],
    deletions: Sequence[Deletion],
    acknowledged: Sequence[str],
    bundle_id: bytes | None = None,
) -> OutboundManifest:
    """Sign and write an outbound bundle; ``replies`` are (source_id, envelope bytes) pairs."""
    if signing_key.kind is not KeyKind.SIGNING:
        raise SignatureError("an outbound bundle is signed by a journalist signing key")
    manifest = OutboundManifest(
        bundle_id=os.urandom(16) if bundle_id is None else bundle_id,
        signed_by=signing_key.key_id,
        made=made,
        replies=tuple(
            OutboundReply(source_id, len(envelope), hashlib.sha256(envelope).digest())
            for source_id, envelope in replies
        ),
        deletions=tuple(deletions),
        acknowledged=tuple(acknowledged),
    )
    text = manifest.canonical().encode("utf-8")
    block = _signed_block(text, signing_key.sign(OUTBOUND_LABEL + text))
    _write_all(dst, OUTBOUND_MAGIC + bytes([VERSION]) + block)
    for _, envelope in replies:
        _write_all(dst, envelope)
    return manifest


def read_outbound_bundle(
    src: BinaryIO,
    signing_keys: Mapping[bytes, bytes],
    open_sink: Callable[[OutboundReply], EnvelopeSink],
) -> OutboundManifest:
    """Verify an outbound bundle and stream out its reply envelopes.

    ``signing_keys`` maps the key id of each journalist signing key of the installed keyring
    to its Ed25519 public key; the manifest's ``signed_by`` must be one of them (else
    SignatureError). The rest is as :func:`read_inbound_bundle`.
    """
    what = "outbound bundle"
    text, signature = _read_signed_part(src, OUTBOUND_MAGIC, what)
    signer_id = _named_signer(text)
    public = None if signer_id is None else signing_keys.get(signer_id)
    if signer_id is None or public is None:
        raise SignatureError(f"{what}: signed_by does not name a known journalist signing key")
    if len(public) != 32 or key_id(Algorithm.ED25519, public) != signer_id:
        raise SignatureError(f"{what}: the signing key does not match its key id")
    verify_signature(public, signature, OUTBOUND_LABEL + text)
    manifest = _parse_outbound_manifest(text, signer_id)
    entries = [(reply, reply.size, reply.sha256) for reply in manifest.replies]
    _stream_envelopes(src, entries, open_sink, what)
    return manifest


# -- bundle files ----------------------------------------------------------------------------


def open_bundle_file(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a bundle file for reading: a regular file, never through a symbolic link.

    Raises FormatError for a symbolic link (``O_NOFOLLOW``) or anything but a regular file
    (a FIFO is opened without blocking and refused); other failures (a missing file, no
    permission) are the usual OSError.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
            raise FormatError(
                f"{os.fspath(path)}: is a symbolic link; a bundle is read only from a regular file"
            ) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FormatError(f"{os.fspath(path)}: not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
