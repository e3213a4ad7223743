"""The key lifecycle end to end: a real station home, real gunicorn, the real transfer client.

submit -> add a journalist -> install -> submit -> rotate a key -> install -> submit -> revoke
a journalist -> install -> submit -> pull -> open every envelope with each key: each item
opens with exactly the keys of the keyring installed when it was sent, and nothing sent after
the revocation opens with the revoked journalist's key. Then: an outbound bundle signed by the
revoked journalist is refused; a rollback and a tampered keyring are refused; a two-step root
rotation is accepted and forged chains are refused; a second transfer machine (its own keys,
passphrase-protected) pulls while the revoked first one is refused; rewrap and destroy-retired
leave every item readable with the current keys only; a backup restored on a new home reads
everything.

The station side runs the use cases of journalist_ui.keys and journalist_ui.backup and the real
station store: the server key is pinned with `journalist server pin`, the bundles are imported
with journalist_ui.importer, and every item is read back with journalist_ui.content through an
unlocked store, one key at a time.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

import crypto
from crypto import Kind, PrivateKey, RootRotation, seal_bytes, verify_keyring
from crypto.bundle import write_outbound_bundle
from journalist_ui import backup, content, keys, ledger, station
from journalist_ui.errors import StationError
from journalist_ui.importer import import_bundle
from journalist_ui.store.models import Item
from journalist_ui.unlock import Unlocked, unlock
from tests.support.cli import BIN, JOURNALIST, run_tool
from tests.support.server import DropboxServer, init_data_dir, running_server
from tests.support.source import Source
from tests.support.transfer import pull, read_bundle, run, server_public_key

NOW = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
MEM = station.MIN_MEMLIMIT
PASSES = {
    "the team root key and journalist alice's keys": "alice passphrase 1",
    keys.ROOT_WHAT: "alice passphrase 1",
    "journalist alice's keys": "alice passphrase 1",
    "journalist bob's keys": "bob passphrase 22",
    "the new team root key": "second root passphrase",
}
_META = re.compile(r'<meta name="(postern-root|postern-keyring-serial)" content="([^"]*)">')


def ask(what: str) -> str:
    return PASSES[what]


@dataclass
class Stage:
    name: str
    recipients: frozenset[bytes]  # key ids of the keyring installed when the items were sent
    contents: list[bytes] = field(default_factory=list)


@dataclass
class World:
    home: Path
    server: DropboxServer
    transfer_key: Path
    tmp: Path

    def install(self, keyring: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(
            BIN / "dropbox",
            "keyring",
            "install",
            "--data-dir",
            self.server.data_dir,
            keyring,
            check=check,
        )

    def active_ids(self) -> frozenset[bytes]:
        layout = station.Layout(self.home)
        record = station.load_station(self.home)
        return frozenset(
            keys.peek_key_file(layout.encryption_key(n)).key_id for n in record.journalists
        )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    home = tmp_path / "station"
    station.init_station(home, "alice", ask, now=NOW, memlimit=MEM)
    # The transfer machine's keys are made on the station (keyring serial 2).
    keys.add_transfer_client(home, "transfer laptop", tmp_path / "transfer", ask, None, now=NOW)
    layout = station.Layout(home)
    data_dir = init_data_dir(tmp_path / "data", layout.outbox_root, layout.outbox_keyring)
    with running_server(data_dir, tmp_path) as server:
        yield World(home, server, tmp_path / "transfer" / "transfer.key", tmp_path)


def submit_both_paths(world: World, stage: Stage) -> None:
    """One source sends through the plain form and through the script path."""
    source = Source(world.server)
    form_message = f"{stage.name}: sent without scripts".encode()
    form_file = os.urandom(70_000)
    source.plain_form(form_message.decode(), f"{stage.name}.bin", form_file)
    # What postern.js does: the keyring the page announces, verified against the page's root.
    page = source.get("/submit")
    meta = dict(_META.findall(page))
    served = source.http.get(world.server.url + "/keyring.json", timeout=60).content
    keyring = verify_keyring(served, base64.b64decode(meta["postern-root"]))
    assert keyring.serial == int(meta["postern-keyring-serial"])
    script_message = f"{stage.name}: sealed in the browser".encode()
    source.script_path(
        [("message", seal_bytes(script_message, keyring.manifest.recipient_keys, Kind.MESSAGE))]
    )
    stage.contents += [form_message, form_file, script_message]


def stale_upload_is_refused(world: World, stale_recipients: list[bytes]) -> None:
    """An envelope sealed to an earlier keyring's recipients is refused by the server.

    With another number of recipients its length is already wrong at creation (400
    ``invalid_length``); with the same number its header's key ids are (409 ``stale_keyring``).
    """
    current = len(world.active_ids())
    source = Source(world.server)
    token = source.token(source.get("/submit"))
    envelope = seal_bytes(b"to the old keys", stale_recipients, Kind.MESSAGE)
    headers = {"Tus-Resumable": "1.0.0", "X-Postern-CSRF": token}
    created = source.http.post(
        world.server.url + "/api/uploads",
        timeout=60,
        headers={**headers, "Upload-Length": str(len(envelope))},
    )
    if len(stale_recipients) != current:
        assert created.status_code == 400, created.text
        assert created.json()["error"] == "invalid_length"
        return
    assert created.status_code == 201, created.text
    patched = source.http.patch(
        world.server.url + created.headers["Location"],
        data=envelope,
        timeout=60,
        headers={
            **headers,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert patched.status_code == 409, patched.text
    assert patched.json()["error"] == "stale_keyring"


def load_key(path: Path, passphrase: str) -> PrivateKey:
    return crypto.load_private_key(path.read_bytes(), passphrase)


def read_item(unlocked: Unlocked, item: Item) -> bytes:
    """An item's content through the store (content.read_message / open_file), unlogged."""
    if item.kind == "file":
        opened = content.open_file(unlocked, item.id, log_view=False)
        return b"".join(opened.chunks())
    return content.read_message(unlocked, item.id, log_view=False).encode("utf-8")


def reads(unlocked: Unlocked, item: Item) -> bytes | None:
    try:
        return read_item(unlocked, item)
    except StationError as exc:
        if "is not sealed to your keys" not in str(exc):
            raise
        return None


def with_key(unlocked: Unlocked, key: PrivateKey) -> Unlocked:
    """The same open store, read with this one key only."""
    return Unlocked(unlocked.journalist, [key], unlocked.signing_key, unlocked.store,
                    unlocked.layout)  # fmt: skip


def stored_items(unlocked: Unlocked) -> dict[str, Item]:
    with unlocked.store.session() as session:
        return {i.server_id: i for i in session.execute(select(Item)).scalars() if i.server_id}


def read_everything(home: Path, passphrase: str, now: datetime) -> dict[str, bytes]:
    """Unlock home as alice, read every item through the store, check the ledger."""
    unlocked = unlock(home, "alice", passphrase)
    try:
        found = {sid: read_item(unlocked, item) for sid, item in stored_items(unlocked).items()}
        with unlocked.store.session() as session:
            report = ledger.verify(session, unlocked.layout.ledger_head)
        assert report.ok, report.problem
    finally:
        unlocked.lock()
    return found


def opens(envelope: bytes, key: PrivateKey) -> bytes | None:
    try:
        return crypto.open_bytes(envelope, [key.secret])[1]
    except crypto.DecryptionError:
        return None


@pytest.mark.timeout(600)
@pytest.mark.slow
def test_key_lifecycle(world: World):
    home, layout = world.home, station.Layout(world.home)
    stages: list[Stage] = []

    def stage(name: str) -> Stage:
        manifest = verify_keyring(
            layout.outbox_keyring.read_bytes(), keys.peek_key_file(layout.root_key).key
        ).manifest
        ids = frozenset(crypto.key_id(crypto.Algorithm.X25519, k) for k in manifest.recipient_keys)
        assert ids == world.active_ids()
        made = Stage(name, ids)
        submit_both_paths(world, made)
        stages.append(made)
        return made

    first_recipients = [keys.peek_key_file(layout.encryption_key("alice")).key]
    stage("1-alice")

    keys.add_journalist(home, "bob", ask, ask, now=NOW, memlimit=MEM)
    world.install(layout.outbox_keyring)
    stale_upload_is_refused(world, first_recipients)
    stage("2-alice-bob")

    second_recipients = [keys.peek_key_file(layout.encryption_key(n)).key for n in ("alice", "bob")]
    keys.rotate_encryption_key(home, "alice", ask, now=NOW, memlimit=MEM)
    world.install(layout.outbox_keyring)
    stale_upload_is_refused(world, second_recipients)
    stage("3-rotated")

    bob_signing = load_key(layout.signing_key("bob"), PASSES["journalist bob's keys"])
    revoked = keys.revoke_journalist(home, "bob", ask, now=NOW, acting="alice")
    world.install(layout.outbox_keyring)
    stage("4-bob-revoked")
    assert [s.recipients for s in stages[1:]] != [stages[0].recipients] * 3

    # -- pull and import on the station: every item opens with exactly the keys it should ---
    bundles = pull(world.server, world.transfer_key, world.tmp / "usb")
    assert len(bundles) == 1
    items, _ = read_bundle(bundles[0], server_public_key(world.server))
    assert len(items) == 12
    assert revoked.moved_to is not None
    pinned = run_tool(JOURNALIST, "server", "pin", world.server.data_dir / "server.pub",
                      "--home", home)  # fmt: skip
    assert pinned.returncode == 0, pinned.stderr
    alice_pass, bob_pass = PASSES["journalist alice's keys"], PASSES["journalist bob's keys"]
    alice = unlock(home, "alice", alice_pass)
    try:
        imported = import_bundle(alice, bundles[0], today=NOW.date(), now=NOW)
        assert (imported.imported, imported.undecryptable) == (12, 0)
        every_key = {
            "alice-1": load_key(next(layout.retired_keys("alice").glob("*.key")), alice_pass),
            "alice-2": load_key(layout.encryption_key("alice"), alice_pass),
            "bob": load_key(revoked.moved_to / "encryption.key", bob_pass),
        }
        expected_openers = {
            "1-alice": {"alice-1"},
            "2-alice-bob": {"alice-1", "bob"},
            "3-rotated": {"alice-2", "bob"},
            "4-bob-revoked": {"alice-2"},
        }
        by_content = {c: s for s in stages for c in s.contents}
        originals: dict[str, bytes] = {}
        stored = stored_items(alice)
        assert set(stored) == {item.id for item in items}
        for item in items:
            row = stored[item.id]
            header = crypto.parse_header((layout.envelopes / row.envelope_name).read_bytes())
            assert row.key_ids == ",".join(sorted(k.hex() for k in header.key_ids))
            opened = {name: reads(with_key(alice, key), row) for name, key in every_key.items()}
            text = read_item(alice, row)  # alice's own unlock: current and retired keys
            which = by_content[text]
            assert header.key_ids == which.recipients
            assert {n for n, c in opened.items() if c is not None} == expected_openers[which.name]
            assert all(c in (None, text) for c in opened.values())
            originals[item.id] = text
        assert sorted(originals.values()) == sorted(by_content)
        assert all(
            reads(with_key(alice, every_key["bob"]), stored[i.id]) is None
            for i in items
            if by_content[originals[i.id]].name == "4-bob-revoked"
        )
    finally:
        alice.lock()

    # -- the revoked journalist's signature is refused on outbound bundles -------------------
    alice_signing = load_key(layout.signing_key("alice"), alice_pass)
    for signer, refused in ((bob_signing, True), (alice_signing, False)):
        outbound = world.tmp / f"outbound-{signer.public.key_id.hex()}.bundle"
        with outbound.open("wb") as handle:
            write_outbound_bundle(
                handle,
                signing_key=signer,
                made=date(2026, 11, 25),
                replies=[],
                deletions=[],
                acknowledged=[items[0].id],
            )
        done = run(
            BIN / "dropbox-transfer",
            "push",
            outbound,
            "--server",
            world.server.api_url,
            "--key",
            world.transfer_key,
            check=False,
        )
        if refused:
            assert done.returncode == 1, done.stdout + done.stderr
            assert "the server refused the bundle: signature" in done.stderr
        else:
            assert done.returncode == 0, done.stdout + done.stderr

    # -- rollback, replay and tampering are refused -----------------------------------------
    installed = station.load_station(home).keyring_serial
    for old in (layout.keyring(installed - 2), layout.keyring(installed)):
        done = world.install(old, check=False)
        assert done.returncode == 1
        assert "refusing" in done.stderr
    first_root = keys.peek_key_file(layout.root_key).key

    # -- root rotation: two steps, installed at once -----------------------------------------
    keys.rotate_team_root(home, ask, ask, now=NOW, memlimit=MEM)
    PASSES[keys.ROOT_WHAT] = PASSES["the new team root key"]
    PASSES["the new team root key"] = "third root passphrase"
    keys.rotate_team_root(home, ask, ask, now=NOW, memlimit=MEM)
    PASSES[keys.ROOT_WHAT] = PASSES["the new team root key"]
    two_step = layout.outbox_keyring.read_bytes()
    assert len(verify_keyring(two_step, first_root).rotations) == 2

    tampered = json.loads(two_step)
    tampered["manifest"] = tampered["manifest"].replace("transfer laptop", "transfer laptoq")
    tampered_path = world.tmp / "tampered.json"
    tampered_path.write_text(json.dumps(tampered))
    done = world.install(tampered_path, check=False)
    assert done.returncode == 1
    assert "signature" in done.stderr

    current_root = PrivateKey(crypto.KeyKind.ROOT, _root_secret(layout), "Postern team root")
    forged = _forged_keyrings(two_step, current_root, installed + 3)
    for name, data in forged.items():
        path = world.tmp / f"forged-{name}.json"
        path.write_bytes(data)
        done = world.install(path, check=False)
        assert done.returncode == 1, name
        expected = {
            "signature-forged-link": "does not verify",
            "foreign-chain": "not issued by the pinned team root",
        }[name]
        assert expected in done.stderr, done.stderr

    world.install(layout.outbox_keyring)
    new_fp = keys.peek_key_file(layout.root_key).fingerprint
    landing = Source(world.server).get("/")
    assert new_fp in landing
    assert crypto.fingerprint(crypto.Algorithm.ED25519, first_root) not in landing
    fifth = stage("5-new-root")

    # -- transfer machines: a second one with a passphrase; the first one revoked -----------
    second = world.tmp / "transfer-2"
    keys.add_transfer_client(home, "second laptop", second, ask, "second laptop passphrase",
                             now=NOW, memlimit=MEM)  # fmt: skip
    keys.revoke_transfer_client(home, "transfer laptop", ask, now=NOW)
    world.install(layout.outbox_keyring)
    for medium in ("usb-revoked", "usb-2"):
        (world.tmp / medium).mkdir()
    unknown = run(
        BIN / "dropbox-transfer", "pull", "--server", world.server.api_url,
        "--key", world.transfer_key, "--to", world.tmp / "usb-revoked", check=False,
    )  # fmt: skip
    assert unknown.returncode == 1
    assert "unknown_client" in unknown.stderr
    read_end, write_end = os.pipe()
    os.write(write_end, b"second laptop passphrase\n")
    os.close(write_end)
    try:
        done = subprocess.run(
            [str(BIN / "dropbox-transfer"), "pull", "--server", world.server.api_url,
             "--key", str(second / "transfer.key"), "--passphrase-fd", str(read_end),
             "--to", str(world.tmp / "usb-2")],
            capture_output=True, text=True, timeout=180, pass_fds=(read_end,), check=False,
        )  # fmt: skip
    finally:
        os.close(read_end)
    assert done.returncode == 0, done.stderr
    (later,) = sorted((world.tmp / "usb-2").glob("*.bundle"))
    later_items, later_envelopes = read_bundle(later, server_public_key(world.server))
    earlier = {item.id for item in items} - {items[0].id}  # items[0] was acknowledged
    assert earlier < {item.id for item in later_items}
    later_contents = set()
    for item in later_items:
        if item.id in earlier:
            continue
        envelope = later_envelopes[item.id]
        assert crypto.parse_header(envelope).key_ids == fifth.recipients
        later_contents.add(crypto.open_bytes(envelope, [every_key["alice-2"].secret])[1])
        assert opens(envelope, every_key["bob"]) is None
    assert later_contents == set(fifth.contents)

    # -- import the later bundle, rewrap, destroy retired keys -------------------------------
    alice = unlock(home, "alice", alice_pass)
    try:
        again = import_bundle(alice, later, today=NOW.date(), now=NOW)
    finally:
        alice.lock()
    assert again.imported == len(fifth.contents)  # the earlier items were already there
    originals.update(
        {i.id: crypto.open_bytes(later_envelopes[i.id], [every_key["alice-2"].secret])[1]
         for i in later_items if i.id not in earlier}
    )  # fmt: skip
    assert len(keys.stranded_envelopes(home)) == 6  # stages 1-2: no current key can open them
    done_, failed = keys.rewrap_store(home, ["alice"], ask, now=NOW)
    assert failed == []
    assert sum(r.changed for r in done_) == 9  # stages 1-3
    assert keys.stranded_envelopes(home) == []
    destroyed = keys.destroy_retired(home, keys.DESTROY_CONFIRMATION, ask, now=NOW)
    assert {p.name for p in destroyed} >= {"encryption.key", "signing.key"}
    assert keys.retired_key_files(home) == []
    current = station.load_encryption_keys(layout, "alice", PASSES["journalist alice's keys"])
    assert len(current) == 1
    assert read_everything(home, alice_pass, NOW) == originals
    alice = unlock(home, "alice", alice_pass)
    try:
        rows = stored_items(alice)
        assert {r.key_ids for r in rows.values()} == {current[0].key_id.hex()}
        assert all(
            reads(with_key(alice, every_key[old]), row) is None
            for row in rows.values()
            for old in ("alice-1", "bob")
        )
    finally:
        alice.lock()

    # -- backup, restore on a new home, read everything --------------------------------------
    made = backup.backup_station(home, world.tmp / "station.backup")
    key_file = world.tmp / "typed-from-the-kit.key"
    key_file.write_bytes(layout.encryption_key("alice").read_bytes())
    new_home = world.tmp / "new-station"
    restored = backup.restore_station(
        made.path, new_home, key_file, lambda what: PASSES["journalist alice's keys"]
    )
    assert restored.journalists == ("alice",)
    assert read_everything(new_home, alice_pass, NOW) == originals
    verified = run_tool(JOURNALIST, "ledger", "verify", "--home", new_home, passphrase=alice_pass)
    assert verified.returncode == 0, verified.stderr
    assert "hash chain intact" in verified.stdout


def _root_secret(layout: station.Layout) -> bytes:
    return crypto.load_private_key(layout.root_key.read_bytes(), PASSES[keys.ROOT_WHAT]).secret


def _forged_keyrings(genuine: bytes, current_root: PrivateKey, serial: int) -> dict[str, bytes]:
    """Keyrings with a higher serial whose rotation chains do not hold."""
    outer = json.loads(genuine)
    chain = outer["rotations"]
    attacker = PrivateKey.generate(crypto.KeyKind.ROOT, "attacker")
    manifest = json.loads(outer["manifest"])

    def signed(rotations: list[dict[str, object]], root: PrivateKey) -> bytes:
        body = dict(manifest, serial=serial, root=base64.b64encode(root.public.key).decode())
        text = crypto._encoding.canonical_json(body)
        signature = root.sign(b"postern/v1 keyring\n" + text.encode())
        return json.dumps(
            {
                "type": "postern-signed-keyring",
                "version": 1,
                "manifest": text,
                "signature": base64.b64encode(signature).decode(),
                "rotations": rotations,
            }
        ).encode()

    # 1. A third link from the current root to the attacker, "signed" by the attacker alone.
    link = crypto.rotate_root(attacker, PrivateKey.generate(crypto.KeyKind.ROOT, "x"), NOW)
    statement = json.loads(link.statement)
    statement.update(
        old_root=base64.b64encode(current_root.public.key).decode(),
        new_root=base64.b64encode(attacker.public.key).decode(),
    )
    text = crypto._encoding.canonical_json(statement)
    message = b"postern/v1 root rotation\n" + text.encode()
    forged_link = RootRotation(
        text,
        current_root.public.key,
        attacker.public.key,
        attacker.sign(message),
        attacker.sign(message),
    ).to_json()
    # 2. A chain of the attacker's own roots, not starting at any root the server knows.
    own_new = PrivateKey.generate(crypto.KeyKind.ROOT, "z")
    own = crypto.rotate_root(attacker, own_new, NOW)
    return {
        "signature-forged-link": signed([*chain, forged_link], attacker),
        "foreign-chain": signed([own.to_json()], own_new),
    }
