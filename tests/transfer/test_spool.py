"""Tests for transfer/spool.py: envelopes hashed behind the thread that writes them.

The order of the envelopes in the bundle is the receiving thread's alone: an envelope that
finishes hashing before a larger one written before it must change nothing.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from datetime import date
from pathlib import Path

import pytest

from crypto.bundle import InboundItem
from crypto.envelope import Kind, seal_bytes
from crypto.keys import KeyKind, PrivateKey, x25519_public
from tests.support.transfer import read_inbound
from tests.transfer.fake_sync import FakeSync, ServerThread
from transfer import spool as spool_module
from transfer.client import SyncClient
from transfer.download import pwrite_all
from transfer.pull import Puller
from transfer.spool import Spool


def _seed(name: str) -> bytes:
    return hashlib.sha256(b"postern test_spool\n" + name.encode()).digest()


SERVER_KEY = PrivateKey(KeyKind.SERVER, _seed("server"), "server signing key")
CLIENT_KEY = PrivateKey(KeyKind.TRANSFER, _seed("transfer"), "transfer machine")
RECIPIENT = x25519_public(_seed("recipient"))
MIB = 1024 * 1024


def _envelope(size: int) -> bytes:
    return seal_bytes(os.urandom(size), [RECIPIENT], Kind.FILE)


def _item(item_id: str, data: bytes) -> InboundItem:
    return InboundItem(
        id=item_id,
        source_id=bytes(16),
        reply_public_key=bytes(32),
        kind="file",
        size=len(data),
        sha256=hashlib.sha256(data).digest(),
        day=date(2026, 11, 24),
    )


def test_a_small_envelope_hashed_before_a_large_one_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large A, then small B, written in turn; B is hashed while A's hashing is held back.
    C then begins where B ended, and all three check out."""
    pieces = [_envelope(5 * MIB), _envelope(100), _envelope(3000)]
    items = [_item(str(n), data) for n, data in enumerate(pieces, 1)]
    release_a = threading.Event()
    hashing = spool_module.hash_range

    def held_back(fd: int, hasher: object, start: int, end: int, buffer: bytearray) -> int:
        if start < len(pieces[0]):  # a range of A: wait until B is checked
            release_a.wait(30)
        return hashing(fd, hasher, start, end, buffer)  # type: ignore[arg-type]

    monkeypatch.setattr(spool_module, "hash_range", held_back)
    fd = os.open(tmp_path / "bundle.part", os.O_RDWR | os.O_CREAT, 0o600)
    spool = Spool(fd, hashers=2)
    try:
        offset = 0
        for index, (item, data) in enumerate(zip(items, pieces, strict=True)):
            spool.begin(item, offset, hashlib.sha256(), offset)
            pwrite_all(fd, data, offset)
            offset += len(data)
            spool.wrote(offset)
            spool.end()
            if index == 1:
                # B is hashed and checked by the second thread while A waits.
                deadline = time.monotonic() + 30
                while len(spool._segments) > 1 and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert [s.item.id for s in spool._segments] == ["1"]
        release_a.set()
        assert spool.settle() is None
    finally:
        release_a.set()
        spool.close()
        os.close(fd)


@pytest.mark.timeout(300)
def test_pulls_of_large_and_small_envelopes_in_turn(tmp_path: Path) -> None:
    """30 items, 3 MiB and 100 bytes in turn, pulled several times: one bundle each time,
    holding every envelope in the manifest's order."""
    fake = FakeSync(server_key=SERVER_KEY, clients={CLIENT_KEY.key_id: CLIENT_KEY.public.key})
    envelopes = [_envelope(3 * MIB if n % 2 == 0 else 100) for n in range(30)]
    for envelope in envelopes:
        fake.add(envelope, "file")
    server = ServerThread(fake.app())
    try:
        for attempt in range(5):
            dest = tmp_path / f"usb-{attempt}"
            dest.mkdir()
            client = SyncClient(server.url, CLIENT_KEY)
            try:
                result = Puller(client, dest, stderr=io.StringIO(), tty=False).run()
            finally:
                client.close()
            [bundle] = result.bundles
            manifest, got = read_inbound(bundle, SERVER_KEY.public.key)
            assert [item.id for item in manifest.items] == [str(n) for n in range(1, 31)]
            assert got == envelopes
    finally:
        server.stop()
