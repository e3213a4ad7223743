"""The outbound bundle (docs/format.md section 11): replies, deletions and acknowledgements.

A journalist signing key of the installed keyring signs the manifest; the server finds the
key by the ``signed_by`` key id the manifest names.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, BinaryIO, Literal

from crypto._encoding import canonical_json, get_int, get_list, parse_json, require_members
from crypto.bundle.container import (
    MAX_MANIFEST,
    VERSION,
    EnvelopeSink,
    read_signed_part,
    signed_block,
    stream_envelopes,
    write_all,
)
from crypto.bundle.fields import (
    HEX_RE,
    check_bytes,
    check_day,
    check_item_id,
    day_field,
    hex_field,
    parse_manifest_object,
    valid_envelope_size,
)
from crypto.errors import FormatError, SignatureError
from crypto.keys import KEY_ID_LEN, Algorithm, KeyKind, PrivateKey, key_id, verify_signature

OUTBOUND_MAGIC = b"PSTRNBOT"
OUTBOUND_LABEL = b"postern/v1 outbound manifest\n"
MAX_REPLIES = 10_000
MAX_REPLY = 16 * 1024 * 1024
MAX_DELETIONS = 100_000
MAX_ACKNOWLEDGED = 100_000
DELETION_SCOPES = ("item", "source_data", "source")
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
            check_item_id(self.id, "deletion")
        else:
            if self.id is not None:
                raise FormatError(f"a {self.scope} deletion names a source_id, not an id")
            check_bytes(self.source_id, 16, "a deletion's source_id")

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
        check_bytes(self.source_id, 16, "a reply's source_id")
        if not valid_envelope_size(self.size) or self.size > MAX_REPLY:
            raise FormatError(
                f"reply size {self.size!r} is not a valid envelope length of at most "
                f"{MAX_REPLY} bytes"
            )
        check_bytes(self.sha256, 32, "a reply's sha256")

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
        check_bytes(self.bundle_id, 16, "bundle_id")
        check_bytes(self.signed_by, KEY_ID_LEN, "signed_by")
        check_day(self.made, "made")
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
            check_item_id(item_id, "acknowledged")

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
        return Deletion("item", id=check_item_id(raw["id"], what))
    if scope == "source_data" or scope == "source":
        require_members(raw, ("scope", "source_id"), what)
        return Deletion(scope, source_id=hex_field(raw, "source_id", 16, what))
    raise FormatError(f"{what}: scope must be 'item', 'source_data' or 'source'")


def _parse_reply(raw: object) -> OutboundReply:
    what = "outbound manifest reply"
    if not isinstance(raw, dict):
        raise FormatError(f"{what}: must be an object")
    require_members(raw, ("source_id", "size", "sha256"), what)
    return OutboundReply(
        source_id=hex_field(raw, "source_id", 16, what),
        size=get_int(raw, "size", what, 1, MAX_REPLY),
        sha256=hex_field(raw, "sha256", 32, what),
    )


def _parse_outbound_manifest(text: bytes, signer_id: bytes) -> OutboundManifest:
    what = "outbound manifest"
    obj = parse_manifest_object(text, "postern-outbound-manifest", what)
    require_members(obj, _OUTBOUND_MEMBERS, what)
    signed_by = hex_field(obj, "signed_by", KEY_ID_LEN, what)
    if signed_by != signer_id:  # cannot differ: the key was found by it
        raise FormatError(f"{what}: signed_by is not the key that signed it")
    acknowledged = get_list(obj, "acknowledged", what, 0, MAX_ACKNOWLEDGED)
    manifest = OutboundManifest(
        bundle_id=hex_field(obj, "bundle_id", 16, what),
        signed_by=signed_by,
        made=day_field(obj, "made", what),
        replies=tuple(_parse_reply(r) for r in get_list(obj, "replies", what, 0, MAX_REPLIES)),
        deletions=tuple(
            _parse_deletion(d) for d in get_list(obj, "deletions", what, 0, MAX_DELETIONS)
        ),
        acknowledged=tuple(check_item_id(a, f"{what} acknowledged") for a in acknowledged),
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
    if not isinstance(value, str) or len(value) != 2 * KEY_ID_LEN or not HEX_RE.match(value):
        return None
    return bytes.fromhex(value)


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
    block = signed_block(text, signing_key.sign(OUTBOUND_LABEL + text))
    write_all(dst, OUTBOUND_MAGIC + bytes([VERSION]) + block)
    for _, envelope in replies:
        write_all(dst, envelope)
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
    text, signature = read_signed_part(src, OUTBOUND_MAGIC, what)
    signer_id = _named_signer(text)
    public = None if signer_id is None else signing_keys.get(signer_id)
    if signer_id is None or public is None:
        raise SignatureError(f"{what}: signed_by does not name a known journalist signing key")
    if len(public) != 32 or key_id(Algorithm.ED25519, public) != signer_id:
        raise SignatureError(f"{what}: the signing key does not match its key id")
    verify_signature(public, signature, OUTBOUND_LABEL + text)
    manifest = _parse_outbound_manifest(text, signer_id)
    entries = [(reply, reply.size, reply.sha256) for reply in manifest.replies]
    stream_envelopes(src, entries, open_sink, what)
    return manifest
