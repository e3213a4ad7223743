"""The station commands: server pin, import, ledger verify and report, export-outbound."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

from crypto import dump_public_key
from journalist_ui import cli
from tests.journalist_ui.storekit import (
    Entry,
    FakeSource,
    message,
    open_home,
    server_key,
    write_bundle,
)
from tests.support.cli import MEMLIMIT, PASSPHRASE
from tests.support.homes import initialized_home


def run(*args: str | Path, typed: str | None = None) -> int:
    argv = [str(a) for a in args]
    if typed is None:
        return cli.main(argv)
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as pipe:
        pipe.write(typed.encode("utf-8") + b"\n")
    try:
        return cli.main([*argv, "--passphrase-fd", str(read_end)])
    finally:
        os.close(read_end)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return initialized_home(tmp_path / "home")


def test_init_reports_the_store(tmp_path, capsys):
    path = tmp_path / "home"
    assert run("init", "--home", path, "--journalist", "alice",
               "--argon2-memlimit", str(MEMLIMIT), typed=PASSPHRASE) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "store/key.envelope" in out
    assert "store/station.db" in out
    assert "journalist server pin" in out


def test_server_pin(home, tmp_path, capsys):
    key, other = server_key(), server_key()
    key_file, other_file = tmp_path / "server.pub", tmp_path / "other.pub"
    key_file.write_bytes(dump_public_key(key.public))
    other_file.write_bytes(dump_public_key(other.public))
    assert run("server", "pin", key_file, "--home", home) == 0
    assert key.public.fingerprint in capsys.readouterr().out
    assert run("server", "pin", key_file, "--home", home) == 0
    assert "already pinned" in capsys.readouterr().out
    assert run("server", "pin", other_file, "--home", home) == 1
    err = capsys.readouterr().err
    assert "a different server key is already pinned" in err
    assert key.public.fingerprint in err
    assert run("server", "pin", other_file, "--home", home, "--replace") == 0
    captured = capsys.readouterr()
    assert "warning: replaced the pinned server key" in captured.err
    assert other.public.fingerprint in captured.out
    not_a_server = tmp_path / "root.pub"
    not_a_server.write_bytes((home / "outbox" / "root.pub").read_bytes())
    assert run("server", "pin", not_a_server, "--home", home, "--replace") == 1
    assert "not the server signing key" in capsys.readouterr().err


@pytest.mark.slow
def test_import_verify_report_and_export(home, tmp_path, capsys):
    key = server_key()
    (tmp_path / "server.pub").write_bytes(dump_public_key(key.public))
    assert run("server", "pin", tmp_path / "server.pub", "--home", home) == 0
    source = FakeSource()
    bundle = write_bundle(
        tmp_path / "in.bundle",
        key,
        [
            Entry("5", source, "message", message(home, "hi")),
            Entry("6", source, "message", message(home, "again")),
        ],
    )
    capsys.readouterr()
    assert run("import", bundle, "--home", home, typed=PASSPHRASE) == 0
    captured = capsys.readouterr()
    assert "new items:        2" in captured.out
    assert "new sources:      1" in captured.out
    assert "100%" in captured.err
    assert run("import", bundle, "--home", home, typed=PASSPHRASE) == 0
    assert "already present:  2" in capsys.readouterr().out

    assert run("ledger", "verify", "--home", home, typed=PASSPHRASE) == 0
    assert "2 records, hash chain intact" in capsys.readouterr().out
    report = tmp_path / "ledger.txt"
    assert run("ledger", "report", "--out", report, "--home", home, typed=PASSPHRASE) == 0
    assert "import  by alice" in report.read_text()
    assert report.stat().st_mode & 0o777 == 0o600
    assert run("ledger", "report", "--out", report, "--home", home, typed=PASSPHRASE) == 2
    assert "exists" in capsys.readouterr().err

    assert run("export-outbound", "--to", tmp_path / "usb", "--home", home, typed=PASSPHRASE) == 0
    out = capsys.readouterr().out
    assert "acknowledged:     2" in out
    assert len(list((tmp_path / "usb").glob("outbound-*.bundle"))) == 1
    assert run("export-outbound", "--to", tmp_path / "usb", "--home", home, typed=PASSPHRASE) == 0
    assert "Nothing to send" in capsys.readouterr().out

    unlocked = open_home(home)
    try:
        with unlocked.store.session() as session:
            session.execute(text("UPDATE ledger SET journalist = 'bob' WHERE seq = 1"))
    finally:
        unlocked.lock()
    assert run("ledger", "verify", "--home", home, typed=PASSPHRASE) == 1
    assert "does not verify: record 1 was changed" in capsys.readouterr().err


def test_errors_are_one_line(home, tmp_path, capsys):
    assert run("import", tmp_path / "none.bundle", "--home", home, typed="wrong passphrase!") == 1
    assert capsys.readouterr().err == (
        "journalist: error: wrong passphrase for journalist alice's keys\n"
    )
    assert run("import", tmp_path / "none.bundle", "--home", home, typed=PASSPHRASE) == 1
    assert "no server key is pinned" in capsys.readouterr().err
    assert run("import", tmp_path / "x", "--home", home, "--journalist", "bob",
               typed=PASSPHRASE) == 1  # fmt: skip
    assert "no journalist 'bob'" in capsys.readouterr().err
