"""dropbox.uploads: the upload store on its own (the storage side of docs/format.md 8.3), on
both part stores: files in a directory (LocalParts) and rows in PostgreSQL (DatabaseParts, in
the suite's throwaway cluster), as tests/dropbox/test_blob_contract.py does for blobs."""

from __future__ import annotations

import contextlib
import errno
import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from config import ServerSettings
from dropbox import db
from dropbox.errors import DropboxError
from dropbox.filetimes import DISCARDED_PREFIX, blur
from dropbox.instance import load_instance
from dropbox.instance.create import init_instance
from dropbox.services import open_part_store
from dropbox.storage import LocalBlobStore, is_out_of_space
from dropbox.uploads import (
    LocalParts,
    OffsetMismatch,
    StreamInterrupted,
    UploadBusy,
    UploadConflict,
    UploadIncomplete,
    UploadNotFound,
    UploadStore,
    UploadStoreFull,
)
from dropbox.uploads.database_parts import PIECE_MAX, DatabaseParts
from tests.dropbox.tus_testapp import BrokenStream, complete_into, make_upload_store
from tests.support.team import Team

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["local", "database"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UploadStore]:
    if request.param == "local":
        yield make_upload_store(tmp_path)
        return
    yield from database_store(request.getfixturevalue("postgres_url"), tmp_path)


def database_store(url: str, tmp_path: Path) -> Iterator[UploadStore]:
    engine = db.make_engine(url)
    db.upgrade(engine)
    parts = DatabaseParts(engine)
    yield UploadStore(tmp_path / "unused", db.make_sessionmaker(engine), parts=parts)
    engine.dispose()


@pytest.fixture
def in_database(postgres_url: str, tmp_path: Path) -> Iterator[UploadStore]:
    yield from database_store(postgres_url, tmp_path)


def local(store: UploadStore) -> bool:
    return isinstance(store.parts, LocalParts)


def part_name(store: UploadStore, upload_id: str) -> str:
    upload = store.get(upload_id)
    assert upload is not None
    return upload.part


def live_parts(store: UploadStore) -> list[str]:
    """The parts stored (files: but those discarded, unlinked at the daily blur)."""
    if local(store):
        assert all(not n.startswith(DISCARDED_PREFIX) for n in store.parts.names())
    return sorted(store.parts.names())


def blur_parts(store: UploadStore) -> None:
    """The daily blur unlinks what was discarded (files); rows are deleted at once."""
    if local(store):
        blur(store.root)
        assert os.listdir(store.root) == []


def test_store_never_writes_past_the_length(store: UploadStore) -> None:
    upload = store.create("owner", 40, T0)
    assert store.append(upload.id, io.BytesIO(b"a" * 30), 1000) == 30
    assert store.append(upload.id, io.BytesIO(b"b" * 30), 1000) == 40
    assert store.append(upload.id, io.BytesIO(b"c" * 30), 1000) == 40
    assert store.read_prefix(upload.id, 100) == b"a" * 30 + b"b" * 10
    got = store.get(upload.id)
    assert got is not None
    assert got.complete


def test_store_keeps_bytes_when_the_stream_raises(store: UploadStore) -> None:
    upload = store.create("owner", 1 << 20, T0)
    body = BrokenStream(b"z" * 200_000, 150_000, 1 << 20, raises=True)
    with pytest.raises(StreamInterrupted) as caught:
        store.append(upload.id, body, 1 << 20)
    assert caught.value.offset == 150_000
    assert isinstance(caught.value.__cause__, ConnectionResetError)
    got = store.get(upload.id)
    assert got is not None
    assert got.offset == 150_000
    assert store.read_prefix(upload.id, 1 << 20) == b"z" * 150_000


def test_store_checks_the_expected_offset(store: UploadStore) -> None:
    upload = store.create("owner", 100, T0)
    store.append(upload.id, io.BytesIO(b"x" * 10), 10)
    with pytest.raises(OffsetMismatch) as caught:
        store.append(upload.id, io.BytesIO(b"y"), 1, expected_offset=9)
    assert caught.value.offset == 10
    assert store.append(upload.id, io.BytesIO(b"y"), 1, expected_offset=10) == 11


def test_store_refuses_a_second_writer(store: UploadStore, tmp_path: Path) -> None:
    upload = store.create("owner", 10, T0)
    # Another holder (a request on this node or another): an flock, an advisory lock.
    with store.parts.open(part_name(store, upload.id), exclusive=True):
        with pytest.raises(UploadBusy):
            store.append(upload.id, io.BytesIO(b"x"), 1)
        with pytest.raises(UploadBusy):
            complete_into(store, upload.id, LocalBlobStore(tmp_path / "blobs"))
    assert store.append(upload.id, io.BytesIO(b"x"), 1) == 1


def test_store_completes_only_whole_uploads(store: UploadStore, tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    upload = store.create("owner", 10, T0)
    store.append(upload.id, io.BytesIO(b"0123456"), 10)
    with pytest.raises(UploadIncomplete):
        complete_into(store, upload.id, blobs)
    assert list(blobs.ids()) == []
    store.append(upload.id, io.BytesIO(b"789"), 10)
    blob_id = complete_into(store, upload.id, blobs)
    with blobs.open(blob_id) as handle:
        assert handle.read() == b"0123456789"
    assert store.get(upload.id) is None
    assert live_parts(store) == []
    blur_parts(store)
    with pytest.raises(UploadNotFound):
        complete_into(store, upload.id, blobs)


def test_store_expire_goes_by_the_day_and_discards_parts_no_row_names(
    store: UploadStore,
) -> None:
    live = store.create("owner", 10, T0)  # Nov 24, 09:00: expired from 00:00 on Nov 26
    # What a crash between a row's deletion and its part's leaves, or a deleted source's
    # upload (its row went with the source): a part no row names.
    store.parts.create("ab" * 16)
    with store.parts.open("ab" * 16, exclusive=True) as orphan:
        orphan.append(b"ciphertext")
        orphan.sync()
    assert store.parts.size("ab" * 16) == 10
    assert store.expire(T0 + timedelta(hours=38, minutes=59)) == 0
    assert live_parts(store) == [part_name(store, live.id)]
    assert store.get(live.id) is not None
    assert store.expire(T0 + timedelta(hours=39)) == 1
    assert live_parts(store) == []
    assert store.get(live.id) is None
    blur_parts(store)


def test_store_wants_aware_times(store: UploadStore) -> None:
    with pytest.raises(ValueError, match="timezone"):
        store.create("owner", 10, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="owner"):
        store.create("", 10, T0)


def test_a_capability_is_returned_once_and_kept_only_as_its_hash(store: UploadStore) -> None:
    upload, secret = store.create_with_key("owner-1", 10, T0)
    assert len(secret) == 43
    with store._db() as session:
        assert session.execute(sa.text("SELECT count(*) FROM uploads")).scalar() == 1
        kept = session.execute(sa.text("SELECT * FROM uploads")).one()
    assert secret not in repr(tuple(kept))
    found = store.get(upload.id)
    assert found is not None
    assert found.opens_with(secret)
    assert not found.opens_with(secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    _, other_secret = store.create_with_key("owner-1", 10, T0)
    assert not found.opens_with(other_secret)


def test_copy_into_leaves_the_upload_for_the_caller_to_delete(
    store: UploadStore, tmp_path: Path
) -> None:
    upload = store.create("owner-1", 5, T0)
    store.append(upload.id, io.BytesIO(b"hello"), 5)
    blobs = LocalBlobStore(tmp_path / "blobs")
    with contextlib.ExitStack() as hold:
        first = store.copy_into(upload.id, blobs, hold)
    assert store.get(upload.id) is not None
    # Copied again (a retry after a crash): the same content-addressed blob.
    with contextlib.ExitStack() as hold:
        assert store.copy_into(upload.id, blobs, hold) == first
    assert os.listdir(tmp_path / "blobs") == [first]


def test_a_full_disk_during_append_keeps_none_of_it(
    store: UploadStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload = store.create("owner-1", 300_000, T0)
    assert store.append(upload.id, io.BytesIO(b"a" * 1000), 1000) == 1000
    writes = {"n": 0}
    real = os.write

    def fills_up(fd: int, data: bytes) -> int:
        writes["n"] += 1
        if writes["n"] > 1:
            raise OSError(errno.EDQUOT, "quota")
        return real(fd, data)

    def database_full(_connection: object, _cursor: object, statement: str, *_: object) -> None:
        # What PostgreSQL answers an insert when its disk is full (SQLSTATE 53100).
        if statement.startswith("INSERT INTO upload_parts"):
            raise psycopg.errors.DiskFull("could not extend file: No space left on device")

    if local(store):
        monkeypatch.setattr("common.files.os.write", fills_up)
    else:
        assert isinstance(store.parts, DatabaseParts)
        sa.event.listen(store.parts.engine, "before_cursor_execute", database_full)
    with pytest.raises(UploadStoreFull):
        store.append(upload.id, io.BytesIO(b"b" * 200_000), 200_000)
    monkeypatch.undo()
    if not local(store):
        assert isinstance(store.parts, DatabaseParts)
        sa.event.remove(store.parts.engine, "before_cursor_execute", database_full)
    found = store.get(upload.id)
    assert found is not None
    assert found.offset == 1000
    assert is_out_of_space(UploadStoreFull("x"))
    assert not is_out_of_space(OSError(errno.EIO, "io"))


def test_database_parts_are_pieces_of_at_most_a_mebibyte(in_database: UploadStore) -> None:
    store = in_database
    size = 2 * PIECE_MAX + 500_000
    data = os.urandom(size)
    upload = store.create("owner-1", size, T0)
    # Two PATCH requests; the second is cut back to where it began (as after a full disk).
    assert store.append(upload.id, io.BytesIO(data[:1_500_000]), size) == 1_500_000
    with store.parts.open(upload.part, exclusive=True) as part:
        part.append(b"x" * 700_000)
        part.sync()
        assert part.size() == 2_200_000
        part.truncate(1_200_000)
        assert part.size() == 1_200_000
    assert store.append(upload.id, io.BytesIO(data[1_200_000:]), size) == size
    assert store.read_prefix(upload.id, size) == data
    with store._db() as session:
        lengths = session.execute(
            sa.text("SELECT length(data) FROM upload_parts WHERE name = :n ORDER BY seq"),
            {"n": upload.part},
        ).scalars()
        assert max(lengths) <= PIECE_MAX
    assert store.parts.size(upload.part) == size
    assert store.delete(upload.id)
    assert store.parts.size(upload.part) is None
    assert list(store.parts.names()) == []


def test_the_blob_store_setting_chooses_the_part_store(tmp_path: Path, postgres_url: str) -> None:
    data_dir = tmp_path / "data"
    init_instance(data_dir, Team().root.public.key, database_url=postgres_url)
    instance = load_instance(data_dir)
    engine = db.make_engine(postgres_url)
    try:
        local_parts = open_part_store(ServerSettings(data_dir=data_dir), instance, engine)
        assert isinstance(local_parts, LocalParts)
        assert local_parts.root == instance.uploads_dir
        shared = ServerSettings(data_dir=data_dir, blob_store="database")
        assert isinstance(open_part_store(shared, instance, engine), DatabaseParts)
    finally:
        engine.dispose()
    sqlite = db.make_engine(db.sqlite_url(tmp_path))
    with pytest.raises(DropboxError, match="in PostgreSQL"):
        open_part_store(shared, instance, sqlite)


def test_a_creation_killed_between_its_row_and_its_part_is_finished_when_asked_again(
    store: UploadStore,
) -> None:
    """A kill after the row's commit and before its part leaves a row without a part; the
    page asks again with the capability it chose and must get that upload, empty (the soak
    met a 409 here, which left the upload unreachable until it expired)."""
    secret = "c" * 43
    upload, _ = store.create_with_key("owner-1", 10, T0, secret)
    assert store.parts.discard(upload.part)  # as if the process died before creating it
    assert store.get(upload.id) is None
    again, same = store.create_with_key("owner-1", 10, T0, secret)
    assert (again.id, again.offset, same) == (upload.id, 0, secret)
    assert store.parts.size(again.part) == 0
    assert store.append(again.id, io.BytesIO(b"0123456789"), 10) == 10
    with pytest.raises(UploadConflict):
        store.create_with_key("owner-1", 11, T0, secret)  # the same id, another length
