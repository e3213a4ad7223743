"""A corpus of malicious and broken inbound bundles: each is refused with a clear error,
nothing is imported, the envelopes directory and the ledger are unchanged.

Bundles carry no compression (docs/format.md section 10: envelopes are stored as sealed,
one after the other), so there is no decompression bomb to try; the nearest thing, a
manifest claiming enormous envelopes, is in the corpus and is refused before anything is
written. The corpus is generated here with the crypto core's writers and a server key;
hand-made manifests are signed with the real key, so only the property under test is wrong.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from crypto import Kind, Metadata, PrivateKey, envelope_length
from crypto._encoding import b64encode, canonical_json
from crypto.bundle import INBOUND_LABEL, INBOUND_MAGIC
from journalist_ui import ledger
from journalist_ui.errors import StationError
from journalist_ui.importer import import_bundle
from journalist_ui.store.models import Import, Item, LedgerRecord, Source
from journalist_ui.unlock import Unlocked
from tests.journalist_ui.storekit import (
    Entry,
    FakeSource,
    make_home,
    message,
    open_home,
    pin,
    server_key,
    write_bundle,
)

TODAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


@dataclass
class Kit:
    home: Path
    dir: Path
    server: PrivateKey
    unlocked: Unlocked
    source: FakeSource

    def entry(self, item_id: str, text: str = "hello") -> Entry:
        return Entry(item_id, self.source, "message", message(self.home, text))


def raw_bundle(
    path: Path, key: PrivateKey, items: list[dict[str, Any]], bodies: list[bytes]
) -> Path:
    """A bundle from a hand-made manifest, signed with the real server key."""
    manifest = {
        "type": "postern-inbound-manifest",
        "version": 1,
        "server_key": b64encode(key.public.key),
        "keyring_serial": 1,
        "made": "2026-11-21",
        "items": items,
    }
    text = canonical_json(manifest).encode("utf-8")
    signature = key.sign(INBOUND_LABEL + text)
    path.write_bytes(
        INBOUND_MAGIC + b"\x01" + struct.pack(">I", len(text)) + text + signature + b"".join(bodies)
    )
    return path


def item_json(entry: Entry, **changes: Any) -> dict[str, Any]:
    obj = entry.item().to_json()
    obj.update(changes)
    return obj


def bad_signature(kit: Kit) -> Path:
    path = write_bundle(kit.dir / "b", kit.server, [kit.entry("100")])
    data = bytearray(path.read_bytes())
    (length,) = struct.unpack(">I", data[9:13])
    data[13 + length + 5] ^= 1
    path.write_bytes(bytes(data))
    return path


def wrong_server_key(kit: Kit) -> Path:
    return write_bundle(kit.dir / "b", server_key(), [kit.entry("100")])


def traversal_item_id(kit: Kit) -> Path:
    entry = kit.entry("100")
    return raw_bundle(
        kit.dir / "b", kit.server, [item_json(entry, id="../../etc/passwd")], [entry.envelope]
    )


def traversal_item_id_with_digits(kit: Kit) -> Path:
    entry = kit.entry("100")
    return raw_bundle(kit.dir / "b", kit.server, [item_json(entry, id="1/../2")], [entry.envelope])


def symlink(kit: Kit) -> Path:
    target = write_bundle(kit.dir / "real.bundle", kit.server, [kit.entry("100")])
    link = kit.dir / "link.bundle"
    link.symlink_to(target)
    return link


def directory(kit: Kit) -> Path:
    path = kit.dir / "dir.bundle"
    path.mkdir()
    return path


def fifo(kit: Kit) -> Path:
    path = kit.dir / "fifo.bundle"
    os.mkfifo(path)
    return path


def absurd_size(kit: Kit) -> Path:
    entry = kit.entry("100")
    huge = envelope_length(1, Metadata(Kind.MESSAGE, 1 << 39))
    return raw_bundle(kit.dir / "b", kit.server, [item_json(entry, size=huge)], [entry.envelope])


def size_beyond_the_format(kit: Kit) -> Path:
    entry = kit.entry("100")
    return raw_bundle(kit.dir / "b", kit.server, [item_json(entry, size=1 << 41)], [entry.envelope])


def truncated(kit: Kit) -> Path:
    path = write_bundle(kit.dir / "b", kit.server, [kit.entry("100"), kit.entry("101")])
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    return path


def truncated_in_the_manifest(kit: Kit) -> Path:
    path = write_bundle(kit.dir / "b", kit.server, [kit.entry("100")])
    path.write_bytes(path.read_bytes()[:40])
    return path


def trailing_data(kit: Kit) -> Path:
    return write_bundle(kit.dir / "b", kit.server, [kit.entry("100")], trailing=b"\0")


def duplicated_ids(kit: Kit) -> Path:
    one, two = kit.entry("100", "one"), kit.entry("100", "two")
    return raw_bundle(
        kit.dir / "b", kit.server, [item_json(one), item_json(two)], [one.envelope, two.envelope]
    )


def overlapping_item_with_other_content(kit: Kit) -> Path:
    # Item 1 was imported by the baseline bundle; this one says item 1 is something else.
    return write_bundle(kit.dir / "b", kit.server, [kit.entry("101"), kit.entry("1", "forged")])


def overlapping_item_of_another_source(kit: Kit) -> Path:
    stolen = Entry("1", FakeSource(), "message", kit.baseline_envelope)  # type: ignore[attr-defined]
    return write_bundle(kit.dir / "b", kit.server, [stolen])


def envelope_hash_mismatch(kit: Kit) -> Path:
    first, second = kit.entry("100"), kit.entry("101")
    body = bytearray(second.envelope)
    body[len(body) // 2] ^= 1
    return write_bundle(
        kit.dir / "b", kit.server, [first, second], envelopes=[first.envelope, bytes(body)]
    )


def swapped_envelopes(kit: Kit) -> Path:
    first, second = kit.entry("100", "same length"), kit.entry("101", "same length")
    return write_bundle(
        kit.dir / "b", kit.server, [first, second], envelopes=[second.envelope, first.envelope]
    )


def empty_file(kit: Kit) -> Path:
    path = kit.dir / "b"
    path.write_bytes(b"")
    return path


def garbage(kit: Kit) -> Path:
    path = kit.dir / "b"
    path.write_bytes(os.urandom(4096))
    return path


def other_version(kit: Kit) -> Path:
    path = write_bundle(kit.dir / "b", kit.server, [kit.entry("100")])
    data = bytearray(path.read_bytes())
    data[8] = 2
    path.write_bytes(bytes(data))
    return path


def absurd_manifest_length(kit: Kit) -> Path:
    path = kit.dir / "b"
    path.write_bytes(INBOUND_MAGIC + b"\x01" + struct.pack(">I", 0xFFFFFFFF) + b"{}")
    return path


def missing(kit: Kit) -> Path:
    return kit.dir / "nothing-here.bundle"


CORPUS: dict[str, tuple[Callable[[Kit], Path], str]] = {
    "bad signature": (bad_signature, "not signed by the pinned server key"),
    "wrong server key": (wrong_server_key, "not signed by the pinned server key"),
    "item id with ../": (traversal_item_id, "an item id is 1 to 20 decimal digits"),
    "item id with / and digits": (traversal_item_id_with_digits, "an item id is 1 to 20"),
    "bundle path is a symlink": (symlink, "is a symbolic link"),
    "bundle is a directory": (directory, "not a regular file"),
    "bundle is a FIFO": (fifo, "not a regular file"),
    "item claiming ~2^40 bytes": (absurd_size, r"claims \d+ bytes but only \d+ bytes remain"),
    "item beyond 2^40 bytes": (size_beyond_the_format, "not a valid inbound bundle"),
    "truncated envelope": (truncated, r"item 101 claims \d+ bytes but only \d+ bytes remain"),
    "truncated manifest": (truncated_in_the_manifest, "truncated"),
    "trailing data": (trailing_data, "trailing data"),
    "duplicated item ids": (duplicated_ids, "appears twice"),
    "overlapping item, other content": (
        overlapping_item_with_other_content,
        "item 1 of this bundle differs from the item 1 already imported",
    ),
    "overlapping item, other source": (
        overlapping_item_of_another_source,
        "item 1 of this bundle differs",
    ),
    "envelope SHA-256 mismatch": (envelope_hash_mismatch, "does not match its SHA-256"),
    "envelopes swapped": (swapped_envelopes, "does not match its SHA-256"),
    "empty file": (empty_file, "bad magic"),
    "random bytes": (garbage, "bad magic"),
    "unsupported version": (other_version, "unsupported inbound bundle version 2"),
    "absurd manifest length": (absurd_manifest_length, "manifest length 4294967295 outside"),
    "missing file": (missing, "no such bundle file"),
}


def snapshot(kit: Kit) -> dict[str, Any]:
    with kit.unlocked.store.session() as session:
        rows = {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Source, Item, Import, LedgerRecord)
        }
        chain = [r.hash for r in session.scalars(select(LedgerRecord).order_by(LedgerRecord.seq))]
        fts = session.execute(select(func.count()).select_from(_fts())).scalar()
    return {
        "rows": rows,
        "fts": fts,
        "chain": chain,
        "envelopes": sorted(p.name for p in kit.unlocked.layout.envelopes.iterdir()),
        "head": kit.unlocked.layout.ledger_head.read_bytes(),
    }


def _fts() -> Any:
    from sqlalchemy import table

    return table("message_fts")


@pytest.fixture(scope="module")
def base_home(tmp_path_factory):
    """One station home with a pinned server and one imported bundle, copied for each case."""
    root = tmp_path_factory.mktemp("corpus")
    home = make_home(root / "home")
    key = server_key()
    pin(home, key)
    source = FakeSource()
    baseline = Entry("1", source, "message", message(home, "baseline"))
    bundle = write_bundle(root / "baseline.bundle", key, [baseline])
    unlocked = open_home(home)
    try:
        assert import_bundle(unlocked, bundle, today=TODAY, now=NOW).imported == 1
    finally:
        unlocked.lock()
    return home, key, source, baseline.envelope


@pytest.mark.parametrize("case", list(CORPUS))
def test_a_bad_bundle_is_refused_and_changes_nothing(case, base_home, tmp_path):
    import shutil

    source_home, key, source, baseline_envelope = base_home
    home = tmp_path / "home"
    shutil.copytree(source_home, home, symlinks=True)
    work = tmp_path / "media"
    work.mkdir()
    unlocked = open_home(home)
    try:
        kit = Kit(home, work, key, unlocked, source)
        kit.baseline_envelope = baseline_envelope  # type: ignore[attr-defined]
        make, error = CORPUS[case]
        bundle = make(kit)
        before = snapshot(kit)
        with pytest.raises(StationError, match=error) as caught:
            import_bundle(unlocked, bundle, today=TODAY, now=NOW)
        assert "\n" not in str(caught.value)
        assert snapshot(kit) == before
        assert not list(unlocked.layout.envelopes.glob(".import-*"))
        with unlocked.store.session() as session:
            assert ledger.verify(session, unlocked.layout.ledger_head).ok
    finally:
        unlocked.lock()


def test_the_baseline_bundle_itself_imports(base_home, tmp_path):
    """The corpus is refused for what is wrong with it, not because nothing imports."""
    import shutil

    source_home, key, source, _ = base_home
    home = tmp_path / "home"
    shutil.copytree(source_home, home, symlinks=True)
    unlocked = open_home(home)
    try:
        entry = Entry("100", source, "message", message(home, "fine"))
        bundle = write_bundle(tmp_path / "ok.bundle", key, [entry])
        result = import_bundle(unlocked, bundle, today=TODAY, now=NOW)
        assert (result.imported, result.already_present) == (1, 0)
        assert hashlib.sha256(entry.envelope).hexdigest() != ""
    finally:
        unlocked.lock()
