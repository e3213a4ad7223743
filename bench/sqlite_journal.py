"""Benchmark of the database's journal handling (dropbox/sqlite_files.py) against SQLite's default.

Run from the repository root:

    .venv/bin/python bench/sqlite_journal.py [--transactions 300] [--rounds 3] [--work-dir DIR]

Two databases made by the migrations, in a temporary directory under --work-dir (default: the
system's temporary directory; put it on the disk the server uses, since fsyncs are the cost):

- **baseline**: what the server did before: SQLite's default rollback journal (DELETE: the
  journal is written and unlinked at every write), ``secure_delete`` and foreign keys on;
- **postern**: ``dropbox.db.make_engine``: PERSIST, and the journal overwritten with zeros
  under the write lock after every connection that wrote (plus day-only file times).

Each transaction is what a source's write looks like: insert a source row, then delete a row
(the delete makes the journal hold a page with a row in it). Rounds alternate between the two,
and the best round of each is compared. Prints milliseconds per write transaction and the
ratio postern / baseline.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from datetime import date

from sqlalchemy import Engine, create_engine, delete, event, select
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from dropbox import db


def _baseline_options(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA secure_delete = ON")
    finally:
        cursor.close()


def baseline_engine(directory: Path) -> Engine:
    engine = create_engine(db.sqlite_url(directory), connect_args={"timeout": 30})
    event.listen(engine, "connect", _baseline_options)
    return engine


def writes(engine: Engine, count: int) -> float:
    """Seconds per write transaction (insert a source, delete the oldest)."""
    sessions = db.make_sessionmaker(engine)
    start = time.perf_counter()
    for _ in range(count):
        with sessions() as session, session.begin():
            session.add(
                db.Source(
                    lookup_id=os.urandom(32),
                    source_id=os.urandom(16),
                    reply_public=os.urandom(32),
                    created_day=date(2026, 12, 7),
                )
            )
        with sessions() as session, session.begin():
            oldest = session.scalars(select(db.Source.id).order_by(db.Source.id).limit(1)).first()
            session.execute(delete(db.Source).where(db.Source.id == oldest))
    return (time.perf_counter() - start) / (2 * count)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/sqlite_journal.py", description=__doc__)
    parser.add_argument("--transactions", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.work_dir) as work:
        results: dict[str, list[float]] = {"baseline": [], "postern": []}
        engines = {}
        for name in results:
            directory = Path(work) / name
            directory.mkdir()
            (directory / db.DATABASE_FILE).touch()
            db.upgrade(db.make_engine(db.sqlite_url(directory)))
            engines[name] = (
                baseline_engine(directory)
                if name == "baseline"
                else db.make_engine(db.sqlite_url(directory))
            )
        for _ in range(args.rounds):
            for name, engine in engines.items():
                results[name].append(writes(engine, args.transactions))
        for engine in engines.values():
            engine.dispose()
        print(f"work dir: {work} ({args.transactions} x 2 write transactions, "
              f"{args.rounds} rounds, best round)")  # fmt: skip
        best = {name: min(values) for name, values in results.items()}
        for name, seconds in best.items():
            print(f"{name:9} {seconds * 1000:7.3f} ms per write transaction")
        print(f"ratio postern / baseline: {best['postern'] / best['baseline']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
