"""journalist_ui.keys: journalists, key rotation, root rotation, transfer clients, rewrap."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

import crypto
from crypto import KeyKind, Kind, load_private_key, seal_bytes, verify_keyring
from journalist_ui import content, keys, ledger, station
from journalist_ui import fs as station_fs
from journalist_ui.errors import StationError
from journalist_ui.importer import import_bundle
from journalist_ui.outbound import queue_reply
from journalist_ui.store.keyfile import open_store_key
from journalist_ui.store.keyfile import reseal_store_key as reseal_store_key_file
from journalist_ui.store.models import Item, LedgerRecord
from journalist_ui.unlock import unlock
from tests.journalist_ui.storekit import Entry, FakeSource, pin, server_key, write_bundle
from tests.support.homes import station_home

NOW = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
MEM = station.MIN_MEMLIMIT
PASSES = {
    keys.ROOT_WHAT: "alice passphrase 1",  # at init, alice's passphrase protects the root
    "journalist alice's keys": "alice passphrase 1",
    "the team root key and journalist alice's keys": "alice passphrase 1",
    "journalist bob's keys": "bob passphrase 22",
    "journalist carol's keys": "carol passphrase 333",
    "the new team root key": "new root passphrase 4444",
}


def ask(what: str) -> str:
    return PASSES[what]


def ask_new(what: str) -> str:
    return PASSES[what]


def ask_after_root_rotation(what: str) -> str:
    return PASSES["the new team root key"] if what == keys.ROOT_WHAT else PASSES[what]


def init_alice(home: Path) -> None:
    station.init_station(home, "alice", ask, now=NOW, memlimit=MEM)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """alice's station, her keys under PASSES (copied: tests/support/homes.py)."""
    return station_home("test_keys-alice", init_alice, tmp_path / "station")


def root_public(home: Path) -> bytes:
    return keys.peek_key_file(station.Layout(home).root_key).key


def outbox_manifest(home: Path, pinned: bytes) -> crypto.Manifest:
    return verify_keyring(station.Layout(home).outbox_keyring.read_bytes(), pinned).manifest


def secrets(home: Path, name: str) -> list[bytes]:
    layout = station.Layout(home)
    return [
        k.secret
        for k in station.load_encryption_keys(layout, name, PASSES[f"journalist {name}'s keys"])
    ]


def test_add_journalist_gives_them_their_own_keys_and_a_new_keyring(home):
    root = root_public(home)
    result = keys.add_journalist(home, "bob", ask, ask_new, now=NOW, memlimit=MEM)
    layout = station.Layout(home)
    assert result.issued.serial == 2
    assert layout.keyring(2).read_bytes() == layout.outbox_keyring.read_bytes()
    manifest = outbox_manifest(home, root)
    assert sorted(e.journalist for e in manifest.recipients) == ["alice", "bob"]
    assert sorted(e.journalist for e in manifest.signing_keys) == ["alice", "bob"]
    assert station.load_station(home).journalists == ("alice", "bob")
    # Bob's keys open with Bob's passphrase, not Alice's.
    data = layout.encryption_key("bob").read_bytes()
    assert load_private_key(data, "bob passphrase 22").kind is KeyKind.ENCRYPTION
    with pytest.raises(crypto.PassphraseError):
        load_private_key(data, "alice passphrase 1")
    assert stat.S_IMODE(layout.journalist_keys("bob").stat().st_mode) == 0o700
    assert stat.S_IMODE(layout.encryption_key("bob").stat().st_mode) == 0o600
    with pytest.raises(StationError, match="already has keys"):
        keys.add_journalist(home, "bob", ask, ask_new, now=NOW, memlimit=MEM)


def test_a_wrong_root_passphrase_changes_nothing(home):
    before = sorted(p.relative_to(home) for p in home.rglob("*"))

    def wrong(what: str) -> str:
        return "not the passphrase" if what == keys.ROOT_WHAT else PASSES[what]

    with pytest.raises(StationError, match="wrong passphrase"):
        keys.add_journalist(home, "bob", wrong, ask_new, now=NOW, memlimit=MEM)
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == before


def test_rotate_key_keeps_the_old_one_retired_and_lists_it(home):
    root = root_public(home)
    old = keys.peek_key_file(station.Layout(home).encryption_key("alice"))
    old_item = seal_bytes(b"before the rotation", [old.key], Kind.MESSAGE)
    result = keys.rotate_encryption_key(home, "alice", ask, now=NOW, memlimit=MEM)
    layout = station.Layout(home)
    retired = layout.retired_encryption_key("alice", old.key_id.hex())
    assert keys.peek_key_file(retired) == old
    manifest = outbox_manifest(home, root)
    assert [e.public_key for e in manifest.retired] == [old.key]
    new = keys.peek_key_file(layout.encryption_key("alice"))
    assert manifest.recipient_keys == [new.key] != [old.key]
    assert result.encryption_fingerprint == new.fingerprint
    # Old material is still readable with the journalist's keys (current + retired).
    assert crypto.open_bytes(old_item, secrets(home, "alice"))[1] == b"before the rotation"


def test_revoke_moves_the_keys_aside_and_retires_the_encryption_key(home):
    root = root_public(home)
    keys.add_journalist(home, "bob", ask, ask_new, now=NOW, memlimit=MEM)
    bob = keys.peek_key_file(station.Layout(home).encryption_key("bob"))
    with pytest.raises(StationError, match="--as"):
        keys.revoke_journalist(home, "bob", ask, now=NOW)
    result = keys.revoke_journalist(home, "bob", ask, now=NOW, acting="alice")
    assert result.store_key_resealed
    assert result.moved_to == home / "keys" / ".revoked" / "bob-2026-11-25"
    assert result.moved_to is not None
    assert (result.moved_to / "encryption.key").is_file()
    assert not (home / "keys" / "bob").exists()
    record = station.load_station(home)
    assert record.journalists == ("alice",)
    assert record.revoked == ({"name": "bob", "keys": "keys/.revoked/bob-2026-11-25",
                               "revoked": "2026-11-25"},)  # fmt: skip
    manifest = outbox_manifest(home, root)
    assert [e.journalist for e in manifest.recipients] == ["alice"]
    assert [e.journalist for e in manifest.signing_keys] == ["alice"]
    assert [e.public_key for e in manifest.retired] == [bob.key]
    with pytest.raises(StationError, match="only journalist"):
        keys.revoke_journalist(home, "alice", ask, now=NOW)
    # The name can be given to a new journalist later; the next revocation gets its own dir.
    keys.add_journalist(home, "bob", ask, ask_new, now=NOW, memlimit=MEM)
    again = keys.revoke_journalist(home, "bob", ask, now=NOW, acting="alice")
    assert again.moved_to == home / "keys" / ".revoked" / "bob-2026-11-25-2"


def test_root_rotation_twice_gives_a_chain_the_first_pin_accepts(home):
    first = root_public(home)
    one = keys.rotate_team_root(home, ask, ask_new, now=NOW, memlimit=MEM)
    assert one.chain_length == 1
    two = keys.rotate_team_root(home, ask_after_root_rotation, ask_new, now=NOW, memlimit=MEM)
    assert two.chain_length == 2
    layout = station.Layout(home)
    signed = verify_keyring(layout.outbox_keyring.read_bytes(), first)
    assert signed.serial == 3
    assert signed.root == root_public(home) != first
    assert len(signed.rotations) == 2
    assert crypto.load_public_key(layout.outbox_root.read_bytes()).key == signed.root
    assert len(list(layout.retired_roots.glob("root-*.key"))) == 2
    assert len(keys.load_rotations(layout)) == 2
    # The next action is signed by the new root, with the whole chain.
    keys.add_journalist(home, "bob", ask_after_root_rotation, ask_new, now=NOW, memlimit=MEM)
    assert verify_keyring(layout.outbox_keyring.read_bytes(), first).serial == 4


def test_transfer_clients_each_get_their_own_keys(home, tmp_path):
    root = root_public(home)
    one = keys.add_transfer_client(home, "laptop 1", tmp_path / "t1", ask, None, now=NOW)
    two = keys.add_transfer_client(
        home, "laptop 2", tmp_path / "t2", ask, "transfer passphrase", now=NOW, memlimit=MEM
    )
    manifest = outbox_manifest(home, root)
    assert len(manifest.transfer_clients) == 2
    assert len({c.onion_auth_key for c in manifest.transfer_clients}) == 2
    assert len({c.public_key for c in manifest.transfer_clients}) == 2
    t1 = load_private_key((tmp_path / "t1" / "transfer.key").read_bytes(), None)
    assert t1.kind is KeyKind.TRANSFER
    o1 = load_private_key((tmp_path / "t1" / "onion-auth.key").read_bytes(), None)
    assert o1.kind is KeyKind.ONION_AUTH
    t2 = load_private_key((tmp_path / "t2" / "transfer.key").read_bytes(), "transfer passphrase")
    assert {c.public_key for c in manifest.transfer_clients} == {t1.public.key, t2.public.key}
    line = (tmp_path / "t1" / "postern-api.auth_private").read_text().strip()
    onion, descriptor, x25519, encoded = line.split(":")
    assert (onion, descriptor, x25519) == (keys.ONION_PLACEHOLDER, "descriptor", "x25519")
    scalar = base64.b32decode(encoded + "=" * (-len(encoded) % 8))
    assert crypto.keys.x25519_public(scalar) == o1.public.key
    assert [p.name for p, _ in one.files] == ["transfer.key", "onion-auth.key",
                                              "postern-api.auth_private"]  # fmt: skip
    assert two.signing_fingerprint != one.signing_fingerprint
    with pytest.raises(StationError, match="already exists"):
        keys.add_transfer_client(home, "laptop 1", tmp_path / "t3", ask, None, now=NOW)
    keys.revoke_transfer_client(home, "laptop 1", ask, now=NOW)
    manifest = outbox_manifest(home, root)
    assert [c.public_key for c in manifest.transfer_clients] == [t2.public.key]
    with pytest.raises(StationError, match="no transfer client"):
        keys.revoke_transfer_client(home, "laptop 1", ask, now=NOW)


def test_list_shows_every_key_with_grouped_fingerprints(home, tmp_path):
    keys.add_journalist(home, "bob", ask, ask_new, now=NOW, memlimit=MEM)
    keys.rotate_encryption_key(home, "bob", ask, now=NOW, memlimit=MEM)
    keys.add_transfer_client(home, "laptop", tmp_path / "t", ask, None, now=NOW)
    rows = keys.list_keys(home)
    roles = sorted((r.role, r.owner) for r in rows)
    assert roles == sorted([
        ("team root", "team"), ("encryption", "alice"), ("signing", "alice"),
        ("encryption", "bob"), ("signing", "bob"), ("retired encryption", "bob"),
        ("transfer client transfer", "transfer machine"),
        ("transfer client onion-auth", "transfer machine"),
    ])  # fmt: skip
    for row in rows:
        groups = row.fingerprint.split(" ")
        assert len(groups) == 10
        assert all(len(g) == 4 and g == g.upper() for g in groups)


def _db_key(home: Path, name: str = "alice") -> bytes:
    """The database key in the station's own HOME/store/key.envelope, opened by name."""
    return open_store_key(station.Layout(home).store_key, secrets(home, name), name)


def _reseal_to(home: Path, recipients: list[bytes]) -> bytes:
    """Re-seal the station's real store key to recipients only (as an older station had it)."""
    db_key = _db_key(home)
    reseal_store_key_file(station.Layout(home).store_key, db_key, recipients)
    return db_key


@pytest.mark.slow
def test_the_store_key_follows_the_journalists(home):
    layout = station.Layout(home)
    db_key = _db_key(home)  # journalist init sealed it to alice
    # The only journalist acts by default; with two, the acting one must be named.
    result = keys.add_journalist(home, "bob", ask, ask_new, now=NOW, memlimit=MEM)
    assert result.store_key_resealed
    assert crypto.open_bytes(layout.store_key.read_bytes(), secrets(home, "bob"))[1] == db_key
    with pytest.raises(StationError, match="--as"):
        keys.add_journalist(home, "carol", ask, ask_new, now=NOW, memlimit=MEM)
    assert not layout.journalist_keys("carol").exists()
    result = keys.add_journalist(home, "carol", ask, ask_new, now=NOW, acting="bob", memlimit=MEM)
    assert crypto.open_bytes(layout.store_key.read_bytes(), secrets(home, "carol"))[1] == db_key
    keys.rotate_encryption_key(home, "alice", ask, now=NOW, memlimit=MEM)
    header = crypto.parse_header(layout.store_key.read_bytes())
    assert crypto.sealed_to(header, [keys.peek_key_file(layout.encryption_key(n)).key
                                     for n in ("alice", "bob", "carol")])  # fmt: skip
    bob_keys = secrets(home, "bob")
    keys.revoke_journalist(home, "bob", ask, now=NOW, acting="alice")
    sealed = layout.store_key.read_bytes()
    with pytest.raises(crypto.DecryptionError):
        crypto.open_bytes(sealed, bob_keys)
    current = [keys.peek_key_file(layout.encryption_key(n)).key for n in ("alice", "carol")]
    assert crypto.sealed_to(crypto.parse_header(sealed), current)
    assert crypto.open_bytes(sealed, secrets(home, "alice"))[1] == db_key
    # The store still opens, with the same database, for the journalists who remain.
    unlock(home, "carol", PASSES["journalist carol's keys"]).lock()
    with pytest.raises(StationError, match="cannot open the store key"):
        open_store_key(layout.store_key, bob_keys, "bob")


def test_reseal_store_key_directly(home, tmp_path):
    layout = station.Layout(home)
    alice = station.load_encryption_keys(layout, "alice", PASSES["journalist alice's keys"])[0]
    no_store = station.Layout(tmp_path / "no-store")
    assert keys.reseal_store_key(no_store, [alice.secret], [alice.public.key]) is None
    db_key = _db_key(home)
    other = crypto.PrivateKey.generate(KeyKind.ENCRYPTION, "other")
    result = keys.reseal_store_key(layout, [alice.secret], [other.public.key, alice.public.key])
    assert result is not None
    assert result.changed
    assert result.key_ids == tuple(sorted([other.key_id.hex(), alice.key_id.hex()]))
    assert crypto.open_bytes(layout.store_key.read_bytes(), [other.secret])[1] == db_key
    with pytest.raises(StationError, match="cannot re-seal"):
        keys.reseal_store_key(layout, [os.urandom(32)], [alice.public.key])


def import_items(home: Path, tmp_path: Path, envelopes: list[tuple[str, bytes]]) -> FakeSource:
    """Import envelopes (kind, bytes) from one source into the real store, as alice."""
    server = server_key()
    pin(home, server)
    source = FakeSource()
    entries = [Entry(str(n), source, kind, data) for n, (kind, data) in enumerate(envelopes, 1)]
    bundle = write_bundle(tmp_path / "in.bundle", server, entries)
    unlocked = unlock(home, "alice", PASSES["journalist alice's keys"])
    try:
        import_bundle(unlocked, bundle, today=NOW.date(), now=NOW)
    finally:
        unlocked.lock()
    return source


def rows(home: Path, name: str = "alice") -> dict[str, Item]:
    """Every item of the store by server id ("reply" for the one reply), as name reads it."""
    unlocked = unlock(home, name, PASSES[f"journalist {name}'s keys"])
    try:
        with unlocked.store.session() as session:
            items = session.execute(select(Item)).scalars().all()
    finally:
        unlocked.lock()
    return {item.server_id or "reply": item for item in items}


def ledger_of(home: Path) -> tuple[list[LedgerRecord], ledger.LedgerReport]:
    unlocked = unlock(home, "alice", PASSES["journalist alice's keys"])
    try:
        with unlocked.store.session() as session:
            records = list(session.execute(select(LedgerRecord)).scalars())
            return records, ledger.verify(session, unlocked.layout.ledger_head)
    finally:
        unlocked.lock()


def assert_rows_match_files(home: Path) -> dict[str, Item]:
    """Every row names an envelope file with its recorded hash and size; no other file."""
    layout = station.Layout(home)
    found = rows(home)
    for item in found.values():
        data = (layout.envelopes / item.envelope_name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == item.envelope_sha256
        assert len(data) == item.envelope_size
        ids = ",".join(sorted(k.hex() for k in crypto.parse_header(data).key_ids))
        assert ids == item.key_ids
    assert sorted(p.name for p in layout.envelopes.iterdir()) == sorted(
        i.envelope_name for i in found.values()
    )
    return found


@pytest.fixture
def stocked(home, tmp_path):
    """alice and bob; two messages and a reply sealed to alice's first key (and bob's)."""
    layout = station.Layout(home)
    keys.add_journalist(home, "bob", ask, ask_new, now=NOW, memlimit=MEM)
    old_alice = keys.peek_key_file(layout.encryption_key("alice")).key
    bob = keys.peek_key_file(layout.encryption_key("bob")).key
    source = import_items(home, tmp_path, [
        ("message", seal_bytes(b"to old alice only", [old_alice], Kind.MESSAGE)),
        ("message", seal_bytes(b"to old alice and bob", [old_alice, bob], Kind.MESSAGE)),
    ])  # fmt: skip
    unlocked = unlock(home, "alice", PASSES["journalist alice's keys"])
    try:
        queue_reply(unlocked, rows_source_pk(unlocked), "we read you", today=NOW.date(), now=NOW)
    finally:
        unlocked.lock()
    keys.rotate_encryption_key(home, "alice", ask, now=NOW, memlimit=MEM)
    keys.revoke_journalist(home, "bob", ask, now=NOW, acting="alice")
    return source


def rows_source_pk(unlocked) -> int:
    with unlocked.store.session() as session:
        return int(session.scalars(select(Item.source_pk)).first())


TEXTS = {"1": "to old alice only", "2": "to old alice and bob", "reply": "we read you"}


@pytest.mark.slow
def test_rewrap_then_destroy_retired_keeps_everything_readable(home, stocked):
    layout = station.Layout(home)
    before = rows(home)
    assert keys.stranded_envelopes(home) == sorted(layout.envelopes.iterdir())
    with pytest.raises(StationError, match="rewrap"):
        keys.destroy_retired(home, "destroy", ask)
    with pytest.raises(StationError, match="not confirmed"):
        keys.destroy_retired(home, "yes", ask)

    done, failed = keys.rewrap_store(home, ["alice"], ask, now=NOW)
    assert failed == []
    new_alice = keys.peek_key_file(layout.encryption_key("alice")).key_id.hex()
    changed = {r.item_id: r for r in done if r.changed}
    assert set(changed) == {item.id for item in before.values()}
    assert [r.path for r in done if not r.changed] == [layout.store_key]
    after = assert_rows_match_files(home)
    reply_id = crypto.keys.key_id(crypto.Algorithm.X25519, stocked.reply.public.key).hex()
    for server_id, item in after.items():
        result = changed[item.id]
        assert result.path == layout.envelopes / item.envelope_name
        assert item.envelope_name != before[server_id].envelope_name
        assert not (layout.envelopes / before[server_id].envelope_name).exists()
        assert result.sha256 == item.envelope_sha256 != before[server_id].envelope_sha256
        expected = sorted([new_alice, reply_id]) if server_id == "reply" else [new_alice]
        assert result.key_ids == tuple(expected)
    # The reply is still sealed to its source's reply key: the source can read it.
    reply = (layout.envelopes / after["reply"].envelope_name).read_bytes()
    assert crypto.open_bytes(reply, [stocked.reply.secret])[1] == b"we read you"
    assert keys.stranded_envelopes(home) == []
    records, report = ledger_of(home)
    rewraps = [r for r in records if r.event == "rewrap"]
    assert sorted(str(r.item_ref) for r in rewraps) == sorted(str(i.id) for i in after.values())
    assert all(json.loads(r.detail)["envelope_after"] == after[k].envelope_sha256
               for k in after for r in rewraps if r.item_ref == str(after[k].id))  # fmt: skip
    assert report.ok, report
    assert report.note is None

    retired = {keys.peek_key_file(p).key_id.hex() for p in keys.retired_key_files(home)}
    destroyed = keys.destroy_retired(home, "destroy", ask, now=NOW)
    assert len(destroyed) == 3  # alice's retired key, bob's two revoked key files
    assert all(not p.exists() for p in destroyed)
    assert keys.retired_key_files(home) == []
    records, report = ledger_of(home)
    assert report.ok, report
    assert report.note is None
    assert records[-1].event == "key-destroy"
    assert records[-1].journalist == "alice"
    assert set(json.loads(records[-1].detail)["key_ids"].split(",")) == retired
    assert len(secrets(home, "alice")) == 1
    unlocked = unlock(home, "alice", PASSES["journalist alice's keys"])
    try:
        for server_id, item in after.items():
            assert content.read_message(unlocked, item.id, now=NOW) == TEXTS[server_id]
    finally:
        unlocked.lock()


def test_a_later_bundle_repeating_a_rewrapped_item_is_still_accepted(home, tmp_path):
    """The server offers an item again until it sees the acknowledgement: after a rewrap the
    stored envelope has another SHA-256, and the import recognises it through the ledger."""
    layout = station.Layout(home)
    server = server_key()
    pin(home, server)
    source = FakeSource()
    old_alice = keys.peek_key_file(layout.encryption_key("alice")).key
    first = Entry("1", source, "message", seal_bytes(b"before", [old_alice], Kind.MESSAGE))
    keys_at_import = write_bundle(tmp_path / "one.bundle", server, [first])
    unlocked = unlock(home, "alice", PASSES["journalist alice's keys"])
    try:
        import_bundle(unlocked, keys_at_import, today=NOW.date(), now=NOW)
    finally:
        unlocked.lock()
    keys.rotate_encryption_key(home, "alice", ask, now=NOW, memlimit=MEM)
    done, failed = keys.rewrap_store(home, ["alice"], ask, now=NOW)
    assert failed == []
    assert any(r.changed and r.item_id is not None for r in done)
    new_alice = keys.peek_key_file(layout.encryption_key("alice")).key
    second = Entry("2", source, "message", seal_bytes(b"after", [new_alice], Kind.MESSAGE))
    again = write_bundle(tmp_path / "two.bundle", server, [first, second])
    forged = Entry("1", source, "message", seal_bytes(b"other", [new_alice], Kind.MESSAGE))
    changed = write_bundle(tmp_path / "three.bundle", server, [forged])
    unlocked = unlock(home, "alice", PASSES["journalist alice's keys"])
    try:
        result = import_bundle(unlocked, again, today=NOW.date(), now=NOW)
        assert (result.imported, result.already_present) == (1, 1)
        with pytest.raises(StationError, match="differs from the item 1 already imported"):
            import_bundle(unlocked, changed, today=NOW.date(), now=NOW)
    finally:
        unlocked.lock()
    assert sorted(rows(home)) == ["1", "2"]


@pytest.mark.parametrize("stop_at", ["before the commit", "after the commit"])
@pytest.mark.slow
def test_an_interrupted_rewrap_never_leaves_a_row_on_other_bytes(home, stocked, monkeypatch,
                                                                 stop_at):  # fmt: skip
    layout = station.Layout(home)
    before = rows(home)
    target: tuple[object, str] = (
        (ledger.Appender, "flush") if stop_at == "before the commit" else (ledger, "update_head")
    )

    def power_cut(*args: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(*target, power_cut)
    with pytest.raises(OSError, match="power cut"):
        keys.rewrap_store(home, ["alice"], ask, now=NOW)
    monkeypatch.undo()
    assert (layout.store / keys.REWRAP_JOURNAL).exists()
    found = rows(home)
    leftovers = {p.name for p in layout.envelopes.iterdir()} - {
        i.envelope_name for i in found.values()
    }
    assert len(leftovers) == 3  # the new copies, or the old ones
    for server_id, item in found.items():
        data = (layout.envelopes / item.envelope_name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == item.envelope_sha256
        moved = item.envelope_name != before[server_id].envelope_name
        assert moved == (stop_at == "after the commit")
    if stop_at == "before the commit":
        keys.rewrap_store(home, ["alice"], ask, now=NOW)  # cleans up, then does it all
    else:
        keys.destroy_retired(home, "destroy", ask, now=NOW)  # cleans up before its check
    assert not (layout.store / keys.REWRAP_JOURNAL).exists()
    after = assert_rows_match_files(home)
    assert keys.stranded_envelopes(home) == []
    assert ledger_of(home)[1].ok
    unlocked = unlock(home, "alice", PASSES["journalist alice's keys"])
    try:
        for server_id, item in after.items():
            assert content.read_message(unlocked, item.id, now=NOW) == TEXTS[server_id]
    finally:
        unlocked.lock()


def test_rewrap_reports_a_file_no_item_names_and_leaves_it(home, stocked):
    layout = station.Layout(home)
    stray = layout.envelopes / ("f" * 32)
    stray.write_bytes(b"not from the database")
    done, failed = keys.rewrap_store(home, ["alice"], ask, now=NOW)
    assert [p for p, _ in failed] == [stray]
    assert "no item of the station database" in failed[0][1]
    assert stray.read_bytes() == b"not from the database"
    assert len([r for r in done if r.changed]) == 3


def test_rewrap_reports_what_it_cannot_open_and_leaves_it(home, tmp_path):
    layout = station.Layout(home)
    alice = keys.peek_key_file(layout.encryption_key("alice")).key
    stranger = crypto.PrivateKey.generate(KeyKind.ENCRYPTION, "x")
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_bytes(seal_bytes(b"x", [stranger.public.key], Kind.MESSAGE))
    two.write_bytes(b"not an envelope" * 10)
    before = one.read_bytes()
    done, failed = keys.rewrap_envelope_files([one, two], secrets(home, "alice"), [alice])
    assert done == []
    assert [p for p, _ in failed] == [one, two]
    assert one.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".rewrap")] == []


def test_recovery_kit_has_fingerprints_and_key_files(home, tmp_path):
    kit = keys.recovery_kit(home, tmp_path / "kit.html", now=NOW)
    text = kit.read_text()
    layout = station.Layout(home)
    assert keys.peek_key_file(layout.root_key).fingerprint in text
    assert keys.peek_key_file(layout.encryption_key("alice")).fingerprint in text
    for path in (layout.root_key, layout.encryption_key("alice"), layout.signing_key("alice")):
        for line in path.read_text().splitlines():
            assert line in text
    assert stat.S_IMODE(kit.stat().st_mode) == 0o600
    with pytest.raises(StationError, match="exists"):
        keys.recovery_kit(home, kit, now=NOW)


def test_station_json_keeps_its_optional_members(home, tmp_path):
    keys.add_transfer_client(home, "laptop", tmp_path / "t", ask, None, now=NOW)
    raw = json.loads(station.Layout(home).station_file.read_text())
    assert set(raw) == {"type", "version", "journalists", "keyring_serial", "transfer_clients"}
    assert station.load_station(home).transfer_clients[0]["label"] == "laptop"


def test_an_acting_journalist_who_cannot_open_the_store_key_changes_nothing(home):
    layout = station.Layout(home)
    keys.add_journalist(home, "bob", ask, ask_new, now=NOW, memlimit=MEM)
    _reseal_to(home, [keys.peek_key_file(layout.encryption_key("alice")).key])
    before = sorted(p.relative_to(home) for p in home.rglob("*"))
    with pytest.raises(StationError, match="do not open the store key"):
        keys.add_journalist(home, "carol", ask, ask_new, now=NOW, acting="bob", memlimit=MEM)
    with pytest.raises(StationError, match="do not open the store key"):
        keys.rotate_encryption_key(home, "bob", ask, now=NOW, memlimit=MEM)
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == before
    assert station.load_station(home).keyring_serial == 2


@pytest.mark.parametrize("stop_at", ["before the chain", "after the chain"])
def test_an_interrupted_root_rotation_is_finished_or_forgotten(home, monkeypatch, stop_at):
    layout = station.Layout(home)
    first = keys.peek_key_file(layout.root_key)
    real_replace, real_write = os.replace, station_fs.atomic_write

    def crash_write(path: Path, content: bytes) -> None:
        if path == layout.rotations:
            raise OSError("power cut")
        real_write(path, content)

    def crash_replace(src: object, dst: object) -> None:
        if Path(str(dst)) == layout.root_key:
            raise OSError("power cut")
        real_replace(src, dst)  # type: ignore[arg-type]

    if stop_at == "before the chain":
        monkeypatch.setattr(station_fs, "atomic_write", crash_write)
    else:
        monkeypatch.setattr(os, "replace", crash_replace)
    with pytest.raises(OSError, match="power cut"):
        keys.rotate_team_root(home, ask, ask_new, now=NOW, memlimit=MEM)
    monkeypatch.undo()
    assert keys.peek_key_file(layout.root_key) == first
    after_chain = stop_at == "after the chain"
    assert layout.rotations.exists() == after_chain

    # The next command finishes the rotation (or never knew of it) and signs with the root
    # the chain ends at.
    expected = ask_new("the new team root key") if after_chain else PASSES[keys.ROOT_WHAT]

    def next_ask(what: str) -> str:
        return expected if what == keys.ROOT_WHAT else PASSES[what]

    keys.add_journalist(home, "bob", next_ask, ask_new, now=NOW, memlimit=MEM)
    assert not (layout.keys / "root.key.next").exists()
    signed = verify_keyring(layout.outbox_keyring.read_bytes(), first.key)
    assert (signed.root != first.key) == after_chain
    assert len(signed.rotations) == (1 if after_chain else 0)
    if not after_chain:  # a later rotation replaces the unused key left behind
        keys.rotate_team_root(home, ask, ask_new, now=NOW, memlimit=MEM)
        assert verify_keyring(layout.outbox_keyring.read_bytes(), first.key).serial == 3
    assert not (layout.keys / "root.key.next").exists()


def test_an_interrupted_revocation_is_finished_by_the_next_command(home, monkeypatch):
    layout = station.Layout(home)
    keys.add_journalist(home, "bob", ask, ask_new, now=NOW, memlimit=MEM)
    real_rename = os.rename

    def crash(src: object, dst: object) -> None:
        if Path(str(src)) == layout.journalist_keys("bob"):
            raise OSError("power cut")
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="power cut"):
        keys.revoke_journalist(home, "bob", ask, now=NOW, acting="alice")
    monkeypatch.undo()
    assert station.load_station(home).journalists == ("alice",)
    assert layout.journalist_keys("bob").is_dir()  # not moved yet
    rows = keys.list_keys(home)
    assert not layout.journalist_keys("bob").exists()
    assert (layout.revoked_keys / "bob-2026-11-25" / "encryption.key").is_file()
    assert {r.owner for r in rows if r.role.startswith("revoked")} == {"bob"}


@pytest.mark.slow
def test_material_sealed_to_a_revoked_journalist_alone_is_rewrapped_with_their_kept_keys(
    home, tmp_path
):
    layout = station.Layout(home)
    keys.add_journalist(home, "bob", ask, ask_new, now=NOW, memlimit=MEM)
    bob = keys.peek_key_file(layout.encryption_key("bob")).key
    import_items(home, tmp_path, [("message", seal_bytes(b"bob's alone", [bob], Kind.MESSAGE))])
    only_bob = layout.envelopes / rows(home)["1"].envelope_name
    keys.revoke_journalist(home, "bob", ask, now=NOW, acting="alice")
    done, failed = keys.rewrap_store(home, ["alice"], ask, now=NOW)
    assert [p for p, _ in failed] == [only_bob]
    with pytest.raises(StationError, match="rewrap"):
        keys.destroy_retired(home, "destroy", ask)

    def with_bob(what: str) -> str:
        return (
            PASSES["journalist bob's keys"]
            if what == "journalist bob's revoked keys"
            else ask(what)
        )

    done, failed = keys.rewrap_store(home, ["alice"], with_bob, revoked=["bob"], now=NOW)
    assert failed == []
    item = assert_rows_match_files(home)["1"]
    assert [r.path for r in done if r.changed] == [layout.envelopes / item.envelope_name]
    keys.destroy_retired(home, "destroy", ask)
    stored = (layout.envelopes / item.envelope_name).read_bytes()
    assert crypto.open_bytes(stored, secrets(home, "alice"))[1] == b"bob's alone"
    with pytest.raises(StationError, match="no kept keys"):
        keys.rewrap_store(home, ["alice"], with_bob, revoked=["bob"])


def test_an_item_sealed_to_no_key_of_the_station_does_not_block_destroying(home, tmp_path):
    layout = station.Layout(home)
    keys.add_journalist(home, "bob", ask, ask_new, now=NOW, memlimit=MEM)
    stranger = crypto.PrivateKey.generate(KeyKind.ENCRYPTION, "someone else")
    bob = keys.peek_key_file(layout.encryption_key("bob")).key
    import_items(home, tmp_path, [
        ("message", seal_bytes(b"not for us", [stranger.public.key], Kind.MESSAGE)),
        ("message", seal_bytes(b"bob's alone", [bob], Kind.MESSAGE)),
    ])  # fmt: skip
    found = rows(home)
    assert [found[i].decryptable for i in ("1", "2")] == [False, False]  # alice imported them
    foreign = layout.envelopes / found["1"].envelope_name
    before = foreign.read_bytes()
    keys.revoke_journalist(home, "bob", ask, now=NOW, acting="alice")
    # Bob's item would be lost with his kept keys; the stranger's is unreadable anyway.
    assert keys.stranded_envelopes(home) == [layout.envelopes / found["2"].envelope_name]

    def with_bob(what: str) -> str:
        return PASSES["journalist bob's keys"] if "revoked" in what else ask(what)

    done, failed = keys.rewrap_store(home, ["alice"], with_bob, revoked=["bob"], now=NOW)
    assert failed == [(foreign, f"{keys.UNDECRYPTABLE}: left as it is")]
    assert [r.item_id for r in done if r.changed] == [found["2"].id]
    assert foreign.read_bytes() == before
    assert keys.stranded_envelopes(home) == []
    assert len(keys.destroy_retired(home, "destroy", ask, now=NOW)) == 2
    assert assert_rows_match_files(home)["1"].envelope_sha256 == found["1"].envelope_sha256
