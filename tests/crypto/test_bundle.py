"""Tests for crypto.bundle: inbound and outbound bundles v1 (docs/format.md sections 10, 11).

The helpers at the top (keys, envelopes, memory sinks, bundles assembled by hand) are shared
with test_bundle_fuzz.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from crypto._encoding import b64encode, canonical_json
from crypto.bundle import (
    INBOUND_LABEL,
    INBOUND_MAGIC,
    MAX_ITEMS,
    MAX_REPLIES,
    OUTBOUND_LABEL,
    OUTBOUND_MAGIC,
    PIECE,
    Deletion,
    InboundItem,
    InboundManifest,
    OutboundManifest,
    OutboundReply,
    open_bundle_file,
    parse_signed_inbound_manifest,
    read_inbound_bundle,
    read_outbound_bundle,
    sign_inbound_manifest,
    valid_envelope_size,
    write_inbound_bundle,
    write_outbound_bundle,
)
from crypto.envelope import Kind, seal_bytes
from crypto.errors import FormatError, SignatureError, UnsupportedVersion
from crypto.keys import KeyKind, PrivateKey, x25519_public

MADE = date(2026, 11, 24)
SERIAL = 7


def secret(name: str) -> bytes:
    return hashlib.sha256(b"postern test_bundle\n" + name.encode()).digest()


SERVER = PrivateKey(KeyKind.SERVER, secret("server"), "server signing key")
OTHER_SERVER = PrivateKey(KeyKind.SERVER, secret("other server"), "another server")
ALICE = PrivateKey(KeyKind.SIGNING, secret("alice signing"), "Alice")
BOB = PrivateKey(KeyKind.SIGNING, secret("bob signing"), "Bob")
RECIPIENT = x25519_public(secret("recipient"))
REPLY_SECRET = secret("reply key")
REPLY_PUBLIC = x25519_public(REPLY_SECRET)
SIGNING_KEYS = {ALICE.key_id: ALICE.public.key, BOB.key_id: BOB.public.key}

#: The smallest valid envelope length: one recipient, one chunk of 1024 padded bytes.
SMALLEST = 58 + 96 + 1024 + 16


def envelope(content: bytes, kind: Kind = Kind.MESSAGE) -> bytes:
    """A real envelope sealed to RECIPIENT."""
    return seal_bytes(content, [RECIPIENT], kind)


def fake_envelope(seed: int, size: int = SMALLEST) -> bytes:
    """Bytes of a valid envelope length (the bundle format never parses envelopes)."""
    block = hashlib.sha256(seed.to_bytes(8, "big")).digest()
    return (block * (size // 32 + 1))[:size]


def item_for(item_id: str, data: bytes, kind: str = "message") -> InboundItem:
    return InboundItem(
        id=item_id,
        source_id=hashlib.sha256(b"source " + item_id.encode()).digest()[:16],
        reply_public_key=REPLY_PUBLIC,
        kind=kind,
        size=len(data),
        sha256=hashlib.sha256(data).digest(),
        day=date(2026, 11, 20),
    )


def inbound_manifest(envelopes: Sequence[bytes]) -> InboundManifest:
    items = tuple(item_for(str(i + 1), data) for i, data in enumerate(envelopes))
    return InboundManifest(SERVER.public.key, SERIAL, MADE, items)


@dataclass
class MemorySink:
    """An EnvelopeSink that keeps what it is given and what happened to it."""

    key: object
    parts: list[bytes] = field(default_factory=list)
    committed: bool = False
    aborted: bool = False

    def write(self, data: bytes, /) -> int:
        assert not self.committed
        assert not self.aborted
        self.parts.append(bytes(data))
        return len(data)

    def commit(self) -> None:
        assert not self.aborted
        self.committed = True

    def abort(self) -> None:
        assert not self.committed
        self.aborted = True

    @property
    def data(self) -> bytes:
        return b"".join(self.parts)


@dataclass
class Sinks:
    """A sink factory that remembers every sink it opened."""

    opened: list[MemorySink] = field(default_factory=list)

    def __call__(self, key: InboundItem | OutboundReply) -> MemorySink:
        sink = MemorySink(key)
        self.opened.append(sink)
        return sink

    @property
    def contents(self) -> list[bytes]:
        assert all(sink.committed for sink in self.opened)
        return [sink.data for sink in self.opened]

    def assert_nothing_committed(self) -> None:
        assert not any(sink.committed for sink in self.opened)
        assert all(sink.aborted for sink in self.opened)


def raw_bundle(
    manifest: str | bytes | dict[str, Any],
    key: PrivateKey,
    envelopes: Sequence[bytes] = (),
    *,
    inbound: bool = True,
    version: int = 1,
    length: int | None = None,
) -> bytes:
    """A bundle assembled by hand: any manifest text, signed by any key."""
    if isinstance(manifest, dict):
        # The canonical layout, but without canonical_json's refusal of negative numbers.
        manifest = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    text = manifest.encode() if isinstance(manifest, str) else manifest
    label = INBOUND_LABEL if inbound else OUTBOUND_LABEL
    magic = INBOUND_MAGIC if inbound else OUTBOUND_MAGIC
    prefix = magic + bytes([version]) + struct.pack(">I", len(text) if length is None else length)
    return prefix + text + key.sign(label + text) + b"".join(envelopes)


def inbound_json(envelopes: Sequence[bytes]) -> dict[str, Any]:
    return inbound_manifest(envelopes).to_json()


def outbound_json(
    replies: Sequence[bytes] = (),
    *,
    signer: PrivateKey = ALICE,
    deletions: Sequence[dict[str, str]] = (),
    acknowledged: Sequence[str] = (),
) -> dict[str, Any]:
    return {
        "type": "postern-outbound-manifest",
        "version": 1,
        "bundle_id": "00" * 15 + "01",
        "signed_by": signer.key_id.hex(),
        "made": MADE.isoformat(),
        "replies": [
            {
                "source_id": "ab" * 16,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
            for data in replies
        ],
        "deletions": list(deletions),
        "acknowledged": list(acknowledged),
    }


def b64(data: bytes) -> str:
    return b64encode(data)


def stream(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


# == round trips ===========================================================================


def _inbound_bundle(envelopes: Sequence[bytes], manifest: InboundManifest | None = None) -> bytes:
    manifest = manifest or inbound_manifest(envelopes)
    block = sign_inbound_manifest(manifest, SERVER)
    out = io.BytesIO()
    written = write_inbound_bundle(out, block, [io.BytesIO(e) for e in envelopes])
    assert written == len(out.getvalue())
    return out.getvalue()


def _read_inbound(data: bytes, sinks: Sinks | None = None) -> tuple[InboundManifest, Sinks]:
    sinks = sinks or Sinks()
    manifest = read_inbound_bundle(stream(data), SERVER.public.key, sinks)
    return manifest, sinks


def test_inbound_round_trip_without_items() -> None:
    data = _inbound_bundle([])
    manifest, sinks = _read_inbound(data)
    assert manifest == inbound_manifest([])
    assert sinks.opened == []
    assert data.startswith(INBOUND_MAGIC + b"\x01")


def test_inbound_round_trip_with_real_envelopes() -> None:
    envelopes = [
        envelope(b"first message"),
        envelope(b"x" * 70_000, Kind.FILE),
        envelope(b"third"),
    ]
    data = _inbound_bundle(envelopes)
    manifest, sinks = _read_inbound(data)
    assert manifest == inbound_manifest(envelopes)
    assert sinks.contents == envelopes
    assert [sink.key for sink in sinks.opened] == list(manifest.items)
    assert len(data) == 13 + len(manifest.canonical()) + 64 + sum(map(len, envelopes))


def test_inbound_round_trip_with_many_items() -> None:
    envelopes = [fake_envelope(i) for i in range(500)]
    manifest, sinks = _read_inbound(_inbound_bundle(envelopes))
    assert len(manifest.items) == 500
    assert sinks.contents == envelopes
    assert manifest.total_size == 500 * SMALLEST


def test_large_envelope_is_streamed_in_bounded_pieces() -> None:
    big = envelope(bytes(5 * 1024 * 1024 + 3), Kind.FILE)
    assert len(big) > 5 * PIECE
    manifest, sinks = _read_inbound(_inbound_bundle([envelope(b"small"), big]))
    assert sinks.opened[1].data == big
    assert max(len(part) for part in sinks.opened[1].parts) <= PIECE
    assert len(sinks.opened[1].parts) >= 5
    assert manifest.items[1].size == len(big)


def test_signed_block_round_trip() -> None:
    manifest = inbound_manifest([fake_envelope(1), fake_envelope(2)])
    block = sign_inbound_manifest(manifest, SERVER)
    (length,) = struct.unpack(">I", block[:4])
    assert block[4 : 4 + length] == manifest.canonical().encode()
    assert len(block) == 4 + length + 64
    assert parse_signed_inbound_manifest(block, SERVER.public.key) == manifest
    with pytest.raises(FormatError, match="after the signature"):
        parse_signed_inbound_manifest(block + b"\x00", SERVER.public.key)
    with pytest.raises(FormatError, match="signature"):
        parse_signed_inbound_manifest(block[:-1], SERVER.public.key)
    with pytest.raises(SignatureError):
        parse_signed_inbound_manifest(block, OTHER_SERVER.public.key)


def test_manifest_json_follows_section_10_2() -> None:
    data = fake_envelope(9)
    manifest = inbound_manifest([data])
    assert json.loads(manifest.canonical()) == {
        "type": "postern-inbound-manifest",
        "version": 1,
        "server_key": b64(SERVER.public.key),
        "keyring_serial": SERIAL,
        "made": "2026-11-24",
        "items": [
            {
                "id": "1",
                "source_id": manifest.items[0].source_id.hex(),
                "reply_public_key": b64(REPLY_PUBLIC),
                "kind": "message",
                "size": SMALLEST,
                "sha256": hashlib.sha256(data).hexdigest(),
                "day": "2026-11-20",
            }
        ],
    }


def test_sign_inbound_manifest_refuses_another_key() -> None:
    manifest = inbound_manifest([])
    with pytest.raises(SignatureError):
        sign_inbound_manifest(manifest, OTHER_SERVER)
    as_signing = PrivateKey(KeyKind.SIGNING, SERVER.secret, "not a server key")
    with pytest.raises(SignatureError):
        sign_inbound_manifest(manifest, as_signing)


def test_write_inbound_bundle_checks_the_block_framing() -> None:
    block = sign_inbound_manifest(inbound_manifest([]), SERVER)
    with pytest.raises(FormatError):
        write_inbound_bundle(io.BytesIO(), block[:-3], [])


def test_outbound_round_trip() -> None:
    replies = [(b"\x01" * 16, envelope(b"hello", Kind.REPLY)), (b"\x02" * 16, fake_envelope(3))]
    deletions = [
        Deletion("item", id="12"),
        Deletion("source_data", source_id=b"\x03" * 16),
        Deletion("source", source_id=b"\x04" * 16),
    ]
    out = io.BytesIO()
    written = write_outbound_bundle(
        out,
        signing_key=ALICE,
        made=MADE,
        replies=replies,
        deletions=deletions,
        acknowledged=["1", "2", "12"],
    )
    assert out.getvalue().startswith(OUTBOUND_MAGIC + b"\x01")
    assert written.signed_by == ALICE.key_id
    assert len(written.bundle_id) == 16
    sinks = Sinks()
    read = read_outbound_bundle(stream(out.getvalue()), SIGNING_KEYS, sinks)
    assert read == written
    assert sinks.contents == [data for _, data in replies]
    assert read.replies[0] == OutboundReply(
        b"\x01" * 16, len(replies[0][1]), hashlib.sha256(replies[0][1]).digest()
    )
    assert read.deletions == tuple(deletions)
    assert read.acknowledged == ("1", "2", "12")
    assert json.loads(read.canonical())["deletions"] == [
        {"scope": "item", "id": "12"},
        {"scope": "source_data", "source_id": "03" * 16},
        {"scope": "source", "source_id": "04" * 16},
    ]


def test_outbound_round_trip_empty_and_fresh_ids() -> None:
    def write() -> tuple[bytes, OutboundManifest]:
        out = io.BytesIO()
        manifest = write_outbound_bundle(
            out, signing_key=BOB, made=MADE, replies=[], deletions=[], acknowledged=[]
        )
        return out.getvalue(), manifest

    (first, one), (_, two) = write(), write()
    assert one.bundle_id != two.bundle_id
    assert read_outbound_bundle(stream(first), SIGNING_KEYS, Sinks()) == one


def test_outbound_bundle_id_can_be_given() -> None:
    out = io.BytesIO()
    manifest = write_outbound_bundle(
        out,
        signing_key=ALICE,
        made=MADE,
        replies=[],
        deletions=[],
        acknowledged=[],
        bundle_id=b"\x07" * 16,
    )
    assert manifest.bundle_id == b"\x07" * 16
    assert b'"bundle_id":"' + b"07" * 16 + b'"' in out.getvalue()


def test_write_outbound_bundle_needs_a_signing_key() -> None:
    with pytest.raises(SignatureError):
        write_outbound_bundle(
            io.BytesIO(), signing_key=SERVER, made=MADE, replies=[], deletions=[], acknowledged=[]
        )


@pytest.mark.parametrize(
    "size",
    [SMALLEST, 58 + 96 * 2 + 1040, 58 + 96 * 32 + 1040, 154 + 65552 + 2048 + 16],
)
def test_valid_envelope_sizes(size: int) -> None:
    assert valid_envelope_size(size)


@pytest.mark.parametrize(
    "size", [0, 1, -1, SMALLEST - 1, SMALLEST + 1, SMALLEST + 95, 2**41, 2**40 + 1]
)
def test_invalid_envelope_sizes(size: int) -> None:
    assert not valid_envelope_size(size)


# == the corpus of malicious inbound bundles ================================================

ENVELOPES = [fake_envelope(1), fake_envelope(2, 58 + 96 * 3 + 2064)]
GOOD = _inbound_bundle(ENVELOPES)
GOOD_TEXT = inbound_manifest(ENVELOPES).canonical()
MANIFEST_END = 13 + len(GOOD_TEXT)


def _with_items(*changes: dict[str, Any], envelopes: Sequence[bytes] = ENVELOPES) -> bytes:
    """A bundle whose manifest items are changed, signed by the server all the same."""
    manifest = inbound_json(envelopes)
    for item, change in zip(manifest["items"], changes, strict=False):
        item.update(change)
    return raw_bundle(manifest, SERVER, envelopes)


def _with_manifest(**change: Any) -> bytes:
    manifest = inbound_json(ENVELOPES)
    manifest.update(change)
    return raw_bundle(manifest, SERVER, ENVELOPES)


def _without(name: str) -> bytes:
    manifest = inbound_json(ENVELOPES)
    del manifest[name]
    return raw_bundle(manifest, SERVER, ENVELOPES)


def _without_item_member(name: str) -> bytes:
    manifest = inbound_json(ENVELOPES)
    del manifest["items"][0][name]
    return raw_bundle(manifest, SERVER, ENVELOPES)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def _max_envelope_size() -> int:
    padded = 2**40 - 2**33  # a Padmé value just below 2^40
    return 58 + 96 + padded + 16 * (padded // 65536)


BIG = _max_envelope_size()
NOT_CANONICAL = json.dumps(inbound_json(ENVELOPES), indent=1)

INBOUND_CORPUS: list[tuple[str, bytes, type[Exception]]] = [
    ("empty file", b"", FormatError),
    ("bad magic", b"PSTRNBOX" + GOOD[8:], FormatError),
    ("an envelope's magic", b"PSTRNENV" + GOOD[8:], FormatError),
    ("an outbound bundle", OUTBOUND_MAGIC + GOOD[8:], FormatError),
    ("short magic", INBOUND_MAGIC[:5], FormatError),
    ("unknown version", GOOD[:8] + b"\x02" + GOOD[9:], UnsupportedVersion),
    ("version zero", GOOD[:8] + b"\x00" + GOOD[9:], UnsupportedVersion),
    ("no version", GOOD[:8], FormatError),
    ("truncated length", GOOD[:11], FormatError),
    ("M = 0", GOOD[:9] + struct.pack(">I", 0) + GOOD[13:], FormatError),
    ("M = 1", GOOD[:9] + struct.pack(">I", 1) + GOOD[13:], FormatError),
    ("M over 16 MiB", GOOD[:9] + struct.pack(">I", 16 * 1024 * 1024 + 1) + GOOD[13:], FormatError),
    ("M = 2^32 - 1", GOOD[:9] + b"\xff\xff\xff\xff" + GOOD[13:], FormatError),
    ("M longer than the file", GOOD[:9] + struct.pack(">I", len(GOOD)) + GOOD[13:], FormatError),
    ("M shorter than the manifest", GOOD[:9] + struct.pack(">I", 40) + GOOD[13:], SignatureError),
    ("signed by another key", raw_bundle(GOOD_TEXT, OTHER_SERVER, ENVELOPES), SignatureError),
    ("signed by a journalist", raw_bundle(GOOD_TEXT, ALICE, ENVELOPES), SignatureError),
    ("signed with the outbound label",
     INBOUND_MAGIC + raw_bundle(GOOD_TEXT, SERVER, ENVELOPES, inbound=False)[8:],
     SignatureError),
    ("flipped bit in the manifest", _flip(GOOD, 40), SignatureError),
    ("flipped bit in the last manifest byte", _flip(GOOD, MANIFEST_END - 1), SignatureError),
    ("flipped bit in the signature", _flip(GOOD, MANIFEST_END + 5), SignatureError),
    ("non-canonical manifest", raw_bundle(NOT_CANONICAL, SERVER, ENVELOPES), FormatError),
    ("manifest with a trailing newline", raw_bundle(GOOD_TEXT + "\n", SERVER, ENVELOPES),
     FormatError),
    ("manifest not JSON", raw_bundle("{not json", SERVER, ENVELOPES), FormatError),
    ("manifest not UTF-8", raw_bundle(b'{"\xff"}', SERVER, ENVELOPES), FormatError),
    ("manifest a list", raw_bundle("[]", SERVER, ENVELOPES), FormatError),
    ("manifest {}", raw_bundle("{}", SERVER, ENVELOPES), FormatError),
    ("duplicate member names",
     raw_bundle(GOOD_TEXT[:-1] + ',"type":"postern-inbound-manifest"}', SERVER, ENVELOPES),
     FormatError),
    ("wrong type", _with_manifest(type="postern-outbound-manifest"), FormatError),
    ("manifest version 2", _with_manifest(version=2), UnsupportedVersion),
    ("manifest version '1'", _with_manifest(version="1"), UnsupportedVersion),
    ("no manifest version", _without("version"), UnsupportedVersion),
    ("unknown member", _with_manifest(comment="hello"), FormatError),
    ("missing member", _without("keyring_serial"), FormatError),
    ("unknown item member", _with_items({"name": "../../etc/passwd"}), FormatError),
    ("missing item member", _without_item_member("day"), FormatError),
    ("server_key of another server", _with_manifest(server_key=b64(OTHER_SERVER.public.key)),
     FormatError),
    ("server_key not base64", _with_manifest(server_key="*" * 44), FormatError),
    ("keyring_serial 0", _with_manifest(keyring_serial=0), FormatError),
    ("keyring_serial a string", _with_manifest(keyring_serial="7"), FormatError),
    ("made not a date", _with_manifest(made="2026-02-30"), FormatError),
    ("made with a time", _with_manifest(made="2026-02-03T00:00:00Z"), FormatError),
    ("items not a list", _with_manifest(items={}), FormatError),
    ("item not an object", _with_manifest(items=["1"]), FormatError),
    ("duplicate item ids", _with_items({"id": "1"}, {"id": "1"}), FormatError),
    ("id with ../", _with_items({"id": "../1"}), FormatError),
    ("id with a slash", _with_items({"id": "1/2"}), FormatError),
    ("id empty", _with_items({"id": ""}), FormatError),
    ("id with a leading zero", _with_items({"id": "01"}), FormatError),
    ("id of 21 digits", _with_items({"id": "1" * 21}), FormatError),
    ("id with non-ASCII digits", _with_items({"id": "\u0661"}), FormatError),
    ("id with a newline", _with_items({"id": "1\n"}), FormatError),
    ("id an integer", _with_items({"id": 1}), FormatError),
    ("size 2^41", _with_items({"size": 2**41}), FormatError),
    ("size just over 2^40", _with_items({"size": 2**40 + 1}), FormatError),
    ("size negative", _with_items({"size": -1194}), FormatError),
    ("size a fraction", raw_bundle(GOOD_TEXT.replace('"size":1194', '"size":1194.0'), SERVER,
                                   ENVELOPES), FormatError),
    ("size an exponent", raw_bundle(GOOD_TEXT.replace('"size":1194', '"size":1.194e3'), SERVER,
                                    ENVELOPES), FormatError),
    ("size a string", _with_items({"size": "1194"}), FormatError),
    ("size zero", _with_items({"size": 0}), FormatError),
    ("size not an envelope length", _with_items({"size": 1195}), FormatError),
    ("size smaller than a header", _with_items({"size": 100}), FormatError),
    ("sizes adding up to more than 2^44",
     raw_bundle({**inbound_json([]), "items": [
         {**inbound_json(ENVELOPES)["items"][0], "id": str(i), "size": BIG} for i in range(17)
     ]}, SERVER), FormatError),
    ("kind reply", _with_items({"kind": "reply"}), FormatError),
    ("source_id upper-case hex", _with_items({"source_id": "AB" * 16}), FormatError),
    ("source_id too short", _with_items({"source_id": "ab" * 15}), FormatError),
    ("reply key of 31 bytes", _with_items({"reply_public_key": b64(bytes(31))}), FormatError),
    ("sha256 not hex", _with_items({"sha256": "g" * 64}), FormatError),
    ("day not a date", _with_items({"day": "2026-13-01"}), FormatError),
    ("wrong SHA-256 of the first envelope",
     _with_items({"sha256": hashlib.sha256(b"other").hexdigest()}), FormatError),
    ("wrong SHA-256 of the last envelope",
     _with_items({}, {"sha256": hashlib.sha256(b"other").hexdigest()}), FormatError),
    ("flipped bit in the first envelope", _flip(GOOD, MANIFEST_END + 64 + 100), FormatError),
    ("flipped bit in the last byte", _flip(GOOD, len(GOOD) - 1), FormatError),
    ("envelopes swapped", GOOD[: MANIFEST_END + 64] + ENVELOPES[1] + ENVELOPES[0], FormatError),
    ("truncated inside the manifest", GOOD[:60], FormatError),
    ("truncated at the end of the manifest", GOOD[:MANIFEST_END], FormatError),
    ("truncated inside the signature", GOOD[: MANIFEST_END + 30], FormatError),
    ("truncated before the envelopes", GOOD[: MANIFEST_END + 64], FormatError),
    ("truncated inside the first envelope", GOOD[: MANIFEST_END + 64 + 500], FormatError),
    ("truncated between envelopes", GOOD[: MANIFEST_END + 64 + len(ENVELOPES[0])], FormatError),
    ("truncated inside the last envelope", GOOD[:-1], FormatError),
    ("trailing garbage", GOOD + b"garbage", FormatError),
    ("one trailing byte", GOOD + b"\x00", FormatError),
    ("a third envelope not in the manifest", GOOD + ENVELOPES[0], FormatError),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "error"),
    [pytest.param(data, error, id=name) for name, data, error in INBOUND_CORPUS],
)
def test_malicious_inbound_bundle_is_refused(data: bytes, error: type[Exception]) -> None:
    sinks = Sinks()
    with pytest.raises(error) as raised:
        read_inbound_bundle(stream(data), SERVER.public.key, sinks)
    if error is FormatError:
        assert type(raised.value) in (FormatError,)
    sinks.assert_nothing_committed()


def test_the_corpus_base_is_valid() -> None:
    manifest, sinks = _read_inbound(GOOD)
    assert sinks.contents == ENVELOPES
    assert manifest.canonical() == GOOD_TEXT
    # The corpus entries that change one item start from a bundle that reads fine.
    _read_inbound(_with_items({}))


def test_envelopes_are_committed_only_after_the_end_of_the_file() -> None:
    sinks = Sinks()
    with pytest.raises(FormatError, match="trailing"):
        read_inbound_bundle(stream(GOOD + b"x"), SERVER.public.key, sinks)
    assert len(sinks.opened) == 2
    assert [sink.data for sink in sinks.opened] == ENVELOPES  # every byte arrived, verified
    sinks.assert_nothing_committed()


def test_a_failing_sink_aborts_every_sink() -> None:
    class DiskFull(Sinks):
        def __call__(self, key: InboundItem | OutboundReply) -> MemorySink:
            sink = super().__call__(key)
            if len(self.opened) == 2:
                sink.write = self._fail  # type: ignore[method-assign]
            return sink

        def _fail(self, data: bytes, /) -> int:
            raise OSError(28, "No space left on device")

    sinks = DiskFull()
    with pytest.raises(OSError, match="No space"):
        read_inbound_bundle(stream(GOOD), SERVER.public.key, sinks)
    sinks.assert_nothing_committed()


def test_a_failing_open_sink_aborts_the_sinks_already_open() -> None:
    sinks = Sinks()

    def open_sink(item: InboundItem) -> MemorySink:
        if item.id == "2":
            raise OSError("cannot create the file")
        return sinks(item)

    with pytest.raises(OSError, match="cannot create"):
        read_inbound_bundle(stream(GOOD), SERVER.public.key, open_sink)
    assert len(sinks.opened) == 1
    sinks.assert_nothing_committed()


def test_an_abort_that_fails_does_not_stop_the_others() -> None:
    sinks = Sinks()
    aborted: list[str] = []

    def open_sink(item: InboundItem) -> MemorySink:
        sink = sinks(item)

        def abort() -> None:
            aborted.append(item.id)
            if item.id == "1":
                raise OSError("abort failed")

        sink.abort = abort  # type: ignore[method-assign]
        return sink

    with pytest.raises(FormatError, match="trailing") as raised:
        read_inbound_bundle(stream(GOOD + b"!"), SERVER.public.key, open_sink)
    assert aborted == ["1", "2"]
    assert raised.value.__notes__ == [
        "aborting an envelope sink also failed: OSError('abort failed')"
    ]


def test_the_reader_takes_nothing_but_the_manifest_fields() -> None:
    """A 'name' smuggled into an item is refused, so no path ever comes from the data."""
    with pytest.raises(FormatError, match="unexpected name"):
        read_inbound_bundle(stream(_with_items({"name": "../x"})), SERVER.public.key, Sinks())


def test_item_and_manifest_values_are_checked() -> None:
    data = fake_envelope(1)
    good = item_for("5", data)
    for change in (
        {"id": "05"},
        {"id": "a"},
        {"source_id": bytes(15)},
        {"reply_public_key": bytes(33)},
        {"kind": "reply"},
        {"size": 1195},
        {"size": True},
        {"sha256": bytes(31)},
        {"day": datetime(2026, 1, 1, tzinfo=UTC)},
        {"day": "2026-01-01"},
    ):
        with pytest.raises(FormatError):
            dataclasses.replace(good, **change)
    with pytest.raises(FormatError, match="twice"):
        InboundManifest(SERVER.public.key, 1, MADE, (good, good))
    with pytest.raises(FormatError):
        InboundManifest(SERVER.public.key, 0, MADE, ())
    with pytest.raises(FormatError):
        InboundManifest(SERVER.public.key[:31], 1, MADE, ())


def test_at_most_100000_items() -> None:
    items = tuple(item_for(str(i), fake_envelope(0)) for i in range(MAX_ITEMS + 1))
    with pytest.raises(FormatError, match="at most"):
        InboundManifest(SERVER.public.key, 1, MADE, items)
    assert len(InboundManifest(SERVER.public.key, 1, MADE, items[:-1]).items) == MAX_ITEMS


# == the corpus of malicious outbound bundles ===============================================

REPLIES = [fake_envelope(5), fake_envelope(6)]
OUT_GOOD_JSON = outbound_json(
    REPLIES, deletions=[{"scope": "item", "id": "3"}], acknowledged=["1", "2"]
)
OUT_GOOD = raw_bundle(OUT_GOOD_JSON, ALICE, REPLIES, inbound=False)
OUT_MANIFEST_END = 13 + len(canonical_json(OUT_GOOD_JSON))
# A valid envelope length just over 16 MiB: 1 recipient, S = 16 MiB + 2^19.
OVERSIZED_REPLY = 154 + (16 * 2**20 + 2**19) + 16 * ((16 * 2**20 + 2**19) // 65536)


def _outbound(signer: PrivateKey = ALICE, **change: Any) -> bytes:
    """The good outbound bundle with manifest members changed, signed by ``signer``."""
    manifest = {**OUT_GOOD_JSON, **change}
    return raw_bundle(manifest, signer, REPLIES, inbound=False)


def _many_replies(count: int) -> dict[str, Any]:
    reply = {"source_id": "ab" * 16, "size": SMALLEST, "sha256": "cd" * 32}
    return {**OUT_GOOD_JSON, "replies": [dict(reply, source_id=f"{i:032x}") for i in range(count)]}


OUTBOUND_CORPUS: list[tuple[str, bytes, type[Exception]]] = [
    ("bad magic", INBOUND_MAGIC + OUT_GOOD[8:], FormatError),
    ("unknown version", OUT_GOOD[:8] + b"\x09" + OUT_GOOD[9:], UnsupportedVersion),
    ("M = 1", OUT_GOOD[:9] + struct.pack(">I", 1) + OUT_GOOD[13:], FormatError),
    ("M longer than the file", OUT_GOOD[:9] + struct.pack(">I", 10**6) + OUT_GOOD[13:],
     FormatError),
    ("signed_by not among the keys",
     _outbound(PrivateKey(KeyKind.SIGNING, secret("mallory"), "Mallory"),
               signed_by=PrivateKey(KeyKind.SIGNING, secret("mallory"), "M").key_id.hex()),
     SignatureError),
    ("signed_by Bob, signed by Alice", _outbound(signed_by=BOB.key_id.hex()), SignatureError),
    ("signed_by missing", raw_bundle({k: v for k, v in OUT_GOOD_JSON.items() if k != "signed_by"},
                                     ALICE, REPLIES, inbound=False), SignatureError),
    ("signed_by not hex", _outbound(signed_by="zz" * 16), SignatureError),
    ("manifest not JSON", raw_bundle("{[", ALICE, REPLIES, inbound=False), SignatureError),
    ("signed by the server", _outbound(SERVER), SignatureError),
    ("flipped bit in the manifest's JSON", _flip(OUT_GOOD, 30), SignatureError),
    ("flipped bit in the bundle_id", _flip(OUT_GOOD, OUT_GOOD.index(b'"bundle_id":"') + 14),
     SignatureError),
    ("flipped bit in the signature", _flip(OUT_GOOD, OUT_MANIFEST_END + 1), SignatureError),
    ("inbound label", OUTBOUND_MAGIC + raw_bundle(OUT_GOOD_JSON, ALICE, REPLIES)[8:],
     SignatureError),
    ("non-canonical", raw_bundle(json.dumps(OUT_GOOD_JSON), ALICE, REPLIES, inbound=False),
     FormatError),
    ("wrong type", _outbound(type="postern-inbound-manifest"), FormatError),
    ("version 2", _outbound(version=2), UnsupportedVersion),
    ("unknown member", _outbound(note="x"), FormatError),
    ("bundle_id too short", _outbound(bundle_id="00" * 15), FormatError),
    ("made invalid", _outbound(made="2026-00-10"), FormatError),
    ("duplicate replies",
     raw_bundle(outbound_json([REPLIES[0]] * 2), ALICE, [REPLIES[0]] * 2, inbound=False),
     FormatError),
    ("duplicate deletions", _outbound(deletions=[{"scope": "item", "id": "3"}] * 2), FormatError),
    ("duplicate source deletions",
     _outbound(deletions=[{"scope": "source", "source_id": "ab" * 16}] * 2), FormatError),
    ("duplicate acknowledgements", _outbound(acknowledged=["1", "1"]), FormatError),
    ("acknowledged ../1", _outbound(acknowledged=["../1"]), FormatError),
    ("deletion of an unknown scope", _outbound(deletions=[{"scope": "all"}]), FormatError),
    ("item deletion with a source_id",
     _outbound(deletions=[{"scope": "item", "id": "3", "source_id": "ab" * 16}]), FormatError),
    ("source deletion with an id", _outbound(deletions=[{"scope": "source", "id": "3"}]),
     FormatError),
    ("item deletion id with a slash", _outbound(deletions=[{"scope": "item", "id": "3/4"}]),
     FormatError),
    ("too many replies", raw_bundle(_many_replies(MAX_REPLIES + 1), ALICE, inbound=False),
     FormatError),
    ("oversized reply",
     _outbound(replies=[{"source_id": "ab" * 16, "size": OVERSIZED_REPLY, "sha256": "cd" * 32}]),
     FormatError),
    ("reply size not an envelope length",
     _outbound(replies=[{"source_id": "ab" * 16, "size": 5000, "sha256": "cd" * 32}]),
     FormatError),
    ("wrong reply SHA-256", _outbound(replies=[{**OUT_GOOD_JSON["replies"][0],
                                                "sha256": "00" * 32},
                                               OUT_GOOD_JSON["replies"][1]]), FormatError),
    ("truncated inside a reply", OUT_GOOD[:-10], FormatError),
    ("trailing garbage", OUT_GOOD + b"\n", FormatError),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "error"),
    [pytest.param(data, error, id=name) for name, data, error in OUTBOUND_CORPUS],
)
def test_malicious_outbound_bundle_is_refused(data: bytes, error: type[Exception]) -> None:
    sinks = Sinks()
    with pytest.raises(error) as raised:
        read_outbound_bundle(stream(data), SIGNING_KEYS, sinks)
    if error is FormatError:
        assert type(raised.value) is FormatError
    sinks.assert_nothing_committed()


def test_the_outbound_corpus_base_is_valid() -> None:
    sinks = Sinks()
    manifest = read_outbound_bundle(stream(OUT_GOOD), SIGNING_KEYS, sinks)
    assert sinks.contents == REPLIES
    assert manifest.acknowledged == ("1", "2")
    assert read_outbound_bundle(stream(_outbound()), SIGNING_KEYS, Sinks()) == manifest


def test_a_key_map_entry_that_does_not_match_its_id_is_refused() -> None:
    with pytest.raises(SignatureError, match="key id"):
        read_outbound_bundle(stream(OUT_GOOD), {ALICE.key_id: BOB.public.key}, Sinks())
    with pytest.raises(SignatureError):
        read_outbound_bundle(stream(OUT_GOOD), {}, Sinks())


def test_writer_refuses_what_the_reader_would_refuse() -> None:
    def write(**change: Any) -> None:
        arguments: dict[str, Any] = {
            "signing_key": ALICE,
            "made": MADE,
            "replies": [],
            "deletions": [],
            "acknowledged": [],
        }
        arguments.update(change)
        write_outbound_bundle(io.BytesIO(), **arguments)

    with pytest.raises(FormatError, match="at most"):
        write(replies=[(b"\x01" * 16, bytes(OVERSIZED_REPLY))])
    with pytest.raises(FormatError):
        write(replies=[(b"\x01" * 16, b"not an envelope")])
    with pytest.raises(FormatError, match="twice"):
        write(acknowledged=["1", "1"])
    with pytest.raises(FormatError, match="twice"):
        write(deletions=[Deletion("item", id="1"), Deletion("item", id="1")])
    with pytest.raises(FormatError):
        write(acknowledged=["01"])
    with pytest.raises(FormatError):
        write(bundle_id=b"short")
    with pytest.raises(FormatError, match="at most"):
        write(replies=[(i.to_bytes(16, "big"), fake_envelope(0)) for i in range(MAX_REPLIES + 1)])
    bad_deletions: list[dict[str, Any]] = [
        {"scope": "item"},
        {"scope": "item", "id": "1", "source_id": bytes(16)},
        {"scope": "source", "id": "1"},
        {"scope": "source_data", "source_id": bytes(15)},
        {"scope": "everything", "id": "1"},
    ]
    for fields in bad_deletions:
        with pytest.raises(FormatError):
            Deletion(**fields)


# == bundle files ===========================================================================


def test_open_bundle_file_reads_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "in.bundle"
    path.write_bytes(GOOD)
    with open_bundle_file(path) as src:
        manifest = read_inbound_bundle(src, SERVER.public.key, Sinks())
    assert manifest.canonical() == GOOD_TEXT


def test_open_bundle_file_refuses_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "real.bundle"
    target.write_bytes(GOOD)
    link = tmp_path / "link.bundle"
    link.symlink_to(target)
    with pytest.raises(FormatError, match="symbolic link"):
        open_bundle_file(link)
    dangling = tmp_path / "dangling.bundle"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(FormatError, match="symbolic link"):
        open_bundle_file(dangling)


@pytest.mark.timeout(10)
def test_open_bundle_file_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.bundle"
    os.mkfifo(fifo)
    with pytest.raises(FormatError, match="not a regular file"):
        open_bundle_file(fifo)


def test_open_bundle_file_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="not a regular file"):
        open_bundle_file(tmp_path)


def test_open_bundle_file_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_bundle_file(tmp_path / "missing.bundle")


def test_a_failing_commit_aborts_the_sinks_not_yet_committed() -> None:
    sinks = Sinks()
    three = [fake_envelope(1), fake_envelope(2), fake_envelope(3)]

    def open_sink(item: InboundItem) -> MemorySink:
        sink = sinks(item)
        if item.id == "2":

            def commit() -> None:
                raise OSError("rename failed")

            sink.commit = commit  # type: ignore[method-assign]
        return sink

    with pytest.raises(OSError, match="rename failed"):
        read_inbound_bundle(stream(_inbound_bundle(three)), SERVER.public.key, open_sink)
    assert [(s.committed, s.aborted) for s in sinks.opened] == [
        (True, False),
        (False, True),
        (False, True),
    ]
