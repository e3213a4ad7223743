"""An import killed half-way (SIGKILL, as in a power cut) leaves nothing imported; the next
import sweeps its temporary files and succeeds."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from crypto import Kind, Sealer
from journalist_ui import ledger
from journalist_ui.importer import import_bundle
from journalist_ui.store.models import Item, LedgerRecord
from tests.journalist_ui.storekit import (
    Entry,
    FakeSource,
    make_home,
    open_home,
    pin,
    recipients,
    server_key,
    write_bundle,
)
from tests.support.cli import JOURNALIST, PASSPHRASE

MIB = 1024 * 1024


def big_file(home, size: int) -> bytes:
    sealer = Sealer(recipients(home), Kind.FILE, "big.bin", "application/octet-stream")
    block = os.urandom(MIB)
    parts = [sealer.header]
    for _ in range(size // MIB):
        parts.append(sealer.update(block))
    parts.extend(sealer.finish())
    return b"".join(parts)


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_a_killed_import_leaves_nothing(tmp_path):
    home = make_home(tmp_path / "home")
    key = server_key()
    pin(home, key)
    source = FakeSource()
    entries = [Entry(str(n), source, "file", big_file(home, 48 * MIB)) for n in range(1, 5)]
    bundle = write_bundle(tmp_path / "big.bundle", key, entries)
    envelopes = home / "store" / "envelopes"

    read_end, write_end = os.pipe()
    os.write(write_end, PASSPHRASE.encode() + b"\n")
    os.close(write_end)
    process = subprocess.Popen(
        [str(JOURNALIST), "import", str(bundle), "--home", str(home),
         "--passphrase-fd", str(read_end)],
        pass_fds=(read_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(read_end)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        partial = [p for p in envelopes.glob(".import-*") if p.stat().st_size > 8 * MIB]
        if partial:
            break
        time.sleep(0.005)
    if process.poll() is not None:
        pytest.fail("the import finished before it could be killed; make the bundle larger")
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)

    assert [p.name for p in envelopes.iterdir() if not p.name.startswith(".import-")] == []
    assert not (home / "ledger.head").exists()
    unlocked = open_home(home)
    try:
        with unlocked.store.session() as session:
            assert session.scalar(select(func.count()).select_from(Item)) == 0
            assert session.scalar(select(func.count()).select_from(LedgerRecord)) == 0
        result = import_bundle(
            unlocked, bundle, today=date(2026, 11, 24), now=datetime(2026, 11, 24, tzinfo=UTC)
        )
        assert result.imported == 4
        with unlocked.store.session() as session:
            names = set(session.scalars(select(Item.envelope_name)))
            assert ledger.verify(session, unlocked.layout.ledger_head).ok
        assert {p.name for p in envelopes.iterdir()} == names
    finally:
        unlocked.lock()
