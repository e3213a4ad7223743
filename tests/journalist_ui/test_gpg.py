"""The python-gnupg adapter and OpenPGP exports, with the real gpg."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from journalist_ui import files, gpg
from journalist_ui.errors import StationError
from tests.conftest import require_tool


@dataclass
class Plain:
    data: bytes
    filename: str | None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def chunks(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), 65536):
            yield self.data[start : start + 65536]


def _gpg(home: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [require_tool("gpg"), "--homedir", str(home), "--batch", "--yes", *args],
        input=stdin,
        capture_output=True,
        check=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def colleague(tmp_path_factory):
    """A colleague's GnuPG home with a key pair; yields (home, fingerprint, armored key)."""
    home = tmp_path_factory.mktemp("colleague-gnupg")
    home.chmod(0o700)
    _gpg(
        home,
        "--passphrase",
        "",
        "--quick-gen-key",
        "Colleague <colleague@example.org>",
        "ed25519",
        "sign",
        "never",
    )
    listing = _gpg(home, "--with-colons", "--list-keys").stdout.decode()
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr"))
    _gpg(home, "--passphrase", "", "--quick-add-key", fpr, "cv25519", "encr", "never")
    armored = _gpg(home, "--armor", "--export", fpr).stdout.decode()
    yield home, fpr, armored
    subprocess.run(
        [require_tool("gpgconf"), "--homedir", str(home), "--kill", "all"], check=False, timeout=30
    )


def test_inspect_shows_fingerprint_and_user_id(colleague):
    _home, fpr, armored = colleague
    key = gpg.inspect_key(armored)
    assert key.fingerprint == fpr
    assert key.user_ids == ("Colleague <colleague@example.org>",)


def test_export_encrypted_decrypts_to_the_original(colleague, tmp_path):
    home, _fpr, armored = colleague
    data = os.urandom(300_000)
    key = gpg.inspect_key(armored)
    out = tmp_path / "out"
    out.mkdir()
    path = files.export_encrypted(Plain(data, "scan.jpg"), out, key)
    assert path.name == "scan.jpg.gpg"
    assert path.stat().st_mode & 0o777 == 0o600
    assert data not in path.read_bytes()
    decrypted = _gpg(home, "--decrypt", str(path)).stdout
    assert decrypted == data
    again = files.export_encrypted(Plain(data, "scan.jpg"), out, key)
    assert again.name == "scan.jpg (1).gpg"


def test_a_key_that_changed_since_confirmation_is_refused(colleague, tmp_path):
    _home, _fpr, armored = colleague
    forged = gpg.RecipientKey("0" * 40, (), armored)
    with pytest.raises(StationError, match="changed since its fingerprint was confirmed"):
        files.export_encrypted(Plain(b"x", "a"), tmp_path, forged)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "paste the colleague's OpenPGP public key"),
        ("hello", "no OpenPGP public key found"),
        ("-----BEGIN PGP PRIVATE KEY BLOCK-----\n", "that is a private key"),
    ],
)
def test_bad_keys_are_clear_errors(text, message):
    require_tool("gpg")
    with pytest.raises(StationError, match=message):
        gpg.inspect_key(text)


def test_a_sign_only_key_is_refused(tmp_path):
    home = tmp_path / "g"
    home.mkdir(mode=0o700)
    _gpg(
        home,
        "--passphrase",
        "",
        "--quick-gen-key",
        "Signer <s@example.org>",
        "ed25519",
        "sign",
        "never",
    )
    armored = _gpg(home, "--armor", "--export").stdout.decode()
    subprocess.run(
        [require_tool("gpgconf"), "--homedir", str(home), "--kill", "all"], check=False, timeout=30
    )
    with pytest.raises(StationError, match="cannot be used for encryption"):
        gpg.inspect_key(armored)


def test_two_keys_in_one_block_are_refused(colleague, tmp_path):
    _home, _fpr, armored = colleague
    home = tmp_path / "g"
    home.mkdir(mode=0o700)
    _gpg(
        home,
        "--passphrase",
        "",
        "--quick-gen-key",
        "Other <o@example.org>",
        "ed25519",
        "default",
        "never",
    )
    other = _gpg(home, "--armor", "--export").stdout.decode()
    subprocess.run(
        [require_tool("gpgconf"), "--homedir", str(home), "--kill", "all"], check=False, timeout=30
    )
    with pytest.raises(StationError, match="exactly one"):
        gpg.inspect_key(armored + other)
