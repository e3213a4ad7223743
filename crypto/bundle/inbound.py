"""The inbound bundle (docs/format.md section 10): what the server received, for the station.

The server signs the manifest with its server key; the station verifies it against the
server key it pinned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, BinaryIO

from crypto._encoding import (
    b64decode,
    b64encode,
    canonical_json,
    get_int,
    get_list,
    get_str,
    require_members,
)
from crypto.bundle.container import (
    PIECE,
    VERSION,
    EnvelopeSink,
    read_signed_part,
    signed_block,
    split_block,
    stream_envelopes,
    write_all,
)
from crypto.bundle.fields import (
    MAX_ENVELOPE,
    check_bytes,
    check_day,
    check_item_id,
    day_field,
    hex_field,
    parse_manifest_object,
    valid_envelope_size,
)
from crypto.errors import FormatError, SignatureError
from crypto.keyring import MAX_SERIAL
from crypto.keys import KeyKind, PrivateKey, verify_signature

INBOUND_MAGIC = b"PSTRNBIN"
INBOUND_LABEL = b"postern/v1 inbound manifest\n"
MAX_ITEMS = 100_000
MAX_INBOUND_TOTAL = 1 << 44
ITEM_KINDS = ("message", "file")
_INBOUND_MEMBERS = ("type", "version", "server_key", "keyring_serial", "made", "items")
_ITEM_MEMBERS = ("id", "source_id", "reply_public_key", "kind", "size", "sha256", "day")


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
        check_item_id(self.id, "inbound item")
        check_bytes(self.source_id, 16, "an item's source_id")
        check_bytes(self.reply_public_key, 32, "an item's reply_public_key")
        if self.kind not in ITEM_KINDS:
            raise FormatError("an item's kind must be 'message' or 'file'")
        if not valid_envelope_size(self.size):
            raise FormatError(f"item {self.id}: size {self.size!r} is not a valid envelope length")
        check_bytes(self.sha256, 32, "an item's sha256")
        check_day(self.day, "an item's day")

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
        check_bytes(self.server_key, 32, "server_key")
        serial = self.keyring_serial
        if isinstance(serial, bool) or not isinstance(serial, int):
            raise FormatError("keyring_serial must be an integer")
        if not 1 <= serial <= MAX_SERIAL:
            raise FormatError(f"keyring_serial must be from 1 to {MAX_SERIAL}")
        check_day(self.made, "made")
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
        id=check_item_id(raw["id"], what),
        source_id=hex_field(raw, "source_id", 16, what),
        reply_public_key=b64decode(
            get_str(raw, "reply_public_key", what), length=32, what=f"{what} reply_public_key"
        ),
        kind=kind,
        size=size,
        sha256=hex_field(raw, "sha256", 32, what),
        day=day_field(raw, "day", what),
    )


def _parse_inbound_manifest(text: bytes, signer: bytes) -> InboundManifest:
    """Parse manifest text whose signature by ``signer`` has already been verified."""
    what = "inbound manifest"
    obj = parse_manifest_object(text, "postern-inbound-manifest", what)
    require_members(obj, _INBOUND_MEMBERS, what)
    server_key = b64decode(get_str(obj, "server_key", what), length=32, what=f"{what} server_key")
    if server_key != signer:
        raise FormatError(f"{what}: server_key is not the key that signed it")
    manifest = InboundManifest(
        server_key=server_key,
        keyring_serial=get_int(obj, "keyring_serial", what, 1, MAX_SERIAL),
        made=day_field(obj, "made", what),
        items=tuple(_parse_inbound_item(raw) for raw in get_list(obj, "items", what, 0, MAX_ITEMS)),
    )
    # Every field was checked on the way: this is a last guard.
    if manifest.canonical().encode("utf-8") != text:
        raise FormatError(f"{what}: not in canonical form")
    return manifest


def sign_inbound_manifest(manifest: InboundManifest, server_key: PrivateKey) -> bytes:
    """The signed block ``u32be(M) || manifest || signature`` (section 10.1 after the version).

    ``server_key`` must be the server key the manifest names.
    """
    if server_key.kind is not KeyKind.SERVER or server_key.public.key != manifest.server_key:
        raise SignatureError("an inbound manifest must be signed by the server key it names")
    text = manifest.canonical().encode("utf-8")
    return signed_block(text, server_key.sign(INBOUND_LABEL + text))


def parse_signed_inbound_manifest(block: bytes, server_public: bytes) -> InboundManifest:
    """Verify and parse a signed block (``u32be(M) || manifest || signature``, nothing after)."""
    text, signature = split_block(bytes(block), "signed inbound manifest")
    verify_signature(server_public, signature, INBOUND_LABEL + text)
    return _parse_inbound_manifest(text, server_public)


def write_inbound_bundle(dst: BinaryIO, signed_block: bytes, envelopes: Iterable[BinaryIO]) -> int:
    """Write magic, version, the signed block, then each envelope stream; return bytes written.

    The block is not verified again (only its framing is checked), nor are the envelopes:
    the caller has checked them against the manifest.
    """
    split_block(bytes(signed_block), "signed inbound manifest")
    written = write_all(dst, INBOUND_MAGIC + bytes([VERSION]) + signed_block)
    for envelope in envelopes:
        while True:
            data = envelope.read(PIECE)
            if not data:
                break
            written += write_all(dst, data)
    return written


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
    text, signature = read_signed_part(src, INBOUND_MAGIC, what)
    verify_signature(server_public, signature, INBOUND_LABEL + text)
    manifest = _parse_inbound_manifest(text, server_public)
    entries = [(item, item.size, item.sha256) for item in manifest.items]
    stream_envelopes(src, entries, open_sink, what)
    return manifest
