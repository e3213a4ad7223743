"""`dropbox init` and `dropbox keyring install`: the data directory and the pinned root."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crypto import (
    Algorithm,
    KeyKind,
    PrivateKey,
    dump_public_key,
    fingerprint,
    load_private_key,
    load_public_key,
    rotate_root,
)
from dropbox.errors import DropboxError
from dropbox.instance import InstanceLoader, install_keyring, load_instance
from dropbox.instance.create import init_instance
from tests.support.cli import DROPBOX, assert_one_line_error, run_tool
from tests.support.database import DATABASES
from tests.support.team import Team

ROTATED = datetime(2027, 1, 1, tzinfo=UTC)


@pytest.fixture
def team():
    return Team()


@pytest.fixture
def root_pub(team, tmp_path):
    path = tmp_path / "root.pub"
    path.write_bytes(dump_public_key(team.root.public))
    return path


@pytest.fixture
def data_dir(team, root_pub, tmp_path):
    directory = tmp_path / "data"
    done = run_tool(DROPBOX, "init", "--data-dir", directory, "--root", root_pub)
    assert done.returncode == 0, done.stderr
    return directory


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def install(data_dir: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return run_tool(DROPBOX, "keyring", "install", "--data-dir", data_dir, path)


def pinned_root(data_dir: Path) -> bytes:
    document = json.loads((data_dir / "instance.json").read_text())
    return base64.b64decode(document["root"])


def installed_serial(data_dir: Path) -> int | None:
    keyring = load_instance(data_dir).keyring
    return None if keyring is None else keyring.serial


# -- init --------------------------------------------------------------------------------------


def test_init_creates_the_data_directory(team, root_pub, tmp_path):
    directory = tmp_path / "data"
    done = run_tool(DROPBOX, "init", "--data-dir", directory, "--root", root_pub)
    assert done.returncode == 0, done.stderr
    assert fingerprint(Algorithm.ED25519, team.root.public.key) in done.stdout
    assert mode(directory) == 0o700
    # On PostgreSQL (POSTERN_DATABASE_URL) the database is not in the directory.
    database = [] if DATABASES.postgresql else ["db.sqlite", "db.sqlite-journal"]
    assert sorted(p.name for p in directory.iterdir()) == sorted([
        "blobs", *database, "instance.json", "server.key", "server.pub", "uploads",
    ])  # fmt: skip
    for name in ("blobs", "uploads"):
        assert (directory / name).is_dir()
        assert mode(directory / name) == 0o700
    for name in ("server.key", *database, "instance.json"):
        assert mode(directory / name) == 0o600, name

    document = json.loads((directory / "instance.json").read_text())
    assert set(document) == {"type", "version", "instance_salt", "codename_argon2", "root"}
    assert (document["type"], document["version"]) == ("postern-instance", 1)
    assert len(base64.b64decode(document["instance_salt"])) == 16
    assert document["codename_argon2"] == {"opslimit": 3, "memlimit": 64 * 1024 * 1024}
    assert base64.b64decode(document["root"]) == team.root.public.key

    key_text = (directory / "server.key").read_bytes()
    assert b"protection: none\n" in key_text
    key = load_private_key(key_text, None)
    assert key.kind is KeyKind.SERVER
    assert load_public_key((directory / "server.pub").read_bytes()) == key.public

    instance = load_instance(directory)
    assert instance.keyring is None
    assert instance.pinned_root == team.root.public.key
    assert instance.server_key == key
    assert instance.root_fingerprint is None


def test_init_takes_the_argon2_costs_from_the_environment(root_pub, tmp_path):
    directory = tmp_path / "data"
    env = {**os.environ, "POSTERN_ARGON2_OPSLIMIT": "4"}
    done = run_tool(DROPBOX, "init", "--data-dir", directory, "--root", root_pub, env=env)
    assert done.returncode == 0, done.stderr
    assert load_instance(directory).codename_params.opslimit == 4


def test_init_refuses_an_initialized_directory(data_dir, root_pub):
    before = {p.name: p.read_bytes() for p in data_dir.iterdir() if p.is_file()}
    done = run_tool(DROPBOX, "init", "--data-dir", data_dir, "--root", root_pub)
    assert_one_line_error(done, 1, "already an initialized")
    assert {p.name: p.read_bytes() for p in data_dir.iterdir() if p.is_file()} == before


def test_init_refuses_a_directory_that_is_not_empty(root_pub, tmp_path):
    directory = tmp_path / "data"
    directory.mkdir()
    (directory / "notes.txt").write_text("mine")
    done = run_tool(DROPBOX, "init", "--data-dir", directory, "--root", root_pub)
    assert_one_line_error(done, 1, "not empty")
    assert [p.name for p in directory.iterdir()] == ["notes.txt"]


def test_init_accepts_an_empty_directory(root_pub, tmp_path):
    directory = tmp_path / "data"
    directory.mkdir(mode=0o755)
    done = run_tool(DROPBOX, "init", "--data-dir", directory, "--root", root_pub)
    assert done.returncode == 0, done.stderr
    assert mode(directory) == 0o700


def test_init_needs_a_root_public_key(team, tmp_path):
    journalist = tmp_path / "alice.pub"
    journalist.write_bytes(dump_public_key(team.journalist.public))
    done = run_tool(DROPBOX, "init", "--data-dir", tmp_path / "d", "--root", journalist)
    assert_one_line_error(done, 1, "not the team root key")
    missing = run_tool(DROPBOX, "init", "--data-dir", tmp_path / "d", "--root", tmp_path / "x")
    assert_one_line_error(missing, 1, "does not exist")
    assert not (tmp_path / "d").exists()


# -- keyring install ---------------------------------------------------------------------------


def test_install_a_keyring(team, data_dir, tmp_path):
    keyring = team.keyring(1)
    done = install(data_dir, write(tmp_path, "k1.json", keyring))
    assert done.returncode == 0, done.stderr
    assert "serial 1" in done.stdout
    assert "alice (Alice)" in done.stdout
    assert (data_dir / "keyring.json").read_bytes() == keyring
    assert mode(data_dir / "keyring.json") == 0o600
    instance = load_instance(data_dir)
    assert installed_serial(data_dir) == 1
    assert instance.root_fingerprint == fingerprint(Algorithm.ED25519, team.root.public.key)
    # Nothing is left behind by the atomic write.
    assert not [p for p in data_dir.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_a_rollback_is_refused(team, data_dir, tmp_path):
    assert install(data_dir, write(tmp_path, "k2.json", team.keyring(2))).returncode == 0
    done = install(data_dir, write(tmp_path, "k1.json", team.keyring(1)))
    assert_one_line_error(done, 1, "serial 1", "older than the installed serial 2", "rollback")
    assert installed_serial(data_dir) == 2


@pytest.mark.slow
def test_the_same_serial_is_refused(team, data_dir, tmp_path):
    assert install(data_dir, write(tmp_path, "k3.json", team.keyring(3))).returncode == 0
    replay = install(data_dir, write(tmp_path, "k3-again.json", team.keyring(3)))
    assert_one_line_error(replay, 1, "serial 3", "already installed", "replay")
    assert installed_serial(data_dir) == 3


@pytest.mark.slow
def test_a_tampered_keyring_is_refused(team, data_dir, tmp_path):
    keyring = json.loads(team.keyring(1))
    keyring["manifest"] = keyring["manifest"].replace('"serial":1', '"serial":9')
    done = install(data_dir, write(tmp_path, "tampered.json", json.dumps(keyring).encode()))
    assert_one_line_error(done, 1, "does not verify")
    broken = install(data_dir, write(tmp_path, "broken.json", b"{not json"))
    assert_one_line_error(broken, 1, "not a valid signed keyring")
    assert not (data_dir / "keyring.json").exists()


def test_a_keyring_of_another_root_is_refused(team, data_dir, tmp_path):
    stranger = PrivateKey.generate(KeyKind.ROOT, "someone else")
    done = install(data_dir, write(tmp_path, "other.json", team.keyring(5, root=stranger)))
    assert_one_line_error(done, 1, "not issued by the pinned team root")
    assert not (data_dir / "keyring.json").exists()


@pytest.mark.slow
def test_a_root_rotation_is_accepted_and_the_pin_moves(team, data_dir, tmp_path):
    assert install(data_dir, write(tmp_path, "k1.json", team.keyring(1))).returncode == 0
    new_root = PrivateKey.generate(KeyKind.ROOT, "team root 2")
    rotation = rotate_root(team.root, new_root, ROTATED)
    rotated = team.keyring(2, root=new_root, rotations=(rotation,))
    done = install(data_dir, write(tmp_path, "k2.json", rotated))
    assert done.returncode == 0, done.stderr
    assert "the pin moved from" in done.stdout
    assert pinned_root(data_dir) == new_root.public.key
    assert load_instance(data_dir).pinned_root == new_root.public.key

    # The new root alone (no rotations carried any more) is now enough...
    plain = team.keyring(3, root=new_root)
    assert install(data_dir, write(tmp_path, "k3.json", plain)).returncode == 0
    # ...and the old root can no longer issue keyrings.
    old = install(data_dir, write(tmp_path, "k4.json", team.keyring(4)))
    assert_one_line_error(old, 1, "not issued by the pinned team root")
    assert installed_serial(data_dir) == 3


def test_a_crash_between_the_two_writes_is_harmless(team, data_dir):
    """keyring.json written, instance.json not yet: the chain still names the old pin."""
    new_root = PrivateKey.generate(KeyKind.ROOT, "team root 2")
    rotated = team.keyring(2, root=new_root, rotations=(rotate_root(team.root, new_root, ROTATED),))
    (data_dir / "keyring.json").write_bytes(rotated)
    assert pinned_root(data_dir) == team.root.public.key
    assert load_instance(data_dir).pinned_root == new_root.public.key
    install_keyring(data_dir, team.keyring(3, root=new_root))
    assert pinned_root(data_dir) == new_root.public.key


def test_an_installed_keyring_that_no_longer_verifies_is_refused_on_load(team, data_dir):
    stranger = PrivateKey.generate(KeyKind.ROOT, "someone else")
    (data_dir / "keyring.json").write_bytes(team.keyring(1, root=stranger))
    with pytest.raises(DropboxError, match="does not verify against the pinned team root"):
        load_instance(data_dir)


def test_install_needs_an_initialized_directory_and_a_file(team, tmp_path):
    keyring = write(tmp_path, "k1.json", team.keyring(1))
    done = install(tmp_path / "nowhere", keyring)
    assert_one_line_error(done, 1, "not an initialized Postern data directory", "dropbox init")
    data_dir = tmp_path / "data"
    init_instance(data_dir, team.root.public.key)
    missing = install(data_dir, tmp_path / "missing.json")
    assert_one_line_error(missing, 1, "does not exist")


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("root"),
        lambda d: d.update(version=2),
        lambda d: d.update(instance_salt="AAAA"),
        lambda d: d["codename_argon2"].update(memlimit=1024),
        lambda d: d.update(extra=1),
    ],
)
def test_a_damaged_instance_file_is_one_clear_error(data_dir, damage):
    path = data_dir / "instance.json"
    document = json.loads(path.read_text())
    damage(document)
    path.write_text(json.dumps(document))
    with pytest.raises(DropboxError) as error:
        load_instance(data_dir)
    assert "instance.json is damaged" in str(error.value)
    assert "\n" not in str(error.value)


def test_the_loader_reads_the_instance_again_when_the_keyring_changes(team, data_dir):
    loader = InstanceLoader(data_dir)
    first = loader.current()
    assert first.keyring is None
    assert loader.current() is first
    install_keyring(data_dir, team.keyring(1))
    second = loader.current()
    assert second.keyring is not None
    assert second.keyring.serial == 1
    assert loader.current() is second
    install_keyring(data_dir, team.keyring(2))
    third = loader.current()
    assert third.keyring is not None
    assert third.keyring.serial == 2
