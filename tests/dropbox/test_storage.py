"""Tests for dropbox.storage: atomic, content-addressed, path-confined, really deleted."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dropbox import filetimes, storage
from dropbox.filetimes import DISCARDED_PREFIX, blur
from dropbox.storage import LocalBlobStore, StorageError, check_blob_id


def test_commit_names_the_blob_by_its_sha256_and_makes_it_private(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    with store.writer() as writer:
        writer.write(b"cipher")
        writer.write(memoryview(b"text"))
        blob_id = writer.commit()
    assert blob_id == hashlib.sha256(b"ciphertext").hexdigest()
    assert store.exists(blob_id)
    assert store.size(blob_id) == len(b"ciphertext")
    with store.open(blob_id) as handle:
        assert handle.read() == b"ciphertext"
    assert stat.S_IMODE(store.path(blob_id).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "blobs").stat().st_mode) == 0o700
    assert list(store.ids()) == [blob_id]


def test_an_unfinished_blob_never_appears_and_leaves_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")

    def interrupted_upload() -> None:
        with store.writer() as writer:
            writer.write(b"half an envelope")
            assert list(store.ids()) == []
            raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        interrupted_upload()
    # Discarded (emptied, renamed), unlinked by the daily blur (dropbox/filetimes.py).
    assert all(name.startswith(DISCARDED_PREFIX) for name in os.listdir(tmp_path / "blobs"))
    writer = store.writer()
    writer.write(b"x")
    writer.abort()
    blur(tmp_path / "blobs")
    assert os.listdir(tmp_path / "blobs") == []
    with pytest.raises(StorageError):
        writer.write(b"y")


def test_stale_temporaries_from_a_crash_are_removed(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    # What a killed process leaves: a temporary file nobody holds a lock on.
    (tmp_path / "blobs" / ".incoming-0123").write_bytes(b"left behind")
    live = store.writer()
    live.write(b"still being written")
    committed = store.writer()
    committed.write(b"kept")
    kept = committed.commit()
    committed.release()
    assert store.remove_stale_temporaries() == 1
    blur(tmp_path / "blobs")
    # The live writer's temporary file is in flight: untouched, and it still commits.
    assert len(os.listdir(tmp_path / "blobs")) == 2
    assert kept in os.listdir(tmp_path / "blobs")
    assert store.exists(live.commit())
    live.release()


@pytest.mark.parametrize(
    "bad",
    ["../../etc/passwd", "a" * 63, "A" * 64, "g" * 64, "0" * 64 + "/", "", ".incoming-x", "0" * 65],
)
def test_blob_ids_cannot_escape_the_store(tmp_path: Path, bad: str) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    with pytest.raises(StorageError):
        check_blob_id(bad)
    with pytest.raises(StorageError):
        store.open(bad)
    with pytest.raises(StorageError):
        store.delete(bad)


def test_delete_removes_the_file_and_is_idempotent(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    writer = store.writer()
    writer.write(b"secret-looking ciphertext" * 1000)
    blob_id = writer.commit()
    path = store.path(blob_id)
    inode_handle = open(path, "rb")  # noqa: SIM115 - kept open to read the unlinked inode
    try:
        store.delete(blob_id)
        assert not path.exists()
        assert not store.exists(blob_id)
        inode_handle.seek(0)
        # The bytes were overwritten with zeros, then cut off: the old inode holds none.
        assert inode_handle.read() == b""
    finally:
        inode_handle.close()
    store.delete(blob_id)
    with pytest.raises(StorageError):
        store.open(blob_id)
    with pytest.raises(StorageError):
        store.size(blob_id)


def test_a_blob_being_reclaimed_is_no_stale_temporary_for_another_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between its rename and its overwrite, a reclaimed blob has a temporary name: a worker
    starting meanwhile (another store on the directory) must leave it to be overwritten."""
    store, other = LocalBlobStore(tmp_path / "blobs"), LocalBlobStore(tmp_path / "blobs")
    with store.writer() as writer:
        writer.write(b"an orphan")
        blob_id = writer.commit()
    removed_meanwhile: list[int] = []
    discard = filetimes.discard

    def another_worker_starts_first(path: Path) -> bool:
        removed_meanwhile.append(other.remove_stale_temporaries())
        assert path.exists()
        return discard(path)

    monkeypatch.setattr(storage, "discard", another_worker_starts_first)
    assert store.reclaim(blob_id, lambda _: False)
    assert removed_meanwhile == [0]
    left = os.listdir(tmp_path / "blobs")
    assert [name for name in left if not name.startswith(DISCARDED_PREFIX)] == []


def test_another_process_writing_keeps_its_temporary_when_a_worker_starts(tmp_path: Path) -> None:
    """A worker starting (its sweep of stale temporaries) while another worker process streams
    a blob in leaves that blob's temporary file alone."""
    root = tmp_path / "blobs"
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from dropbox.storage import LocalBlobStore\n"
        "w = LocalBlobStore(Path(sys.argv[1])).writer()\n"
        "w.write(b'first half')\n"
        "print('writing', flush=True)\n"
        "sys.stdin.readline()\n"
        "w.write(b', second half')\n"
        "print(w.commit(), flush=True)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdin is not None
        assert child.stdout.readline().strip() == "writing"
        assert LocalBlobStore(root).remove_stale_temporaries() == 0
        child.stdin.write("go on\n")
        child.stdin.flush()
        blob_id = child.stdout.readline().strip()
        assert child.wait(30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for pipe in (child.stdin, child.stdout):
            if pipe is not None:
                pipe.close()
    with LocalBlobStore(root).open(blob_id) as blob:
        assert blob.read() == b"first half, second half"


def test_postgresql_disk_full_is_out_of_space_and_nothing_else_of_its_class_is():
    """SQLSTATE 53100 (disk_full) is a full disk, raw from psycopg or wrapped by SQLAlchemy;
    out_of_memory (53200) and too_many_connections (53300) pass with time and are not."""
    import psycopg
    from sqlalchemy.exc import OperationalError

    full = psycopg.errors.DiskFull("could not extend file: No space left on device")
    assert full.sqlstate == "53100"
    assert storage.is_out_of_space(full)
    assert storage.is_out_of_space(OperationalError("INSERT INTO submissions", {}, full))
    chained = StorageError("the blob store's database failed")
    chained.__cause__ = full
    assert storage.is_out_of_space(chained)
    for other in (psycopg.errors.OutOfMemory("oom"), psycopg.errors.TooManyConnections("busy")):
        assert not storage.is_out_of_space(other)
        assert not storage.is_out_of_space(OperationalError("SELECT 1", {}, other))
