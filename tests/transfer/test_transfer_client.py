"""Tests for the transfer client, transfer/, against a fake sync server.

The fake server (tests/transfer/fake_sync.py) runs in a thread on 127.0.0.1 and implements
docs/format.md section 9 from the document; nothing here reaches beyond loopback.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import requests

from crypto.bundle import (
    Deletion,
    write_outbound_bundle,
)
from crypto.envelope import Kind, seal_bytes
from crypto.errors import CryptoError
from crypto.keys import KeyKind, PrivateKey, dump_private_key, x25519_public
from tests.support.cli import BIN, REPO_ROOT, assert_one_line_error
from tests.support.transfer import read_inbound
from tests.transfer.fake_sync import FakeSync, ServerThread, Socks5Proxy, self_signed_certificate
from transfer.cli import main
from transfer.client import SyncClient
from transfer.errors import TransferError
from transfer.progress import Progress
from transfer.pull import Puller
from transfer.push import parse_push_answer, push_summary


def _seed(name: str) -> bytes:
    return hashlib.sha256(b"postern test_transfer_client\n" + name.encode()).digest()


SERVER_KEY = PrivateKey(KeyKind.SERVER, _seed("server"), "server signing key")
OTHER_SERVER = PrivateKey(KeyKind.SERVER, _seed("other server"), "impostor")
CLIENT_KEY = PrivateKey(KeyKind.TRANSFER, _seed("transfer"), "transfer machine")
STRANGER = PrivateKey(KeyKind.TRANSFER, _seed("stranger"), "not in the keyring")
JOURNALIST = PrivateKey(KeyKind.SIGNING, _seed("alice signing"), "Alice")
OUTSIDER = PrivateKey(KeyKind.SIGNING, _seed("mallory signing"), "Mallory")
RECIPIENT = x25519_public(_seed("recipient"))


def _envelope(size: int, kind: Kind = Kind.MESSAGE) -> bytes:
    return seal_bytes(os.urandom(size), [RECIPIENT], kind)


SMALL_1, BIG, SMALL_2 = _envelope(100), _envelope(3 * 1024 * 1024, Kind.FILE), _envelope(5000)


@pytest.fixture
def fake() -> FakeSync:
    fake = FakeSync(
        server_key=SERVER_KEY,
        clients={CLIENT_KEY.key_id: CLIENT_KEY.public.key},
        signing_keys={JOURNALIST.key_id: JOURNALIST.public.key},
    )
    fake.add(SMALL_1)
    fake.add(BIG, "file")
    fake.add(SMALL_2)
    return fake


@pytest.fixture
def server(fake: FakeSync) -> Iterator[ServerThread]:
    thread = ServerThread(fake.app())
    yield thread
    thread.stop()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "transfer.key"
    path.write_bytes(dump_private_key(CLIENT_KEY, None))
    return path


class Run:
    """Runs ``main`` in this process and captures what it printed."""

    def __init__(self, capsys: pytest.CaptureFixture[str], server: ServerThread, key: Path):
        self.capsys = capsys
        self.server = server
        self.key = key

    def __call__(self, *args: str | Path, server: str | None = None) -> tuple[int, str, str]:
        self.capsys.readouterr()
        argv = [str(a) for a in args]
        argv += ["--server", server or self.server.url, "--key", str(self.key)]
        status = main(argv)
        out, err = self.capsys.readouterr()
        return status, out, err

    def pull(self, dest: Path, *extra: str, server: str | None = None) -> tuple[int, str, str]:
        return self("pull", "--to", dest, *extra, server=server)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], server: ServerThread, key_file: Path) -> Run:
    return Run(capsys, server, key_file)


def _bundles(dest: Path) -> list[Path]:
    return sorted(dest.glob("postern-inbound-*.bundle"))


def _leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir() if p.name.startswith("."))


def _one_line_error(status: int, err: str, expected: int = 1) -> str:
    assert status == expected, err
    assert err.count("\n") == 1, err
    assert err.startswith("dropbox-transfer: error: ")
    assert "Traceback" not in err
    return err


# == pull ===================================================================================


def test_pull_writes_one_verified_bundle(run: Run, fake: FakeSync, tmp_path: Path) -> None:
    dest = tmp_path / "usb"
    dest.mkdir()
    status, out, err = run.pull(dest)
    assert status == 0, err
    [bundle] = _bundles(dest)
    manifest, envelopes = read_inbound(bundle, SERVER_KEY.public.key)
    assert [item.id for item in manifest.items] == ["1", "2", "3"]
    assert envelopes == [SMALL_1, BIG, SMALL_2]
    assert manifest.made == date(2026, 11, 24)
    digest = hashlib.sha256(manifest.canonical().encode()).hexdigest()
    assert bundle.name == f"postern-inbound-2026-11-24-{digest[:8]}.bundle"
    assert "Pulled 3 items" in out
    assert str(bundle) in out
    assert err == ""  # no progress lines in a short run off a terminal
    assert _leftovers(dest) == [".postern-server-key"]  # the work directory is gone
    # The listing went through all the pages, with a cursor that needs percent-encoding.
    targets = [entry.target for entry in fake.log if entry.target.startswith("/v1/items?")]
    assert targets == [
        "/v1/items?limit=1000",
        "/v1/items?after=after%20item%202%2F%2B%3D&limit=1000",
    ]


def test_nothing_pending(run: Run, fake: FakeSync, tmp_path: Path) -> None:
    fake.acknowledged.update({"1", "2", "3"})
    status, out, err = run.pull(tmp_path)
    assert (status, err) == (0, "")
    assert "Nothing to pull" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["transfer.key"]


def test_interrupted_mid_envelope_resumes_to_the_same_bundle(
    run: Run, fake: FakeSync, tmp_path: Path
) -> None:
    dest, reference = tmp_path / "usb", tmp_path / "reference"
    dest.mkdir()
    reference.mkdir()
    fake.drop_after["2"] = 1_000_000  # the server drops the connection once, mid-envelope
    status, out, err = run.pull(dest)
    _one_line_error(status, err)
    assert "run the same command again to resume" in err
    assert _bundles(dest) == []
    [work] = [p for p in dest.iterdir() if p.name.startswith(".postern-pull-")]
    # The partial bundle holds the head, envelope 1 and the first 1,000,000 bytes of 2.
    partial = (work / "bundle.part").read_bytes()
    block = (work / "manifest.block").read_bytes()
    head = b"PSTRNBIN\x01" + block
    assert partial[: len(head)] == head
    assert partial[len(head) : len(head) + len(SMALL_1)] == SMALL_1
    assert len(partial) == len(head) + len(SMALL_1) + 1_000_000

    status, out, err = run.pull(dest)
    assert status == 0, err
    assert "finishing 1 interrupted pull" in out
    gets = [(e.target, e.range) for e in fake.log if e.target.endswith("/envelope")]
    assert gets == [
        ("/v1/items/1/envelope", None),
        ("/v1/items/2/envelope", None),
        ("/v1/items/2/envelope", "bytes=1000000-"),  # only the rest of it
        ("/v1/items/3/envelope", None),
    ]
    assert len([e for e in fake.log if e.target == "/v1/manifests"]) == 1  # manifest reused

    status, _, err = run.pull(reference)
    assert status == 0, err
    [resumed], [uninterrupted] = _bundles(dest), _bundles(reference)
    assert resumed.name == uninterrupted.name
    assert resumed.read_bytes() == uninterrupted.read_bytes()
    manifest, envelopes = read_inbound(resumed, SERVER_KEY.public.key)
    assert [item.id for item in manifest.items] == ["1", "2", "3"]
    assert envelopes == [SMALL_1, BIG, SMALL_2]
    assert _leftovers(dest) == [".postern-server-key"]


@pytest.mark.parametrize("where", ["complete envelope", "partial envelope", "head"])
def test_a_damaged_partial_bundle_is_checked_and_refetched(
    run: Run, fake: FakeSync, tmp_path: Path, where: str
) -> None:
    fake.drop_after["2"] = 1_000_000
    assert run.pull(tmp_path)[0] == 1
    [work] = [p for p in tmp_path.iterdir() if p.name.startswith(".postern-pull-")]
    part = work / "bundle.part"
    data = bytearray(part.read_bytes())
    head = len(data) - len(SMALL_1) - 1_000_000
    flip = {"complete envelope": head + 5, "partial envelope": len(data) - 7, "head": 3}[where]
    data[flip] ^= 0x01
    part.write_bytes(bytes(data))
    fake.log.clear()

    status, _, err = run.pull(tmp_path)
    assert status == 0, err
    [bundle] = _bundles(tmp_path)
    assert read_inbound(bundle, SERVER_KEY.public.key)[1] == [SMALL_1, BIG, SMALL_2]
    gets = [(e.target, e.range) for e in fake.log if e.target.endswith("/envelope")]
    if where == "partial envelope":
        # The rest of 2 is fetched, its hash fails, and all of 2 is fetched once more.
        assert gets[:3] == [
            ("/v1/items/2/envelope", "bytes=1000000-"),
            ("/v1/items/2/envelope", None),
            ("/v1/items/3/envelope", None),
        ]
    else:
        # Nothing before the damage can be trusted: everything from envelope 1 on again.
        assert gets == [
            ("/v1/items/1/envelope", None),
            ("/v1/items/2/envelope", None),
            ("/v1/items/3/envelope", None),
        ]


def test_ctrl_c_then_resume(
    run: Run, fake: FakeSync, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    advance = Progress.advance
    calls = {"n": 0}

    def interrupt_once(self: Progress, count: int) -> None:
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        advance(self, count)

    monkeypatch.setattr(Progress, "advance", interrupt_once)
    status, _, err = run.pull(tmp_path)
    # common.cli.run first ends the line the terminal echoed "^C" on, as every program does.
    _one_line_error(status, err.removeprefix("\n"))
    assert "interrupted; run the same command again to resume" in err
    assert _bundles(tmp_path) == []
    status, _, err = run.pull(tmp_path)
    assert status == 0, err
    [bundle] = _bundles(tmp_path)
    assert read_inbound(bundle, SERVER_KEY.public.key)[1] == [SMALL_1, BIG, SMALL_2]


def test_resume_then_only_new_items_in_a_second_bundle(
    run: Run, fake: FakeSync, tmp_path: Path
) -> None:
    fake.drop_after["2"] = 10
    assert run.pull(tmp_path)[0] == 1
    late = _envelope(300)
    fake.add(late)  # arrives while the pull is interrupted
    status, out, err = run.pull(tmp_path)
    assert status == 0, err
    bundles = [read_inbound(path, SERVER_KEY.public.key) for path in _bundles(tmp_path)]
    ids = sorted([item.id for item in manifest.items] for manifest, _ in bundles)
    assert ids == [["1", "2", "3"], ["4"]]  # every item exactly once
    assert "Pulled 4 items" in out
    assert "into 2 bundle(s)" in out


def test_many_items_are_split_into_batches(
    run: Run, fake: FakeSync, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("transfer.pull.MANIFEST_BATCH", 2)
    for size in (10, 20, 30):
        fake.add(_envelope(size))
    status, _, err = run.pull(tmp_path)
    assert status == 0, err
    bundles = [read_inbound(path, SERVER_KEY.public.key) for path in _bundles(tmp_path)]
    assert len(bundles) == 3
    ids = sorted(item.id for manifest, _ in bundles for item in manifest.items)
    assert ids == ["1", "2", "3", "4", "5", "6"]
    posts = [e for e in fake.log if e.target == "/v1/manifests"]
    assert len(posts) == 3


def test_a_manifest_signed_by_another_key_is_refused(
    run: Run, fake: FakeSync, tmp_path: Path
) -> None:
    fake.manifest_key = OTHER_SERVER
    status, _, err = run.pull(tmp_path)
    _one_line_error(status, err)
    assert "does not verify" in err
    assert _bundles(tmp_path) == []
    assert _leftovers(tmp_path) == []
    assert not any(e.target.endswith("/envelope") for e in fake.log)


def test_a_changed_server_key_is_refused_on_later_runs(
    run: Run, fake: FakeSync, tmp_path: Path
) -> None:
    fake.drop_after["2"] = 10
    assert run.pull(tmp_path)[0] == 1
    fake.server_key = OTHER_SERVER
    fake.manifest_key = OTHER_SERVER
    status, _, err = run.pull(tmp_path)
    _one_line_error(status, err)
    assert "pinned" in err
    (tmp_path / ".postern-server-key").unlink()
    status, _, err = run.pull(tmp_path)  # the saved manifest is still the old server's
    _one_line_error(status, err)
    assert "interrupted pull" in err
    assert "does not verify" in err


def test_wrong_envelope_bytes_are_refused(run: Run, fake: FakeSync, tmp_path: Path) -> None:
    fake.wrong_bytes["3"] = bytes(len(SMALL_2))
    status, _, err = run.pull(tmp_path)
    _one_line_error(status, err)
    assert "item 3 does not match" in err
    assert _bundles(tmp_path) == []


def test_a_mismatch_found_while_later_envelopes_arrive(
    run: Run, fake: FakeSync, tmp_path: Path
) -> None:
    # Envelopes are hashed in the background while the next ones arrive: a bad first one is
    # found after the others came, and the partial bundle is cut before it.
    fake.wrong_bytes["1"] = bytes(len(SMALL_1))
    status, _, err = run.pull(tmp_path)
    _one_line_error(status, err)
    assert "item 1 does not match" in err
    assert _bundles(tmp_path) == []
    [work] = [p for p in tmp_path.iterdir() if p.name.startswith(".postern-pull-")]
    head = b"PSTRNBIN\x01" + (work / "manifest.block").read_bytes()
    assert (work / "bundle.part").read_bytes() == head

    del fake.wrong_bytes["1"]
    fake.log.clear()
    status, _, err = run.pull(tmp_path)
    assert status == 0, err
    [bundle] = _bundles(tmp_path)
    assert read_inbound(bundle, SERVER_KEY.public.key)[1] == [SMALL_1, BIG, SMALL_2]
    gets = [(e.target, e.range) for e in fake.log if e.target.endswith("/envelope")]
    assert gets == [(f"/v1/items/{n}/envelope", None) for n in ("1", "2", "3")]


def test_without_verify_wrong_bytes_are_left_to_the_station(
    run: Run, fake: FakeSync, tmp_path: Path
) -> None:
    fake.wrong_bytes["2"] = bytes(len(BIG))
    status, out, err = run.pull(tmp_path, "--no-verify")
    assert status == 0, err
    assert "not checked here (--no-verify): the station checks them at import" in out
    [bundle] = _bundles(tmp_path)
    with pytest.raises(CryptoError, match="envelope 1 does not match its SHA-256"):
        read_inbound(bundle, SERVER_KEY.public.key)


def test_without_verify_what_an_interrupted_pull_left_is_still_checked(
    run: Run, fake: FakeSync, tmp_path: Path
) -> None:
    fake.drop_after["2"] = 1_000_000
    assert run.pull(tmp_path, "--no-verify")[0] == 1
    [work] = [p for p in tmp_path.iterdir() if p.name.startswith(".postern-pull-")]
    part = work / "bundle.part"
    data = bytearray(part.read_bytes())
    data[-7] ^= 0x01  # damage the part of envelope 2 that arrived
    part.write_bytes(bytes(data))
    fake.log.clear()
    status, _, err = run.pull(tmp_path, "--no-verify")
    assert status == 0, err
    [bundle] = _bundles(tmp_path)
    assert read_inbound(bundle, SERVER_KEY.public.key)[1] == [SMALL_1, BIG, SMALL_2]
    gets = [(e.target, e.range) for e in fake.log if e.target.endswith("/envelope")]
    assert gets == [
        ("/v1/items/2/envelope", "bytes=1000000-"),
        ("/v1/items/2/envelope", None),  # its hash failed: all of it once more
        ("/v1/items/3/envelope", None),
    ]


def test_a_resumed_item_gone_from_the_server(run: Run, fake: FakeSync, tmp_path: Path) -> None:
    fake.drop_after["2"] = 10
    assert run.pull(tmp_path)[0] == 1
    fake.acknowledged.add("2")
    status, _, err = run.pull(tmp_path)
    _one_line_error(status, err)
    assert "no longer on the server" in err


def test_an_unknown_client_is_told_so(
    capsys: pytest.CaptureFixture[str], server: ServerThread, tmp_path: Path
) -> None:
    key = tmp_path / "stranger.key"
    key.write_bytes(dump_private_key(STRANGER, None))
    status, _, err = Run(capsys, server, key).pull(tmp_path)
    _one_line_error(status, err)
    assert "unknown_client" in err
    assert "keyring" in err


def test_a_key_of_another_kind_is_refused(
    capsys: pytest.CaptureFixture[str], server: ServerThread, tmp_path: Path
) -> None:
    key = tmp_path / "signing.key"
    key.write_bytes(dump_private_key(JOURNALIST, None))
    status, _, err = Run(capsys, server, key).pull(tmp_path)
    _one_line_error(status, err)
    assert "not a transfer key" in err


def test_a_protected_key_with_passphrase_fd(
    capsys: pytest.CaptureFixture[str], server: ServerThread, tmp_path: Path
) -> None:
    key = tmp_path / "protected.key"
    key.write_bytes(dump_private_key(CLIENT_KEY, "a transfer passphrase", memlimit=2**26))
    dest = tmp_path / "usb"
    dest.mkdir()
    read_end, write_end = os.pipe()
    os.write(write_end, b"a transfer passphrase\n")
    os.close(write_end)
    try:
        status, _, err = Run(capsys, server, key).pull(dest, "--passphrase-fd", str(read_end))
    finally:
        os.close(read_end)
    assert status == 0, err
    assert len(_bundles(dest)) == 1


def test_a_server_that_is_not_there(run: Run, tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    status, _, err = run.pull(tmp_path, server=f"http://127.0.0.1:{port}")
    _one_line_error(status, err)
    assert "cannot reach the server" in err


def test_usage_errors_exit_2(run: Run, tmp_path: Path) -> None:
    status, _, err = run.pull(tmp_path, "--socks", "nonsense")
    _one_line_error(status, err, expected=2)
    status, _, err = run.pull(tmp_path, server="ftp://127.0.0.1")
    _one_line_error(status, err, expected=2)
    with pytest.raises(SystemExit) as raised:
        main(["pull", "--to", str(tmp_path)])
    assert raised.value.code == 2


# == SOCKS ==================================================================================


def test_pull_through_a_socks5_proxy_resolving_the_name(
    run: Run, server: ServerThread, tmp_path: Path
) -> None:
    # ".invalid" never resolves locally: only the proxy can know where it goes (socks5h).
    proxy = Socks5Proxy({"sync.postern.invalid": server.port})
    try:
        status, _, err = run.pull(
            tmp_path,
            "--socks",
            f"127.0.0.1:{proxy.port}",
            server=f"http://sync.postern.invalid:{server.port}",
        )
    finally:
        proxy.close()
    assert status == 0, err
    assert set(proxy.requested) == {"sync.postern.invalid"}
    [bundle] = _bundles(tmp_path)
    assert read_inbound(bundle, SERVER_KEY.public.key)[1] == [SMALL_1, BIG, SMALL_2]


# == TLS ====================================================================================


def test_pull_from_an_https_server(fake: FakeSync, tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    server = ServerThread(fake.app(), tls=(cert, key))
    dest = tmp_path / "usb"
    dest.mkdir()
    try:
        client = SyncClient(server.url, CLIENT_KEY, ca_file=cert)
        try:
            result = Puller(client, dest, stderr=io.StringIO(), tty=False).run()
        finally:
            client.close()
        # Without the certificate, the server is not trusted.
        untrusting = SyncClient(server.url, CLIENT_KEY)
        try:
            with pytest.raises(requests.exceptions.SSLError):
                untrusting.status()
        finally:
            untrusting.close()
    finally:
        server.stop()
    assert server.url.startswith("https://")
    assert result.items == 3
    [bundle] = _bundles(dest)
    assert read_inbound(bundle, SERVER_KEY.public.key)[1] == [SMALL_1, BIG, SMALL_2]


# == push ===================================================================================


def _outbound(tmp_path: Path, signer: PrivateKey = JOURNALIST, name: str = "out.bundle") -> Path:
    path = tmp_path / name
    with path.open("wb") as out:
        write_outbound_bundle(
            out,
            signing_key=signer,
            made=date(2026, 11, 25),
            replies=[(b"\x5a" * 16, _envelope(200, Kind.REPLY))],
            deletions=[Deletion("item", id="3")],
            acknowledged=["1", "2"],
        )
    return path


def test_push_uploads_and_prints_the_summary(run: Run, fake: FakeSync, tmp_path: Path) -> None:
    bundle = _outbound(tmp_path)
    status, out, err = run("push", bundle)
    assert (status, err) == (0, "")
    assert out == (
        f"{bundle}: applied: 1 reply delivered, 1 deletion, 2 acknowledgements, 0 items purged.\n"
    )
    assert fake.acknowledged == {"1", "2"}
    assert len(fake.replies) == 1
    status, out, err = run("push", bundle)
    assert (status, err) == (0, "")
    assert "already applied" in out
    assert "nothing changed" in out
    status, out, err = run("push", bundle, "--json")
    assert (status, err) == (0, "")
    assert out == (
        '{"acknowledged": 2, "applied": false, "deletions": 1, "purged": 0, "replies": 1}\n'
    )


def test_push_answers_are_checked_and_an_older_server_need_not_count_purges() -> None:
    answer = {"applied": True, "replies": 1, "deletions": 1, "acknowledged": 2}
    checked = parse_push_answer(json.dumps(answer).encode())
    assert (checked.purged, checked.raw) == (None, answer)
    words = push_summary(Path("out.bundle"), checked)
    assert words == "out.bundle: applied: 1 reply delivered, 1 deletion, 2 acknowledgements."
    for broken in (
        {**answer, "applied": "yes"},
        {**answer, "replies": -1},
        {**answer, "purged": True},
        {"applied": True},
        [answer],
    ):
        with pytest.raises(TransferError, match="POST /v1/outbound"):
            parse_push_answer(json.dumps(broken).encode())
    with pytest.raises(TransferError, match="not JSON"):
        parse_push_answer(b"<html>")


def test_push_streams_the_file_as_signed(run: Run, fake: FakeSync, tmp_path: Path) -> None:
    bundle = _outbound(tmp_path)
    assert run("push", bundle)[0] == 0
    [post] = [e for e in fake.log if e.target == "/v1/outbound"]
    assert (post.method, post.status) == ("POST", 200)


def test_push_of_a_bundle_the_server_refuses(run: Run, tmp_path: Path) -> None:
    status, _, err = run("push", _outbound(tmp_path, OUTSIDER))
    _one_line_error(status, err)
    assert "the server refused the bundle: bad_bundle: the bundle does not verify" in err


def test_push_refuses_what_is_not_an_outbound_bundle(run: Run, tmp_path: Path) -> None:
    inbound = tmp_path / "in.bundle"
    inbound.write_bytes(b"PSTRNBIN\x01rest")
    status, _, err = run("push", inbound)
    _one_line_error(status, err)
    assert "inbound bundle" in err
    other = tmp_path / "notes.txt"
    other.write_bytes(b"hello")
    _one_line_error(*run("push", other)[::2])
    link = tmp_path / "link.bundle"
    link.symlink_to(_outbound(tmp_path))
    status, _, err = run("push", link)
    _one_line_error(status, err)
    assert "symbolic link" in err
    status, _, err = run("push", tmp_path / "missing.bundle")
    _one_line_error(status, err)


def test_push_by_an_unknown_client(
    capsys: pytest.CaptureFixture[str], server: ServerThread, tmp_path: Path
) -> None:
    key = tmp_path / "stranger.key"
    key.write_bytes(dump_private_key(STRANGER, None))
    status, _, err = Run(capsys, server, key)("push", _outbound(tmp_path))
    _one_line_error(status, err)
    assert "the server refused the request (POST /v1/outbound): unknown_client" in err


# == the installed command ==================================================================


def test_console_script_and_module_fail_in_one_line(tmp_path: Path, key_file: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    args = ["pull", "--to", str(tmp_path), "--server", f"http://127.0.0.1:{port}"]
    args += ["--key", str(key_file)]
    for command in ([str(BIN / "dropbox-transfer")], [sys.executable, "-m", "transfer"]):
        done = subprocess.run(
            [*command, *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
        )
        assert_one_line_error(done, 1, "cannot reach the server", "connection refused")
    assert re.fullmatch(r"\d+", str(port))


def test_two_pulls_never_write_to_one_directory_at_once(run: Run, tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        status, _, err = run.pull(tmp_path)
    finally:
        os.close(fd)
    _one_line_error(status, err)
    assert "another pull" in err
    assert run.pull(tmp_path)[0] == 0


def test_pulling_the_same_items_again_the_same_day(run: Run, tmp_path: Path) -> None:
    assert run.pull(tmp_path)[0] == 0
    [bundle] = _bundles(tmp_path)
    first = bundle.read_bytes()
    status, out, err = run.pull(tmp_path)
    assert status == 0, err
    assert "1 of them already there" in out
    assert _bundles(tmp_path) == [bundle]
    assert bundle.read_bytes() == first
    assert _leftovers(tmp_path) == [".postern-server-key"]


def test_no_subcommand_version_and_unknown_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    assert out.startswith("usage: dropbox-transfer ")
    with pytest.raises(SystemExit) as raised:
        main(["--version"])
    assert raised.value.code == 0
    assert capsys.readouterr().out == "dropbox-transfer 0.1.0\n"
    with pytest.raises(SystemExit) as raised:
        main(["fetch"])
    assert raised.value.code == 2
    assert "invalid choice: 'fetch'" in capsys.readouterr().err
