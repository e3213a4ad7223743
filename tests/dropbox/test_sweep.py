"""Reclaiming orphans (dropbox/sweep.py): blobs no row names, never one in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from dropbox import db
from dropbox.app import SWEEPER_KEY, create_app
from dropbox.filetimes import blur
from dropbox.instance import load_instance
from dropbox.storage import LocalBlobStore
from dropbox.sweep import Sweeper, sweep
from tests.support.blobs import put, record
from tests.support.cli import DROPBOX, run_tool
from tests.support.database import settings_for
from tests.support.server import make_data_dir
from tests.support.team import Team

TODAY = date(2026, 12, 7)


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    yield db.make_sessionmaker(engine)
    engine.dispose()


def test_orphans_and_stale_temporaries_go_named_and_held_blobs_stay(tmp_path, sessions):
    store = LocalBlobStore(tmp_path / "blobs")
    named = put(store, b"named")
    record(sessions, [named], TODAY)
    orphan = put(store, b"orphan of a crash")
    (store.root / ".incoming-dead").write_bytes(b"a killed writer's")
    held = store.writer()
    held.write(b"committed, row not yet recorded")
    held_id = held.commit()
    writing = store.writer()
    writing.write(b"still streaming in")

    result = sweep(sessions, store)

    assert (result.blobs, result.bytes, result.temporaries) == (1, len(b"orphan of a crash"), 1)
    assert not store.exists(orphan)
    assert store.exists(named)
    assert store.exists(held_id)
    record(sessions, [held_id], TODAY)
    held.release()
    assert store.exists(writing.commit())
    writing.release()
    # Released without a row: now an orphan like any other.
    assert sweep(sessions, store).blobs == 1
    blur(store.root)  # unlinks what was discarded (dropbox/filetimes.py)
    assert sorted(os.listdir(store.root)) == sorted([named, held_id])


def test_a_blob_held_by_another_process_is_in_flight_until_it_dies(tmp_path, sessions):
    store = LocalBlobStore(tmp_path / "blobs")
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from dropbox.storage import LocalBlobStore\n"
        "w = LocalBlobStore(Path(sys.argv[1])).writer()\n"
        "w.write(b'held elsewhere')\n"
        "print(w.commit(), flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(store.root)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        blob_id = child.stdout.readline().strip()
        assert sweep(sessions, store).blobs == 0
        assert store.exists(blob_id)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert sweep(sessions, store).blobs == 1
    assert not store.exists(blob_id)


def test_the_app_reclaims_orphans_before_serving_and_its_sweeper_stops(tmp_path):

    data_dir = make_data_dir(tmp_path / "data", Team())
    store = LocalBlobStore(load_instance(data_dir).blobs_dir)
    orphan = put(store, b"left by a crash")
    app = create_app(settings_for(data_dir), sweep_interval=timedelta(hours=1))
    try:
        assert not store.exists(orphan)
        assert isinstance(app.extensions[SWEEPER_KEY], Sweeper)
    finally:
        app.extensions[SWEEPER_KEY].stop()


def test_the_sweeper_sweeps_periodically(tmp_path, sessions):
    store = LocalBlobStore(tmp_path / "blobs")
    sweeper = Sweeper(sessions, store, timedelta(milliseconds=20))
    sweeper.start()
    try:
        orphan = put(store, b"orphan")
        for _ in range(500):
            if not store.exists(orphan):
                break
            threading.Event().wait(0.01)
        assert not store.exists(orphan)
    finally:
        sweeper.stop()
    with pytest.raises(ValueError, match="positive"):
        Sweeper(sessions, store, timedelta(0))


def test_dropbox_purge_reclaims_orphans(tmp_path):
    data_dir = make_data_dir(tmp_path / "data", Team())
    store = LocalBlobStore(load_instance(data_dir).blobs_dir)
    orphan = put(store, b"x" * 100)
    (store.root / ".incoming-dead").write_bytes(b"y")
    done = run_tool(DROPBOX, "purge", "--data-dir", data_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == (
        "Reclaimed 1 orphan blob (100 bytes) and 1 stale temporary file."
    )
    blur(store.root)
    assert os.listdir(store.root) == []
    assert not store.exists(orphan)
