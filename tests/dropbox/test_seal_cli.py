"""`dropbox seal`, end to end through the installed console scripts."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from crypto import (
    KeyKind,
    Kind,
    PrivateKey,
    dump_private_key,
    dump_public_key,
    open_bytes,
    parse_header,
    sealed_to,
)
from tests.support.cli import (
    DROPBOX,
    JOURNALIST,
    MEMLIMIT,
    PASSPHRASE,
    assert_one_line_error,
    files_under,
    run_tool,
)
from tests.support.team import Team


@dataclass(frozen=True)
class TeamFiles:
    """A team of two journalists, its keyring and root public key written to files."""

    root: PrivateKey
    journalists: tuple[PrivateKey, ...]
    keyring: Path
    root_pub: Path

    @property
    def secrets(self) -> list[bytes]:
        return [key.secret for key in self.journalists]

    @property
    def recipients(self) -> list[bytes]:
        return [key.public.key for key in self.journalists]


def signed_keyring(root: PrivateKey, journalists: tuple[PrivateKey, ...], serial: int = 1) -> bytes:
    """A keyring of ``root`` that lists ``journalists`` only (no signing keys, no transfer
    machine): all `dropbox seal` reads."""
    return Team(root=root).keyring(serial, recipients=journalists, signing=(), clients=())


@pytest.fixture(scope="module")
def team(tmp_path_factory) -> TeamFiles:
    directory = tmp_path_factory.mktemp("team")
    root = PrivateKey.generate(KeyKind.ROOT, "team root")
    journalists = (
        PrivateKey.generate(KeyKind.ENCRYPTION, "Alice"),
        PrivateKey.generate(KeyKind.ENCRYPTION, "Bob"),
    )
    keyring = directory / "keyring.json"
    keyring.write_bytes(signed_keyring(root, journalists))
    root_pub = directory / "root.pub"
    root_pub.write_bytes(dump_public_key(root.public))
    return TeamFiles(root, journalists, keyring, root_pub)


def seal(team: TeamFiles, *args: str | Path, keyring: Path | None = None, root: Path | None = None,
         stdin: bytes | None = None):  # fmt: skip
    return run_tool(
        DROPBOX, "seal", "--keyring", keyring or team.keyring, "--root", root or team.root_pub,
        *args, stdin=stdin,
    )  # fmt: skip


def test_file_is_sealed_to_exactly_the_keyring_recipients(team, tmp_path):
    content = os.urandom(150_000)
    src = tmp_path / "scan.pdf"
    src.write_bytes(content)
    out = tmp_path / "scan.envelope"
    done = seal(team, src, out)
    assert done.returncode == 0, done.stderr
    envelope = out.read_bytes()
    assert sealed_to(parse_header(envelope), team.recipients)
    for secret in team.secrets:
        metadata, plaintext = open_bytes(envelope, [secret])
        assert plaintext == content
        assert (metadata.kind, metadata.filename, metadata.media_type) == (
            Kind.FILE, "scan.pdf", "application/pdf",
        )  # fmt: skip
    (line,) = [line for line in done.stdout.splitlines() if "recipients:" in line]
    assert sorted(line.split(":", 1)[1].strip().split(", ")) == ["alice (Alice)", "bob (Bob)"]
    assert "serial 1" in done.stdout
    assert files_under(tmp_path) == [out, src]


def test_message_from_stdin(team, tmp_path):
    out = tmp_path / "message.envelope"
    done = seal(team, "--kind", "message", "-", out, stdin=b"hello from stdin\n")
    assert done.returncode == 0, done.stderr
    metadata, plaintext = open_bytes(out.read_bytes(), team.secrets[:1])
    assert plaintext == b"hello from stdin\n"
    assert (metadata.kind, metadata.filename) == (Kind.MESSAGE, "")
    assert metadata.media_type == "text/plain; charset=utf-8"


def test_filename_and_media_type_options(team, tmp_path):
    src = tmp_path / "upload.tmp"
    src.write_bytes(b"data")
    out = tmp_path / "e.envelope"
    done = seal(team, "--filename", "dir/Report 2026.odt", "--media-type", "x/y", src, out)
    assert done.returncode == 0, done.stderr
    metadata, _ = open_bytes(out.read_bytes(), team.secrets[:1])
    assert (metadata.filename, metadata.media_type) == ("Report 2026.odt", "x/y")


def test_file_from_stdin_has_no_filename(team, tmp_path):
    out = tmp_path / "e.envelope"
    assert seal(team, "-", out, stdin=b"piped").returncode == 0
    metadata, plaintext = open_bytes(out.read_bytes(), team.secrets[:1])
    assert (metadata.filename, metadata.media_type, plaintext) == (
        "", "application/octet-stream", b"piped",
    )  # fmt: skip


@pytest.mark.slow
def test_seal_then_journalist_decrypt(tmp_path):
    """The keyring from `journalist init` works for `dropbox seal`, and back."""
    home = tmp_path / "home"
    done = run_tool(
        JOURNALIST, "init", "--home", home, "--journalist", "carol",
        "--argon2-memlimit", str(MEMLIMIT), passphrase=PASSPHRASE,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    content = os.urandom(70_000)
    src = tmp_path / "clip.bin"
    src.write_bytes(content)
    envelope = tmp_path / "clip.envelope"
    done = run_tool(
        DROPBOX, "seal", "--keyring", home / "outbox" / "keyring.json",
        "--root", home / "outbox" / "root.pub", src, envelope,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    done = run_tool(
        JOURNALIST, "decrypt", envelope, "--out", out, "--home", home, passphrase=PASSPHRASE
    )
    assert done.returncode == 0, done.stderr
    assert (out / "clip.bin").read_bytes() == content


def test_keyring_signed_by_another_root(team, tmp_path):
    other = PrivateKey.generate(KeyKind.ROOT, "impostor root")
    keyring = tmp_path / "keyring.json"
    keyring.write_bytes(signed_keyring(other, team.journalists))
    src = tmp_path / "in.txt"
    src.write_bytes(b"x")
    out = tmp_path / "out.envelope"
    done = seal(team, src, out, keyring=keyring)
    # Refused before the signature is checked (the keyring names another root), or by the
    # signature check: either way the message names the root file it was checked against.
    assert_one_line_error(done, 1, f"team root key in {team.root_pub}")
    assert not out.exists()
    assert files_under(tmp_path) == [src, keyring]


def test_keyring_naming_our_root_but_signed_by_another(team, tmp_path):
    other = PrivateKey.generate(KeyKind.ROOT, "impostor root")
    signed = json.loads(team.keyring.read_bytes())
    forged = other.sign(b"postern/v1 keyring\n" + signed["manifest"].encode("utf-8"))
    signed["signature"] = base64.b64encode(forged).decode("ascii")
    keyring = tmp_path / "keyring.json"
    keyring.write_text(json.dumps(signed))
    src = tmp_path / "in.txt"
    src.write_bytes(b"x")
    done = seal(team, src, tmp_path / "out.envelope", keyring=keyring)
    assert_one_line_error(done, 1, "signed by another root", f"team root key in {team.root_pub}")
    assert not (tmp_path / "out.envelope").exists()


def test_altered_keyring(team, tmp_path):
    signed = json.loads(team.keyring.read_bytes())
    signed["manifest"] = signed["manifest"].replace('"serial":1', '"serial":2')
    keyring = tmp_path / "keyring.json"
    keyring.write_text(json.dumps(signed))
    src = tmp_path / "in.txt"
    src.write_bytes(b"x")
    done = seal(team, src, tmp_path / "out.envelope", keyring=keyring)
    assert_one_line_error(done, 1, "altered")
    assert not (tmp_path / "out.envelope").exists()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"not json at all", ["is not a valid signed keyring"]),
        (b'{"type": "postern-signed-keyring", "version": 2}', ["version"]),
        (b"{}", ["is not a valid signed keyring"]),
    ],
)
def test_malformed_keyring(team, tmp_path, content, words):
    keyring = tmp_path / "keyring.json"
    keyring.write_bytes(content)
    src = tmp_path / "in.txt"
    src.write_bytes(b"x")
    done = seal(team, src, tmp_path / "out.envelope", keyring=keyring)
    assert_one_line_error(done, 1, *words)
    assert not (tmp_path / "out.envelope").exists()


def test_root_file_must_hold_a_root_key(team, tmp_path):
    not_root = tmp_path / "alice.pub"
    not_root.write_bytes(dump_public_key(team.journalists[0].public))
    src = tmp_path / "in.txt"
    src.write_bytes(b"x")
    done = seal(team, src, tmp_path / "out.envelope", root=not_root)
    assert_one_line_error(done, 1, "holds a encryption key, not the team root key")


def test_root_file_must_be_a_public_key_file(team, tmp_path):
    private = tmp_path / "root.key"
    private.write_bytes(dump_private_key(team.root, None))
    src = tmp_path / "in.txt"
    src.write_bytes(b"x")
    done = seal(team, src, tmp_path / "out.envelope", root=private)
    assert_one_line_error(done, 1, "is not a valid public key file")


@pytest.mark.slow
def test_missing_files(team, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"x")
    out = tmp_path / "out.envelope"
    assert_one_line_error(
        seal(team, src, out, keyring=tmp_path / "none.json"), 1, "keyring file", "does not exist"
    )
    assert_one_line_error(
        seal(team, src, out, root=tmp_path / "none.pub"), 1, "root public key file"
    )
    assert_one_line_error(seal(team, tmp_path / "none.txt", out), 1, "No such file")
    elsewhere = tmp_path / "no-dir" / "out.envelope"
    assert_one_line_error(seal(team, src, elsewhere), 1, "no-dir is not a directory")
    assert not out.exists()


def test_never_overwrites_without_force(team, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"new content")
    out = tmp_path / "out.envelope"
    out.write_bytes(b"existing")
    done = seal(team, src, out)
    assert_one_line_error(done, 1, "already exists", "--force")
    assert out.read_bytes() == b"existing"
    assert files_under(tmp_path) == [src, out]
    assert seal(team, "--force", src, out).returncode == 0
    assert open_bytes(out.read_bytes(), team.secrets[:1])[1] == b"new content"
    assert files_under(tmp_path) == [src, out]


def test_filename_with_message_is_a_usage_error(team, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"x")
    done = seal(team, "--kind", "message", "--filename", "a.txt", src, tmp_path / "o")
    assert_one_line_error(done, 2, "--filename")


def test_bad_media_type(team, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"x")
    done = seal(team, "--media-type", "tëxt/plain", src, tmp_path / "o")
    assert_one_line_error(done, 1, "media type")
    assert files_under(tmp_path) == [src]
