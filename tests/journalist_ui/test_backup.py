"""journalist_ui.backup: one envelope holding the station home; restore refuses hostile tars."""

from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

import pytest

import crypto
from crypto import Kind, seal_bytes
from journalist_ui import backup, keys, station
from journalist_ui.errors import StationError
from tests.journalist_ui.test_keys import MEM, NOW, PASSES, ask, ask_new
from tests.support.homes import station_home


def alice_and_bob(home: Path) -> None:
    station.init_station(home, "alice", ask, now=NOW, memlimit=MEM)
    keys.add_journalist(home, "bob", ask, ask_new, now=NOW, memlimit=MEM)
    keys.rotate_encryption_key(home, "alice", ask, now=NOW, memlimit=MEM)
    layout = station.Layout(home)
    (layout.envelopes / "x1").write_bytes(
        seal_bytes(b"stored item", [keys.peek_key_file(layout.encryption_key("bob")).key],
                   Kind.MESSAGE)
    )  # fmt: skip


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """alice (her encryption key rotated once) and bob, and an item sealed to bob (copied:
    tests/support/homes.py)."""
    return station_home("test_backup-alice-bob", alice_and_bob, tmp_path / "station")


def key_asker(passphrase: str) -> station.PassphraseSource:
    return lambda what: passphrase


def tree(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def test_backup_is_one_envelope_sealed_to_every_encryption_key(home, tmp_path):
    result = backup.backup_station(home, tmp_path / "station.backup")
    data = result.path.read_bytes()
    header = crypto.parse_header(data)
    layout = station.Layout(home)
    expected = [keys.peek_key_file(p).key for p in (
        layout.encryption_key("alice"), layout.encryption_key("bob"),
        *layout.retired_keys("alice").glob("*.key"),
    )]  # fmt: skip
    assert len(expected) == 3
    assert crypto.sealed_to(header, expected)
    assert stat.S_IMODE(result.path.stat().st_mode) == 0o600
    with pytest.raises(StationError, match="exists"):
        backup.backup_station(home, tmp_path / "station.backup")
    with pytest.raises(StationError, match="outside"):
        backup.backup_station(home, home / "inside.backup")


@pytest.mark.parametrize("who", ["alice current", "alice retired", "bob"])
def test_restore_with_any_key_gives_the_same_home(home, tmp_path, who):
    made = backup.backup_station(home, tmp_path / "b")
    layout = station.Layout(home)
    key_file = {
        "alice current": layout.encryption_key("alice"),
        "alice retired": next(layout.retired_keys("alice").glob("*.key")),
        "bob": layout.encryption_key("bob"),
    }[who]
    passphrase = PASSES["journalist bob's keys" if who == "bob" else "journalist alice's keys"]
    new_home = tmp_path / "restored"
    result = backup.restore_station(made.path, new_home, key_file, key_asker(passphrase))
    assert result.journalists == ("alice", "bob")
    assert tree(new_home) == tree(home)
    assert all(
        stat.S_IMODE(p.stat().st_mode) == (0o700 if p.is_dir() else 0o600)
        for p in [new_home, *new_home.rglob("*")]
    )
    # The restored station works: bob opens the stored item with his keys there.
    bob = station.load_encryption_keys(
        station.Layout(new_home), "bob", PASSES["journalist bob's keys"]
    )
    item = (station.Layout(new_home).envelopes / "x1").read_bytes()
    assert crypto.open_bytes(item, [k.secret for k in bob])[1] == b"stored item"


def test_restore_refuses_a_wrong_key_a_wrong_passphrase_and_a_full_target(home, tmp_path):
    made = backup.backup_station(home, tmp_path / "b")
    stranger_home = tmp_path / "other"
    station.init_station(
        stranger_home, "zed", key_asker("zed passphrase 99"), now=NOW, memlimit=MEM
    )
    stranger = station.Layout(stranger_home).encryption_key("zed")
    with pytest.raises(StationError, match="not sealed to"):
        backup.restore_station(made.path, tmp_path / "r1", stranger, key_asker("zed passphrase 99"))
    alice = station.Layout(home).encryption_key("alice")
    with pytest.raises(StationError, match="wrong passphrase"):
        backup.restore_station(made.path, tmp_path / "r1", alice, key_asker("wrong passphrase"))
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    with pytest.raises(StationError, match="not empty"):
        backup.restore_station(made.path, full, alice, key_asker(PASSES["journalist alice's keys"]))
    assert not (tmp_path / "r1").exists()
    assert [p.name for p in tmp_path.iterdir() if ".restore-" in p.name] == []


def test_a_damaged_backup_leaves_nothing(home, tmp_path):
    made = backup.backup_station(home, tmp_path / "b")
    data = bytearray(made.path.read_bytes())
    data[len(data) // 2] ^= 1
    damaged = tmp_path / "damaged"
    damaged.write_bytes(bytes(data))
    alice = station.Layout(home).encryption_key("alice")
    with pytest.raises(StationError, match="damaged"):
        backup.restore_station(
            damaged, tmp_path / "r", alice, key_asker(PASSES["journalist alice's keys"])
        )
    assert not (tmp_path / "r").exists()
    assert [p.name for p in tmp_path.iterdir() if ".restore-" in p.name] == []


def _hostile(entries: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        record = tarfile.TarInfo("station.json")
        body = (
            b'{"type": "postern-station", "version": 1, "journalists": ["a"], "keyring_serial": 1}'
        )
        record.size = len(body)
        tar.addfile(record, io.BytesIO(body))
        for entry in entries:
            if isinstance(entry, tuple):
                info, content = entry
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                tar.addfile(entry)
    return buffer.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


HOSTILE: dict[str, list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]]] = {
    "dotdot": [(_info("../escape"), b"x")],
    "absolute": [(_info("/postern-test-escape"), b"x")],
    "inner dotdot": [(_info("keys/../../escape"), b"x")],
    "symlink": [_info("keys", tarfile.SYMTYPE, "/etc")],
    "hardlink": [_info("keys", tarfile.LNKTYPE, "station.json")],
    "device": [_info("dev", tarfile.CHRTYPE)],
    "fifo": [_info("fifo", tarfile.FIFOTYPE)],
    "duplicate": [(_info("station.json"), b"again")],
    "under a file": [(_info("station.json/x"), b"x")],
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_restore_refuses_hostile_archives(tmp_path, case):
    key = crypto.PrivateKey.generate(crypto.KeyKind.ENCRYPTION, "k")
    key_file = tmp_path / "k.key"
    key_file.write_bytes(crypto.dump_private_key(key, "key passphrase 1", memlimit=MEM))
    sealed = seal_bytes(
        _hostile(HOSTILE[case]), [key.public.key], Kind.FILE, backup.BACKUP_FILENAME
    )
    path = tmp_path / "hostile"
    path.write_bytes(sealed)
    target = tmp_path / "sub" / "restored"
    with pytest.raises(StationError):
        backup.restore_station(path, target, key_file, key_asker("key passphrase 1"))
    assert not target.exists()
    assert not (tmp_path / "escape").exists()
    assert not (tmp_path / "sub" / "escape").exists()
    assert [p.name for p in (tmp_path / "sub").iterdir()] == []


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        (b"[" * 20_000 + b"]" * 20_000, "nested more than 8 levels deep"),
        (
            b'{"type": "postern-station", "version": 1, "journalists": ["a"], '
            b'"keyring_serial": ' + b"7" * 4400 + b"}",
            "a number longer than 32 characters",
        ),
    ],
    ids=["deeply nested", "4400-digit number"],
)
def test_restore_refuses_a_hostile_station_record_with_one_line(tmp_path, record, problem):
    key = crypto.PrivateKey.generate(crypto.KeyKind.ENCRYPTION, "k")
    key_file = tmp_path / "k.key"
    key_file.write_bytes(crypto.dump_private_key(key, "key passphrase 1", memlimit=MEM))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("station.json")
        info.size = len(record)
        tar.addfile(info, io.BytesIO(record))
    path = tmp_path / "hostile"
    path.write_bytes(
        seal_bytes(buffer.getvalue(), [key.public.key], Kind.FILE, backup.BACKUP_FILENAME)
    )
    target = tmp_path / "sub" / "restored"
    with pytest.raises(StationError, match=f"not a valid station record: {problem}$"):
        backup.restore_station(path, target, key_file, key_asker("key passphrase 1"))
    assert not target.exists()
    assert [p.name for p in (tmp_path / "sub").iterdir()] == []


def test_a_sound_archive_made_elsewhere_restores(tmp_path):
    key = crypto.PrivateKey.generate(crypto.KeyKind.ENCRYPTION, "k")
    key_file = tmp_path / "k.key"
    key_file.write_bytes(crypto.dump_private_key(key, "key passphrase 1", memlimit=MEM))
    sealed = seal_bytes(
        _hostile([(_info("keys/a/b.txt"), b"deep")]), [key.public.key], Kind.FILE,
        backup.BACKUP_FILENAME,
    )  # fmt: skip
    path = tmp_path / "ok"
    path.write_bytes(sealed)
    result = backup.restore_station(path, tmp_path / "r", key_file, key_asker("key passphrase 1"))
    assert (tmp_path / "r" / "keys" / "a" / "b.txt").read_bytes() == b"deep"
    assert result.files == 2


def test_the_archive_inside_is_deterministic(home, tmp_path):
    one = backup.backup_station(home, tmp_path / "one").path.read_bytes()
    two = backup.backup_station(home, tmp_path / "two").path.read_bytes()
    assert one != two  # fresh file key and stanzas every time
    alice = station.load_encryption_keys(
        station.Layout(home), "alice", PASSES["journalist alice's keys"]
    )
    secrets = [k.secret for k in alice]
    meta, first = crypto.open_bytes(one, secrets)
    assert crypto.open_bytes(two, secrets)[1] == first
    assert (meta.kind, meta.filename, meta.media_type) == (
        Kind.FILE, backup.BACKUP_FILENAME, "application/x-tar",
    )  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = tar.getmembers()
    assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in members)
    assert [m.name for m in members] == sorted(
        (m.name for m in members), key=lambda n: n.split("/")
    )
    assert "station.json" in [m.name for m in members]


def test_a_home_with_a_link_in_it_is_not_backed_up(home, tmp_path):
    (home / "store" / "link").symlink_to("/etc/passwd")
    with pytest.raises(StationError, match="not a regular file or directory"):
        backup.backup_station(home, tmp_path / "b")
    assert list(tmp_path.glob("b*")) == []
    assert list(tmp_path.glob(".b.*")) == []
