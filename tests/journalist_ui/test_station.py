"""`journalist init`: the station home, its keys, its first keyring."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crypto import (
    KeyKind,
    PassphraseError,
    load_private_key,
    load_public_key,
    verify_keyring,
)
from journalist_ui import cli, passphrase, station
from journalist_ui.errors import StationError
from tests.support.cli import MEMLIMIT, PASSPHRASE

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

EXPECTED_DIRS = {"", "keys", "keys/alice", "keyrings", "outbox", "store", "store/envelopes"}
EXPECTED_FILES = {
    "station.json",
    "keys/root.key",
    "keys/alice/encryption.key",
    "keys/alice/signing.key",
    "keyrings/keyring-1.json",
    "outbox/keyring.json",
    "outbox/root.pub",
    "store/key.envelope",
    "store/station.db",
}


def init(home: Path, typed: str = PASSPHRASE, **kwargs: str) -> station.InitResult:
    return station.init_station(
        home, "alice", lambda _what: typed, now=NOW, memlimit=MEMLIMIT, **kwargs
    )


def passphrase_pipe(text: str) -> int:
    """A readable fd that yields text and a newline (the caller closes it)."""
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as pipe:
        pipe.write(text.encode("utf-8") + b"\n")
    return read_end


def run_init(home: Path, *extra: str, typed: str | None = PASSPHRASE) -> int:
    args = ["init", "--home", str(home), "--journalist", "alice"]
    args += ["--argon2-memlimit", str(MEMLIMIT), *extra]
    if typed is None:
        return cli.main(args)
    fd = passphrase_pipe(typed)
    try:
        return cli.main([*args, "--passphrase-fd", str(fd)])
    finally:
        os.close(fd)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_the_layout_with_private_modes(tmp_path):
    home = tmp_path / "home"
    init(home)
    entries = {str(p.relative_to(home)) for p in home.rglob("*")}
    assert entries == (EXPECTED_DIRS - {""}) | EXPECTED_FILES
    for name in EXPECTED_DIRS:
        assert (home / name).is_dir()
        assert mode(home / name) == 0o700, name
    for name in EXPECTED_FILES:
        assert (home / name).is_file()
        assert mode(home / name) == 0o600, name


def test_station_record(tmp_path):
    home = tmp_path / "home"
    init(home)
    record = json.loads((home / "station.json").read_text())
    assert record == {
        "type": "postern-station",
        "version": 1,
        "journalists": ["alice"],
        "keyring_serial": 1,
    }
    assert station.load_station(home) == station.StationRecord(("alice",), 1)


def test_init_takes_over_an_empty_directory(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    init(home)
    assert mode(home) == 0o700
    assert (home / "station.json").is_file()


def test_init_refuses_a_non_empty_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    with pytest.raises(StationError, match="not empty"):
        init(home)
    assert [p.name for p in home.iterdir()] == ["notes.txt"]
    assert (home / "notes.txt").read_text() == "mine"


def test_init_refuses_a_file_as_home(tmp_path):
    home = tmp_path / "home"
    home.write_text("")
    with pytest.raises(StationError, match="not a directory"):
        init(home)


def test_cli_refuses_a_non_empty_home(tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    (home / "x").write_text("")
    assert run_init(home) == 1
    assert "is not empty" in capsys.readouterr().err


def test_short_passphrase_is_refused(tmp_path, capsys):
    home = tmp_path / "home"
    assert run_init(home, typed="eleven char") == 1
    err = capsys.readouterr().err
    assert "at least 12 characters" in err
    assert err.count("\n") == 1
    assert not home.exists()
    with pytest.raises(passphrase.PassphraseInputError):
        init(home, typed="short")
    assert not home.exists()


def test_matching_prompts_are_accepted(tmp_path, monkeypatch):
    prompts = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return PASSPHRASE

    monkeypatch.setattr(passphrase, "terminal_available", lambda: True)
    monkeypatch.setattr("getpass.getpass", fake_getpass)
    home = tmp_path / "home"
    assert run_init(home, typed=None) == 0
    assert len(prompts) == 2
    key = load_private_key((home / "keys" / "root.key").read_bytes(), PASSPHRASE)
    assert key.kind is KeyKind.ROOT


def test_mismatching_prompts_are_refused(tmp_path, monkeypatch, capsys):
    answers = iter([PASSPHRASE, PASSPHRASE + "!"])
    monkeypatch.setattr(passphrase, "terminal_available", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    home = tmp_path / "home"
    assert run_init(home, typed=None) == 1
    assert "do not match" in capsys.readouterr().err
    assert not home.exists()


def test_short_prompted_passphrase_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(passphrase, "terminal_available", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "too short")
    home = tmp_path / "home"
    assert run_init(home, typed=None) == 1
    assert "at least 12 characters" in capsys.readouterr().err
    assert not home.exists()


def test_without_terminal_or_fd_init_fails_clearly(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(passphrase, "terminal_available", lambda: False)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": pytest.fail("must not prompt"))
    home = tmp_path / "home"
    assert run_init(home, typed=None) == 2
    assert "--passphrase-fd" in capsys.readouterr().err
    assert not home.exists()


@pytest.mark.parametrize("name", ["", "Alice", "al ice", "a" * 33, "../x", "é"])
def test_invalid_journalist_names_are_usage_errors(tmp_path, name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["init", "--home", str(tmp_path / "h"), "--journalist", name])
    assert exit_info.value.code == 2
    assert "journalist name" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["1024", str(64 * 1024 * 1024 - 1024), "67108865", "lots"])
def test_bad_memlimits_are_usage_errors(tmp_path, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(
            ["init", "--home", str(tmp_path / "h"), "--journalist", "a", "--argon2-memlimit", value]
        )
    assert exit_info.value.code == 2
    assert "--argon2-memlimit" in capsys.readouterr().err


def test_bad_label_is_refused_before_anything_is_written(tmp_path):
    home = tmp_path / "home"
    with pytest.raises(StationError, match="label"):
        init(home, label="tab\there")
    assert not home.exists()


def test_outbox_keyring_verifies_and_names_the_journalist_key(tmp_path):
    home = tmp_path / "home"
    init(home, label="Alice (station 1)")
    root = load_public_key((home / "outbox" / "root.pub").read_bytes())
    assert root.kind is KeyKind.ROOT
    keyring_bytes = (home / "outbox" / "keyring.json").read_bytes()
    assert keyring_bytes == (home / "keyrings" / "keyring-1.json").read_bytes()
    keyring = verify_keyring(keyring_bytes, root.key)
    manifest = keyring.manifest
    encryption = load_private_key(
        (home / "keys" / "alice" / "encryption.key").read_bytes(), PASSPHRASE
    )
    signing = load_private_key((home / "keys" / "alice" / "signing.key").read_bytes(), PASSPHRASE)
    assert manifest.serial == 1
    assert manifest.issued == NOW
    assert manifest.recipient_keys == [encryption.public.key]
    assert [(e.journalist, e.label) for e in manifest.recipients] == [
        ("alice", "Alice (station 1)")
    ]
    assert [e.public_key for e in manifest.signing_keys] == [signing.public.key]
    assert manifest.retired == ()
    assert manifest.transfer_clients == ()


def test_printed_fingerprint_matches_root_pub(tmp_path, capsys):
    home = tmp_path / "home"
    assert run_init(home) == 0
    out = capsys.readouterr().out
    root = load_public_key((home / "outbox" / "root.pub").read_bytes())
    root_private = load_private_key((home / "keys" / "root.key").read_bytes(), PASSPHRASE)
    assert root_private.public.key == root.key
    assert f"  {root.fingerprint}\n" in out
    for name in EXPECTED_FILES:
        assert name in out
    assert "outbox" in out
    assert "dropbox seal" in out
    assert "journalist server pin" in out
    assert "journalist import" in out


def test_keys_open_with_the_passphrase_and_not_another(tmp_path):
    home = tmp_path / "home"
    init(home)
    expected = {
        "keys/root.key": KeyKind.ROOT,
        "keys/alice/encryption.key": KeyKind.ENCRYPTION,
        "keys/alice/signing.key": KeyKind.SIGNING,
    }
    for name, kind in expected.items():
        data = (home / name).read_bytes()
        assert b"argon2-memlimit: 67108864\n" in data
        assert load_private_key(data, PASSPHRASE).kind is kind
        with pytest.raises(PassphraseError):
            load_private_key(data, PASSPHRASE + " ")


def test_wrong_passphrase_is_a_station_error(tmp_path):
    home = tmp_path / "home"
    init(home)
    layout = station.Layout(home)
    with pytest.raises(StationError, match="wrong passphrase for journalist alice's keys"):
        station.load_encryption_keys(layout, "alice", "not the passphrase")
    (key,) = station.load_encryption_keys(layout, "alice", PASSPHRASE)
    assert key.kind is KeyKind.ENCRYPTION


def test_passphrase_fd_reads_one_line(tmp_path):
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as pipe:
        pipe.write("pässphrase with spaces \nsecond line\n".encode())
    try:
        assert passphrase.read_from_fd(read_end) == "pässphrase with spaces "
    finally:
        os.close(read_end)


def test_passphrase_fd_empty_is_refused():
    read_end, write_end = os.pipe()
    os.close(write_end)
    try:
        with pytest.raises(passphrase.PassphraseInputError, match="empty"):
            passphrase.read_from_fd(read_end)
    finally:
        os.close(read_end)
