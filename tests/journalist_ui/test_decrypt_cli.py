"""`journalist decrypt`, end to end through the installed console scripts."""

from __future__ import annotations

import hashlib
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest

from crypto import (
    KeyKind,
    Kind,
    PrivateKey,
    clean_filename,
    load_public_key,
    seal_bytes,
    verify_keyring,
)
from tests.support.cli import (
    DROPBOX,
    JOURNALIST,
    PASSPHRASE,
    assert_one_line_error,
    files_under,
    run_tool,
)
from tests.support.homes import initialized_home


@dataclass(frozen=True)
class Station:
    home: Path
    keyring: Path
    root: Path
    recipient: bytes


@pytest.fixture(scope="module")
def station(tmp_path_factory) -> Station:
    home = initialized_home(tmp_path_factory.mktemp("station") / "home")
    keyring, root = home / "outbox" / "keyring.json", home / "outbox" / "root.pub"
    manifest = verify_keyring(keyring.read_bytes(), load_public_key(root.read_bytes()).key).manifest
    (recipient,) = manifest.recipient_keys
    return Station(home, keyring, root, recipient)


def seal(station: Station, src: Path, out: Path, *args: str) -> None:
    done = run_tool(
        DROPBOX, "seal", "--keyring", station.keyring, "--root", station.root, *args, src, out
    )
    assert done.returncode == 0, done.stderr


def decrypt(station: Station, envelope: Path, out: Path, *args: str, typed: str = PASSPHRASE):
    return run_tool(
        JOURNALIST, "decrypt", envelope, "--out", out, "--home", station.home, *args,
        passphrase=typed,
    )  # fmt: skip


def test_file_round_trip(station, tmp_path):
    content = os.urandom(200_000)  # several chunks
    src = tmp_path / "footage.mp4"
    src.write_bytes(content)
    envelope = tmp_path / "footage.envelope"
    seal(station, src, envelope)
    out = tmp_path / "out"
    done = decrypt(station, envelope, out)
    assert done.returncode == 0, done.stderr
    assert files_under(out) == [out / "footage.mp4"]
    assert (out / "footage.mp4").read_bytes() == content
    assert (out / "footage.mp4").stat().st_mode & 0o777 == 0o600
    assert out.stat().st_mode & 0o777 == 0o700
    assert "kind:        file" in done.stdout
    assert "filename:    footage.mp4" in done.stdout
    assert "media type:  video/mp4" in done.stdout
    assert "size:        200000 bytes" in done.stdout
    assert f"sha256:      {hashlib.sha256(content).hexdigest()}" in done.stdout
    assert done.stderr == ""


def test_message_round_trip_with_home_from_the_environment(station, tmp_path):
    content = "A message with ünïcode,\nover two lines.\n".encode()
    src = tmp_path / "message.txt"
    src.write_bytes(content)
    envelope = tmp_path / "message.envelope"
    seal(station, src, envelope, "--kind", "message")
    out = tmp_path / "out"
    env = {**os.environ, "POSTERN_STATION_HOME": str(station.home)}
    done = run_tool(
        JOURNALIST, "decrypt", envelope, "--out", out, "--journalist", "alice",
        passphrase=PASSPHRASE, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    digest = hashlib.sha256(content).hexdigest()
    expected = out / f"message-{digest[:8]}.txt"
    assert files_under(out) == [expected]
    assert expected.read_bytes() == content
    assert "kind:        message" in done.stdout
    assert f"sha256:      {digest}" in done.stdout


def test_without_home_is_a_usage_error(station, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "POSTERN_STATION_HOME"}
    done = run_tool(
        JOURNALIST, "decrypt", tmp_path / "x", "--out", tmp_path / "out",
        passphrase=PASSPHRASE, env=env,
    )  # fmt: skip
    assert_one_line_error(done, 2, "POSTERN_STATION_HOME", "--home")


@pytest.mark.slow
def test_never_overwrites_an_existing_file(station, tmp_path):
    src = tmp_path / "memo.txt"
    src.write_bytes(b"the sealed memo")
    envelope = tmp_path / "memo.envelope"
    seal(station, src, envelope)
    out = tmp_path / "out"
    out.mkdir()
    (out / "memo.txt").write_bytes(b"already here")
    for _ in range(2):
        assert decrypt(station, envelope, out).returncode == 0
    assert (out / "memo.txt").read_bytes() == b"already here"
    assert (out / "memo (1).txt").read_bytes() == b"the sealed memo"
    assert (out / "memo (2).txt").read_bytes() == b"the sealed memo"
    assert len(files_under(out)) == 3


def test_wrong_passphrase(station, tmp_path):
    envelope = tmp_path / "e.envelope"
    envelope.write_bytes(seal_bytes(b"secret", [station.recipient], Kind.MESSAGE))
    out = tmp_path / "out"
    done = decrypt(station, envelope, out, typed="not the passphrase")
    assert_one_line_error(done, 1, "wrong passphrase")
    assert files_under(out) == []


@pytest.mark.parametrize(
    "where",
    [
        pytest.param(20, id="stanza"),
        pytest.param(10 + 96 + 3, id="payload-salt"),
        pytest.param(26 + 96 + 5, id="header-mac"),
        pytest.param(58 + 96 + 1000, id="first-chunk"),
        pytest.param(58 + 96 + 65552 + 10, id="second-chunk"),
        pytest.param(-1, id="last-byte"),
    ],
)
def test_tampered_envelope_leaves_nothing(station, tmp_path, where):
    data = bytearray(seal_bytes(os.urandom(100_000), [station.recipient], Kind.FILE, "x.bin"))
    data[where] ^= 0x01
    envelope = tmp_path / "tampered.envelope"
    envelope.write_bytes(bytes(data))
    out = tmp_path / "out"
    done = decrypt(station, envelope, out)
    assert_one_line_error(done, 1, "not sealed to journalist alice's key, or it is corrupted")
    assert files_under(out) == []


def test_tampered_envelope_leaves_an_existing_out_dir_as_it_was(station, tmp_path):
    data = bytearray(seal_bytes(os.urandom(100_000), [station.recipient], Kind.FILE, "x.bin"))
    data[58 + 96 + 65552 + 10] ^= 0x80  # fails only after the first chunk was written
    envelope = tmp_path / "tampered.envelope"
    envelope.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("keep")
    assert decrypt(station, envelope, out).returncode == 1
    assert files_under(out) == [out / "keep.txt"]


def test_truncated_envelope(station, tmp_path):
    data = seal_bytes(os.urandom(100_000), [station.recipient], Kind.FILE, "x.bin")
    envelope = tmp_path / "truncated.envelope"
    envelope.write_bytes(data[: 58 + 96 + 65552])
    out = tmp_path / "out"
    assert_one_line_error(decrypt(station, envelope, out), 1, "corrupted")
    assert files_under(out) == []


def test_envelope_for_another_journalist(station, tmp_path):
    other = PrivateKey.generate(KeyKind.ENCRYPTION, "someone else")
    envelope = tmp_path / "other.envelope"
    envelope.write_bytes(seal_bytes(b"not for alice", [other.public.key], Kind.MESSAGE))
    out = tmp_path / "out"
    assert_one_line_error(decrypt(station, envelope, out), 1, "not sealed to journalist alice")
    assert files_under(out) == []


def test_not_an_envelope(station, tmp_path):
    envelope = tmp_path / "notes.txt"
    envelope.write_bytes(b"just some text, not an envelope\n")
    out = tmp_path / "out"
    assert_one_line_error(decrypt(station, envelope, out), 1, "is not a Postern envelope")
    assert files_under(out) == []


def test_unsupported_version(station, tmp_path):
    data = bytearray(seal_bytes(b"x", [station.recipient], Kind.MESSAGE))
    data[8] = 2
    envelope = tmp_path / "v2.envelope"
    envelope.write_bytes(bytes(data))
    out = tmp_path / "out"
    assert_one_line_error(decrypt(station, envelope, out), 1, "version")
    assert files_under(out) == []


def test_missing_envelope(station, tmp_path):
    out = tmp_path / "out"
    done = decrypt(station, tmp_path / "nowhere.envelope", out)
    assert_one_line_error(done, 1, "no such envelope file")
    assert files_under(out) == []


def test_unknown_journalist(station, tmp_path):
    envelope = tmp_path / "e.envelope"
    envelope.write_bytes(seal_bytes(b"x", [station.recipient], Kind.MESSAGE))
    done = decrypt(station, envelope, tmp_path / "out", "--journalist", "bob")
    assert_one_line_error(done, 1, "no journalist 'bob'")


def test_without_terminal_or_fd_decrypt_fails_clearly(station, tmp_path):
    envelope = tmp_path / "e.envelope"
    envelope.write_bytes(seal_bytes(b"x", [station.recipient], Kind.MESSAGE))
    done = run_tool(
        JOURNALIST, "decrypt", envelope, "--out", tmp_path / "out", "--home", station.home,
        new_session=True,  # no controlling terminal
    )  # fmt: skip
    assert_one_line_error(done, 2, "--passphrase-fd")


HOSTILE_NAMES = [
    pytest.param(clean_filename("../../etc/passwd"), "passwd", id="traversal-cleaned"),
    pytest.param("..", "file-", id="dot-dot"),
    pytest.param(".", "file-", id="dot"),
    pytest.param(".profile", "profile", id="hidden"),
    pytest.param("-rf", "_rf", id="option"),
    pytest.param("invoice\u202efdp.exe", "invoicefdp.exe", id="bidi-override"),
    pytest.param("a\u200bb\u2028c\ufeff.txt", "abc.txt", id="invisible"),
    pytest.param(clean_filename("esc\x1b[2Jc1\x85\x9b.txt"), "esc[2Jc1.txt", id="controls"),
    pytest.param("\u200b\u202e", "file-", id="nothing-visible"),
    pytest.param("x" * 251 + ".pdf", "x" * 196 + ".pdf", id="longest"),
]


@pytest.mark.parametrize(("sent", "expected"), HOSTILE_NAMES)
def test_hostile_filenames_land_inside_out(station, tmp_path, sent, expected):
    content = b"hostile name test " + sent.encode("utf-8")
    envelope = tmp_path / "hostile.envelope"
    envelope.write_bytes(seal_bytes(content, [station.recipient], Kind.FILE, sent))
    work = tmp_path / "work"
    out = work / "out"
    done = decrypt(station, envelope, out)
    assert done.returncode == 0, done.stderr
    (written,) = files_under(work)[1:]  # the first entry is out itself
    assert written.parent == out
    assert written.read_bytes() == content
    assert written.name.startswith(expected)
    assert not written.name.startswith((".", "-"))
    assert all(unicodedata.category(c)[0] != "C" for c in written.name)
    assert all(unicodedata.category(c) not in ("Zl", "Zp") for c in written.name)
    # The name as sent is shown, with invisible characters escaped.
    for line in done.stdout.splitlines():
        assert all(unicodedata.category(c)[0] != "C" for c in line)
    # A second copy gets a numbered name that still fits the file system.
    assert decrypt(station, envelope, out).returncode == 0
    assert len(files_under(out)) == 2
