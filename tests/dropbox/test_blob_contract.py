"""The blob store contract, on both stores: local files (dropbox/storage.py) and PostgreSQL
(dropbox/database_blobs.py, in the suite's throwaway cluster). The sweep relies on every
point: a blob exists whole or not at all, stays held until released, and is reclaimed only
when no writer holds it and no row names it, decided atomically with writers committing."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from config import ServerSettings, SettingsError, load_server_settings
from dropbox import db
from dropbox.database_blobs import CHUNK_SIZE, DatabaseBlobStore, lock_key
from dropbox.errors import DropboxError
from dropbox.instance.create import init_instance
from dropbox.services import open_services, utc_now
from dropbox.storage import LocalBlobStore, ReclaimableBlobStore, StorageError
from dropbox.sweep import sweep
from tests.support.blobs import put, record
from tests.support.team import Team

TODAY = date(2026, 12, 7)


@dataclass
class Case:
    kind: str
    store: ReclaimableBlobStore
    sessions: sessionmaker[Session]
    engine: Engine
    #: How a child process opens the same store: the blob directory or the database URL.
    address: str


@pytest.fixture(params=["local", "database"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    store: ReclaimableBlobStore
    if request.param == "local":
        engine = db.make_engine(db.sqlite_url(tmp_path))
        store = LocalBlobStore(tmp_path / "blobs")
        address = str(tmp_path / "blobs")
    else:
        address = request.getfixturevalue("postgres_url")
        engine = db.make_engine(address)
        store = DatabaseBlobStore(engine)
    db.upgrade(engine)
    yield Case(request.param, store, db.make_sessionmaker(engine), engine, address)
    engine.dispose()


def test_commit_names_the_blob_by_its_sha256(case: Case) -> None:
    store = case.store
    with store.writer() as writer:
        writer.write(b"cipher")
        writer.write(memoryview(b"text"))
        assert writer.size == 10
        blob_id = writer.commit()
    assert blob_id == hashlib.sha256(b"ciphertext").hexdigest()
    assert store.exists(blob_id)
    assert store.size(blob_id) == len(b"ciphertext")
    with store.open(blob_id) as handle:
        assert handle.read() == b"ciphertext"
    assert list(store.ids()) == [blob_id]
    # The same bytes again: the same id, one blob.
    assert put(store, b"ciphertext") == blob_id
    assert list(store.ids()) == [blob_id]
    assert put(store, b"") == hashlib.sha256(b"").hexdigest()
    with store.open(hashlib.sha256(b"").hexdigest()) as handle:
        assert handle.read() == b""


def test_a_blob_of_several_chunks_reads_back_whole_and_in_pieces(case: Case) -> None:
    data = os.urandom(3 * CHUNK_SIZE + 12345)
    with case.store.writer() as writer:
        for at in range(0, len(data), 100_000):
            writer.write(data[at : at + 100_000])
        blob_id = writer.commit()
    assert case.store.size(blob_id) == len(data)
    with case.store.open(blob_id) as handle:
        assert handle.read(10) == data[:10]
        handle.seek(CHUNK_SIZE - 5)
        assert handle.read(10) == data[CHUNK_SIZE - 5 : CHUNK_SIZE + 5]
        handle.seek(0)
        pieces = iter(lambda: handle.read(65536), b"")
        assert b"".join(pieces) == data


def test_an_unfinished_blob_never_appears_and_leaves_nothing(case: Case) -> None:
    store = case.store

    def interrupted_upload() -> None:
        with store.writer() as writer:
            writer.write(b"half an envelope" * 100_000)
            assert list(store.ids()) == []
            raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        interrupted_upload()
    assert list(store.ids()) == []
    writer = store.writer()
    writer.write(b"x")
    writer.abort()
    assert list(store.ids()) == []
    assert store.remove_stale_temporaries() == 0
    with pytest.raises(StorageError):
        writer.write(b"y")
    if case.kind == "database":
        with case.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM blob_chunks").scalar() == 0


@pytest.mark.parametrize("bad", ["../../etc/passwd", "A" * 64, "g" * 64, "", "0" * 65])
def test_bad_ids_are_refused(case: Case, bad: str) -> None:
    for operation in (case.store.open, case.store.delete, case.store.size):
        with pytest.raises(StorageError):
            operation(bad)


def test_delete_removes_the_blob_and_is_idempotent(case: Case) -> None:
    blob_id = put(case.store, b"secret-looking ciphertext" * 100_000)
    kept = put(case.store, b"another")
    case.store.delete(blob_id)
    assert not case.store.exists(blob_id)
    case.store.delete(blob_id)
    with pytest.raises(StorageError):
        case.store.open(blob_id)
    with pytest.raises(StorageError):
        case.store.size(blob_id)
    assert list(case.store.ids()) == [kept]
    if case.kind == "database":
        with case.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM blob_chunks").scalar() == 1


def test_orphans_go_named_and_held_blobs_stay(case: Case) -> None:
    store, sessions = case.store, case.sessions
    named = put(store, b"named")
    record(sessions, [named], TODAY)
    orphan = put(store, b"orphan of a crash")
    held = store.writer()
    held.write(b"committed, row not yet recorded")
    held_id = held.commit()
    writing = store.writer()
    writing.write(b"still streaming in")

    result = sweep(sessions, store)

    assert (result.blobs, result.bytes) == (1, len(b"orphan of a crash"))
    assert not store.exists(orphan)
    assert store.exists(named)
    assert store.exists(held_id)
    record(sessions, [held_id], TODAY)
    held.release()
    assert store.exists(writing.commit())
    writing.release()
    # Released without a row: now an orphan like any other.
    assert sweep(sessions, store).blobs == 1
    assert sorted(store.ids()) == sorted([named, held_id])


def test_a_blob_held_by_two_writers_stays_until_both_release(case: Case) -> None:
    first, second = case.store.writer(), case.store.writer()
    for writer in (first, second):
        writer.write(b"the same bytes")
    blob_id = first.commit()
    assert second.commit() == blob_id
    first.release()
    assert sweep(case.sessions, case.store).blobs == 0
    second.release()
    assert sweep(case.sessions, case.store).blobs == 1
    assert not case.store.exists(blob_id)


def test_a_writer_committing_while_the_sweep_decides_keeps_its_blob(case: Case) -> None:
    """A writer committing the very blob being decided about waits for the decision, and
    its blob exists afterwards."""
    store = case.store
    orphan = put(store, b"same bytes")
    writer = store.writer()
    writer.write(b"same bytes")
    committed: list[str] = []
    deciding = threading.Event()

    def still_named(blob_id: str) -> bool:
        deciding.set()
        thread.join(0.5)  # the writer is blocked meanwhile
        assert not committed
        return False

    def commit() -> None:
        deciding.wait()
        committed.append(writer.commit())

    thread = threading.Thread(target=commit)
    thread.start()
    assert store.reclaim(orphan, still_named)
    thread.join()
    assert committed == [orphan]
    assert store.exists(orphan)
    with store.open(orphan) as handle:
        assert handle.read() == b"same bytes"
    writer.release()


def wait_for_the_lock_to_end(engine: Engine, blob_id: str) -> None:
    """PostgreSQL ends a session (and its advisory locks) once it reads the end of its
    connection, a moment after the client died."""
    key = lock_key(blob_id) & 0xFFFFFFFFFFFFFFFF
    query = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :high "
        "AND objid = :low AND objsubid = 1"
    )
    deadline = time.monotonic() + 30
    while True:
        with engine.connect() as connection:
            held = connection.execute(query, {"high": key >> 32, "low": key & 0xFFFFFFFF})
            if held.scalar() == 0:
                return
        assert time.monotonic() < deadline, "the dead writer's session still holds its lock"
        time.sleep(0.05)


_HOLDER = """
import sys, time
from pathlib import Path
kind, address = sys.argv[1:]
if kind == "local":
    from dropbox.storage import LocalBlobStore
    store = LocalBlobStore(Path(address))
else:
    from dropbox import db
    from dropbox.database_blobs import DatabaseBlobStore
    store = DatabaseBlobStore(db.make_engine(address))
w = store.writer()
w.write(b"held elsewhere")
print(w.commit(), flush=True)
time.sleep(600)
"""


def test_a_blob_held_by_another_process_is_in_flight_until_it_dies(case: Case) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, case.kind, case.address], stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        blob_id = child.stdout.readline().strip()
        assert case.store.exists(blob_id)
        assert sweep(case.sessions, case.store).blobs == 0
        assert case.store.exists(blob_id)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    if case.kind == "database":
        wait_for_the_lock_to_end(case.engine, blob_id)
    assert sweep(case.sessions, case.store).blobs == 1
    assert not case.store.exists(blob_id)


def test_a_pull_reads_the_blob_one_chunk_at_a_time(postgres_url: str) -> None:
    engine = db.make_engine(postgres_url)
    db.upgrade(engine)
    store = DatabaseBlobStore(engine)
    blob_id = put(store, os.urandom(3 * CHUNK_SIZE))
    queries: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "blob_chunks" in statement:
            queries.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with store.open(blob_id) as handle:
            handle.read(100)
            assert len(queries) == 1
            handle.read(CHUNK_SIZE)
            assert len(queries) == 2
            assert len(handle.read()) == 2 * CHUNK_SIZE - 100
            assert len(queries) == 3
    finally:
        event.remove(engine, "before_cursor_execute", count)
        engine.dispose()


def test_the_setting_selects_the_store(tmp_path: Path) -> None:
    env = {"POSTERN_DATA_DIR": str(tmp_path)}
    assert load_server_settings(env).blob_store == "local"
    assert load_server_settings({**env, "POSTERN_BLOB_STORE": "database"}).blob_store == (
        "database"
    )
    with pytest.raises(SettingsError, match="POSTERN_BLOB_STORE must be local or database"):
        load_server_settings({**env, "POSTERN_BLOB_STORE": "s3"})
    # SQLite, whichever backend the suite runs on: the database store refuses it.
    data_dir = tmp_path / "data"
    init_instance(data_dir, Team().root.public.key)
    with pytest.raises(DropboxError, match="keeps the blobs in PostgreSQL"):
        open_services(ServerSettings(data_dir=data_dir, blob_store="database"), utc_now)
