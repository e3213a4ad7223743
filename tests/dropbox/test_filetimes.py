"""File times by the day, discarded files, the daily blur, the scrubbed SQLite journal and the
held-back request log (dropbox/filetimes.py, dropbox/sqlite_files.py, dropbox/request_log.py).

tests/seizure reads what all of this leaves on a raw image; these check each piece alone.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.logging import default_handler

from dropbox import db, request_log
from dropbox.filetimes import DAY_NS, DISCARDED_PREFIX, blur, day_of, discard, settle
from dropbox.sqlite_files import JOURNAL_SUFFIX
from dropbox.storage import LocalBlobStore
from dropbox.sweep import Sweeper

NOON = 1_796_652_000 * 1_000_000_000 + 123_456_789  # a time of day with nanoseconds


def test_settle_keeps_the_day_only(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    os.utime(path, ns=(NOON, NOON))
    settle(path)
    info = path.stat()
    assert info.st_mtime_ns == info.st_atime_ns == day_of(NOON) == NOON - NOON % DAY_NS
    settle(tmp_path / "gone")  # a path removed meanwhile is fine


def test_a_committed_blob_and_its_directory_carry_the_day(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    with store.writer() as writer:
        writer.write(b"ciphertext")
        blob_id = writer.commit()
    for path in (store.path(blob_id), store.root):
        assert path.stat().st_mtime_ns % DAY_NS == 0
        assert path.stat().st_atime_ns % DAY_NS == 0


def test_discard_empties_and_renames_and_the_blur_unlinks(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"secret" * 1000)
    with open(path, "rb") as still_open:
        assert discard(path)
        assert still_open.read() == b""  # overwritten, then cut off: the inode holds nothing
    [left] = os.listdir(tmp_path)
    assert left.startswith(DISCARDED_PREFIX)
    assert not discard(path)  # gone: nothing to discard
    blur(tmp_path)
    assert os.listdir(tmp_path) == []


def test_the_blur_sets_every_change_time_at_once_and_every_time_to_its_day(
    tmp_path: Path,
) -> None:
    (tmp_path / "sub").mkdir()
    files = [tmp_path / "a", tmp_path / "sub" / "b"]
    for path in files:
        path.write_bytes(b"x")
        os.utime(path, ns=(NOON, NOON))
    assert blur(tmp_path) == 4  # two files, the subdirectory, the root
    paths = [*files, tmp_path / "sub", tmp_path]
    for path in paths:
        assert path.stat().st_mtime_ns % DAY_NS == 0
    # Every change time is the blur's (to within the blur's own run).
    ctimes = [path.stat().st_ctime_ns for path in paths]
    assert max(ctimes) - min(ctimes) < 1_000_000_000


def test_a_deleted_row_leaves_nothing_in_the_journal(tmp_path: Path) -> None:
    engine = db.make_engine(db.sqlite_url(tmp_path))
    db.upgrade(engine)
    marker = os.urandom(32)
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO sources (lookup_id, source_id, reply_public, created_day) "
                    "VALUES (:l, :s, :r, '2026-12-07')"),
            {"l": marker, "s": os.urandom(16), "r": os.urandom(32)},
        )  # fmt: skip
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM sources"))
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "persist"
    engine.dispose()
    database = tmp_path / db.DATABASE_FILE
    journal = tmp_path / (db.DATABASE_FILE + JOURNAL_SUFFIX)
    assert journal.stat().st_size > 0  # kept for good (PERSIST): its blocks are never freed
    assert journal.read_bytes() == bytes(journal.stat().st_size)  # and all zeros
    assert marker not in database.read_bytes()  # secure_delete
    for path in (database, journal, tmp_path):
        assert path.stat().st_mtime_ns % DAY_NS == 0


def test_request_records_are_held_and_reported_once_a_day_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Flask("dropbox")
    held = request_log.install(app.extensions)
    _ = app.logger  # Flask's handler, which writes the dropbox loggers' records

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("dropbox", logging.ERROR, __file__, 1, message, (), None)

    with app.test_request_context("/"):
        # Held: a line would date the request.
        assert not default_handler.filter(record("a request failed: the disk is full"))
        assert not default_handler.filter(record("a request failed: the disk is full"))
    assert default_handler.filter(record("outside a request"))
    caplog.set_level(logging.ERROR, logger="dropbox")
    assert held.flush() == 1
    assert [r.getMessage() for r in caplog.records] == [
        "a request failed: the disk is full (2 time(s) since the last daily report)"
    ]
    assert held.flush() == 0


def test_the_sweeper_runs_the_daily_jobs_and_survives_a_failing_one(tmp_path: Path) -> None:
    ran: list[str] = []

    def failing() -> None:
        ran.append("failing")
        raise OSError("disk")

    engine = db.make_engine(db.sqlite_url(tmp_path))
    db.upgrade(engine)
    sweeper = Sweeper(db.make_sessionmaker(engine), LocalBlobStore(tmp_path / "blobs"),
                      daily=(failing, lambda: ran.append("blur")))  # fmt: skip
    sweeper.run_daily()
    assert ran == ["failing", "blur"]
    with pytest.raises(ValueError, match="interval"):
        Sweeper(db.make_sessionmaker(engine), LocalBlobStore(tmp_path / "b"),
                daily_interval=timedelta(0))  # fmt: skip
    engine.dispose()
