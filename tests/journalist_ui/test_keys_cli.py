"""`journalist keys`, `journalist backup` and `journalist restore` through the console script."""

from __future__ import annotations

from pathlib import Path

import pytest

from crypto import load_public_key, verify_keyring
from tests.support.cli import (
    DROPBOX,
    JOURNALIST,
    MEMLIMIT,
    PASSPHRASE,
    assert_one_line_error,
    run_tool,
)
from tests.support.homes import initialized_home

BOB = "bob's own passphrase"
NEW_ROOT = "the new root passphrase"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return initialized_home(tmp_path / "home")


def keys(home: Path, *args: str | Path, passphrases: list[str] | None = None):
    joined = "\n".join(passphrases) if passphrases else None
    return run_tool(JOURNALIST, "keys", *args, "--home", home, passphrase=joined)


@pytest.mark.slow
def test_a_key_lifecycle_through_the_command(home, tmp_path):
    root = load_public_key((home / "outbox" / "root.pub").read_bytes()).key
    mem = ["--argon2-memlimit", str(MEMLIMIT)]
    # The root's passphrase, then alice's (the only journalist re-seals the store key), then bob's.
    done = keys(home, "add-journalist", "bob", *mem, passphrases=[PASSPHRASE, PASSPHRASE, BOB])
    assert done.returncode == 0, done.stderr
    assert "Issued keyring serial 2" in done.stdout
    assert "recipients:       alice, bob" in done.stdout

    done = keys(home, "rotate-key", "bob", *mem, passphrases=[BOB, PASSPHRASE])
    assert done.returncode == 0, done.stderr
    assert "retired keys:     1" in done.stdout

    out = tmp_path / "transfer"
    done = keys(home, "add-transfer-client", "laptop", "--out", out, "--no-passphrase",
                passphrases=[PASSPHRASE])  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "onion-auth.key", "postern-api.auth_private", "transfer.key",
    ]  # fmt: skip

    done = keys(home, "rotate-root", *mem, passphrases=[PASSPHRASE, NEW_ROOT])
    assert done.returncode == 0, done.stderr
    signed = verify_keyring((home / "outbox" / "keyring.json").read_bytes(), root)
    assert signed.serial == 5
    assert len(signed.rotations) == 1
    assert [c.label for c in signed.manifest.transfer_clients] == ["laptop"]

    refused = keys(home, "revoke-journalist", "bob", passphrases=[NEW_ROOT])
    assert_one_line_error(refused, 1, "--as NAME")
    done = keys(home, "revoke-journalist", "bob", "--as", "alice",
                passphrases=[NEW_ROOT, PASSPHRASE])  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "The store key is no longer sealed to them." in done.stdout
    assert "recipients:       alice\n" in done.stdout

    listing = keys(home, "list")
    assert listing.returncode == 0, listing.stderr
    assert (
        listing.stdout.count("fingerprint  ") == 9
    )  # root, retired root, alice x2, bob x3, transfer x2
    assert "revoked encryption (bob)" in listing.stdout

    kit = tmp_path / "kit.html"
    assert keys(home, "recovery-kit", "--out", kit).returncode == 0
    assert "Postern station recovery kit" in kit.read_text()

    backup = tmp_path / "station.backup"
    done = run_tool(JOURNALIST, "backup", "--home", home, "--to", backup)
    assert done.returncode == 0, done.stderr
    restored = tmp_path / "restored"
    done = run_tool(JOURNALIST, "restore", backup, "--to", restored, "--key-file",
                    home / "keys" / "alice" / "encryption.key", passphrase=PASSPHRASE)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (restored / "keys" / ".revoked").is_dir()

    refused = keys(home, "destroy-retired", "--confirm", "yes")
    assert_one_line_error(refused, 1, "not confirmed")
    done = keys(home, "destroy-retired", "--confirm", "destroy", passphrases=[PASSPHRASE])
    assert done.returncode == 0, done.stderr
    assert "Destroyed 4 key file(s)." in done.stdout  # bob's 3, the old root
    assert "key-destroy" in done.stdout
    verified = run_tool(JOURNALIST, "ledger", "verify", "--home", home, passphrase=PASSPHRASE)
    assert verified.returncode == 0, verified.stderr
    assert "The evidence ledger verifies: 1 records" in verified.stdout
    report = tmp_path / "ledger.txt"
    done = run_tool(JOURNALIST, "ledger", "report", "--home", home, "--out", report,
                    passphrase=PASSPHRASE)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "key-destroy  by alice" in report.read_text()
    assert keys(home, "list").stdout.count("fingerprint  ") == 5


@pytest.mark.slow
def test_errors_are_one_line(home):
    assert_one_line_error(
        keys(home, "revoke-journalist", "alice", passphrases=[PASSPHRASE]), 1, "only journalist"
    )
    assert_one_line_error(
        keys(home, "add-journalist", "bob", passphrases=["wrong passphrase"]), 1, "wrong passphrase"
    )
    assert_one_line_error(keys(home, "rewrap", "--journalist", "zed", passphrases=["x"]), 1, "zed")


@pytest.mark.slow
def test_init_prints_next_steps_that_exist(tmp_path):
    home = tmp_path / "fresh"
    done = run_tool(
        JOURNALIST, "init", "--home", home, "--journalist", "alice",
        "--argon2-memlimit", str(MEMLIMIT), passphrase=PASSPHRASE,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "later version" not in out
    steps = out[out.index("Next steps:") :]
    expected = [
        "dropbox init --data-dir DIR --root root.pub",
        "dropbox keyring install --data-dir DIR keyring.json",
        f"journalist server pin server.pub --home {home}",
        f"journalist import BUNDLE --home {home}",
        f"journalist ui --home {home}",
    ]
    at = [steps.index(command) for command in expected]
    assert at == sorted(at)
    # Each command named exists with the options the step gives it.
    for tool, argv, options in (
        (DROPBOX, ("init",), ("--data-dir", "--root")),
        (DROPBOX, ("keyring", "install"), ("--data-dir",)),
        (JOURNALIST, ("server", "pin"), ("--home",)),
        (JOURNALIST, ("import",), ("--home",)),
        (JOURNALIST, ("ui",), ("--home",)),
    ):
        helped = run_tool(tool, *argv, "--help")
        assert helped.returncode == 0, helped.stderr
        assert all(option in helped.stdout for option in options), (argv, helped.stdout)
