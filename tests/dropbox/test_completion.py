"""The script path survives crashes, retries, hours-long uploads and full disks.

* completion is idempotent: a retry with the same key after a lost answer (a crash injected
  between the commit and the answer, or between the blobs and the commit) gets the same
  answer and never a 404 or a second submission;
* an upload is authorized by its capability alone, so it outlives the web session: a 4 GiB
  upload at 300 KB/s (about 4 hours, with the injected clock) completes after the source logs
  in again;
* a full disk answers 507 with Retry-After and the tus JSON error, keeps nothing partial, and
  everything works again once there is room.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from common import files
from crypto import Kind, open_bytes
from crypto.envelope import Metadata, Sealer, envelope_length
from dropbox import completion
from dropbox.db import Item, Submission, UploadRow
from dropbox.uploads import UploadStore
from tests.dropbox.sitetools import START, Site, generate, login, make_site
from tests.dropbox.sitetools import token_for as page_token
from tests.dropbox.test_api import (
    OCTETS,
    Source,
    error_of,
    items_of,
    new_key,
    new_source,
    sealed,
    stored,
    upload_id,
)
from tests.support.database import DATABASES
from tests.support.server import make_data_dir
from tests.support.team import Team

GiB = 1024**3


class Crash(BaseException):
    """A fault that nothing in the app catches: the process died at this point."""


def crash(*_args: Any, **_kwargs: Any) -> Any:
    raise Crash


@pytest.fixture(scope="module")
def team() -> Team:
    return Team()


@pytest.fixture
def site(team: Team, tmp_path) -> Site:
    return make_site(make_data_dir(tmp_path / "data", team))


def referenced_blobs(site: Site) -> set[str]:
    with site.services.db() as db:
        return {item.blob_id for item in db.query(Item)}


# -- idempotent completion -------------------------------------------------------------------


def test_a_retry_after_a_crash_between_commit_and_answer_gets_the_same_answer(
    site, team, monkeypatch
):
    source = new_source(site)
    ids = [source.upload(sealed(team, b"one")), source.upload(sealed(team, b"two"))]
    body = items_of([(ids[0], "message"), (ids[1], "file")])
    # The rows are committed, then the process dies before the uploads are deleted and
    # before the answer leaves.
    with monkeypatch.context() as patch:
        patch.setattr(UploadStore, "delete", crash)
        with pytest.raises(Crash):
            source.submit(body)
    assert stored(site).submissions == 1
    assert len(stored(site).uploads) == 2  # still there: the retry removes them
    retry = source.submit(body)
    assert retry.status_code == 200
    assert retry.get_json() == {"ok": True, "items": 2, "next": "/submit/done"}
    now = stored(site)
    assert (now.submissions, now.items, now.uploads) == (1, 2, ())
    assert set(now.blobs) == referenced_blobs(site)
    # And again: still the same answer, still one submission.
    assert source.submit(body).status_code == 200
    assert stored(site).submissions == 1


def test_a_retry_after_a_crash_between_two_deletions_removes_the_rest(site, team, monkeypatch):
    """The process dies after the first upload was deleted, before the second: the retry
    must not take the missing one for a sign of another submission and keep the second."""
    source = new_source(site)
    ids = [source.upload(sealed(team, b"one")), source.upload(sealed(team, b"two!"))]
    body = items_of([(ids[0], "message"), (ids[1], "file")])
    real_delete = UploadStore.delete
    deleted: list[str] = []

    def delete_once(store: UploadStore, upload_id: str) -> bool:
        if deleted:
            raise Crash
        deleted.append(upload_id)
        return real_delete(store, upload_id)

    with monkeypatch.context() as patch:
        patch.setattr(UploadStore, "delete", delete_once)
        with pytest.raises(Crash):
            source.submit(body)
    assert deleted == [ids[0]]
    assert len(stored(site).uploads) == 1
    retry = source.submit(body)
    assert retry.status_code == 200
    now = stored(site)
    assert (now.submissions, now.items, now.uploads) == (1, 2, ())


def test_a_key_reused_with_other_uploads_of_the_same_count_keeps_them(site, team):
    """Replaying a key names uploads of other sizes than the submission's: they stay (they
    were not this submission's; they expire with their day), whatever else is missing."""
    source = new_source(site)
    ids = [source.upload(sealed(team, b"one")), source.upload(sealed(team, b"two"))]
    key = new_key()
    assert source.submit(items_of([(ids[0], "message"), (ids[1], "file")], key)).status_code == 201
    # Padded envelopes of short contents share a size: these are far larger.
    others = [
        source.upload(sealed(team, b"y" * 100_000)),
        source.upload(sealed(team, b"x" * 99_999)),
    ]
    assert len(stored(site).uploads) == 2
    again = source.submit(items_of([(ids[0], "message"), (others[1], "file")], key))
    assert again.status_code == 200
    assert len(stored(site).uploads) == 2


def test_a_retry_after_a_crash_before_the_commit_makes_the_submission_once(site, team, monkeypatch):
    source = new_source(site)
    upload = source.upload(sealed(team, b"evidence"))
    body = items_of([(upload, "file")])
    with monkeypatch.context() as patch:
        patch.setattr(completion, "add_submission", crash)
        with pytest.raises(Crash):
            source.submit(body)
    before = stored(site)
    assert (before.submissions, len(before.blobs), len(before.uploads)) == (0, 1, 1)
    retry = source.submit(body)
    assert retry.status_code == 201
    now = stored(site)
    assert (now.submissions, now.items, now.uploads) == (1, 1, ())
    # Blobs are named by their content: the retry made the same blob, now with its row.
    assert now.blobs == before.blobs
    assert set(now.blobs) == referenced_blobs(site)
    assert source.submit(body).status_code == 200
    assert stored(site).submissions == 1


def test_a_key_completes_once_even_across_a_new_login(site, team):
    source = new_source(site)
    upload = source.upload(sealed(team, b"x"))
    key = new_key()
    first = source.submit(items_of([(upload, "file")], key))
    assert first.status_code == 201
    # A new key for the used-up upload: it is gone, as before.
    other = source.submit(items_of([(upload, "file")]))
    assert (other.status_code, error_of(other)) == (404, "unknown_upload")
    again = source.submit(items_of([(upload, "file")], key))
    assert (again.status_code, again.get_json()) == (200, first.get_json())
    assert stored(site).submissions == 1


def test_a_key_belongs_to_one_source(site, team):
    alice, bob = new_source(site), new_source(site)
    key = new_key()
    assert (
        alice.submit(items_of([(alice.upload(sealed(team, b"a")), "file")], key)).status_code == 201
    )
    # Bob's request with Alice's key is his own: it neither finds nor harms hers.
    bobs = bob.upload(sealed(team, b"b"))
    assert bob.submit(items_of([(bobs, "file")], key)).status_code == 201
    assert stored(site).submissions == 2


def test_the_key_is_stored_only_as_a_hash_scoped_to_the_source(site, team):
    source = new_source(site)
    key = new_key()
    assert (
        source.submit(items_of([(source.upload(sealed(team, b"a")), "file")], key)).status_code
        == 201
    )
    with site.services.db() as db:
        (row,) = db.query(Submission).all()
        assert row.completion_key == completion.key_hash(row.source_row_id, key)
        if not DATABASES.postgresql:
            assert key.encode() not in (site.data_dir / "db.sqlite").read_bytes()
        assert completion.key_hash(row.source_row_id + 1, key) != row.completion_key


# -- uploads outlive the session -------------------------------------------------------------


def test_a_4_gib_upload_at_300_kb_per_second_completes_across_session_expiry(team, tmp_path):
    site = make_site(make_data_dir(tmp_path / "data", team))
    browser = site.new_browser()
    codename = generate(browser)
    source = Source(browser, page_token(browser, "/submit"))
    content = os.urandom(600_000)
    envelope = sealed(team, content)
    path = source.create(len(envelope))
    # The bytes of a 4 GiB upload arrive in PATCHes of this envelope's pieces, the clock
    # moving as 300 KB/s would make it: about 4 hours in all, past the session's 2 hours.
    pieces = 16
    step = len(envelope) // pieces + 1
    hours = 4 * GiB / 300_000 / 3600
    stranger = site.new_browser()  # no cookie at all: the capability is enough
    offset = 0
    while offset < len(envelope):
        site.clock.advance(hours=hours / pieces)
        chunk = envelope[offset : offset + step]
        response = stranger.patch(
            path,
            data=chunk,
            headers={
                "Tus-Resumable": "1.0.0",
                "Content-Type": OCTETS,
                "Upload-Offset": str(offset),
            },
        )
        assert response.status_code == 204, response.get_data()
        offset += len(chunk)
        head = stranger.head(path, headers={"Tus-Resumable": "1.0.0"})
        assert head.headers["Upload-Offset"] == str(offset)
    assert hours > 3.9
    # The session has ended meanwhile: completion asks for a login, then goes through.
    key = new_key()
    body = items_of([(upload_id(path), "file")], key)
    ended = source.submit(body)
    assert (ended.status_code, error_of(ended)) == (403, "not_logged_in")
    assert login(browser, codename).status_code == 303
    again = Source(browser, page_token(browser, "/submit"))
    done = again.submit(body)
    assert done.status_code == 201, done.get_data()
    with site.services.db() as db:
        (item,) = db.query(Item).all()
    with site.services.blobs.open(item.blob_id) as handle:
        assert open_bytes(handle.read(), [team.journalist.secret])[1] == content


def test_an_upload_still_expires_after_24_hours_by_the_day(site, team):
    source = new_source(site)
    envelope = sealed(team, b"late")
    path = source.create(len(envelope))  # Nov 24, 12:00
    # Days only: expired from 00:00 on the first day that starts 24 hours after its own.
    site.clock.advance(hours=35)  # Nov 25, 23:00
    assert site.new_browser().head(path, headers={"Tus-Resumable": "1.0.0"}).status_code == 200
    site.clock.advance(hours=1)  # Nov 26, 00:00
    response = site.new_browser().head(path, headers={"Tus-Resumable": "1.0.0"})
    assert response.status_code == 404
    assert stored(site).uploads == ()


# -- full disk -------------------------------------------------------------------------------


def enospc(*_args: Any, **_kwargs: Any) -> Any:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_at_completion_is_507_and_keeps_the_uploads(site, team, monkeypatch):
    source = new_source(site)
    upload = source.upload(sealed(team, os.urandom(200_000), Kind.FILE))
    body = items_of([(upload, "file")])

    class FullWriter:
        def __init__(self, real: Any) -> None:
            self.real = real

        def __enter__(self) -> Any:
            self.real.__enter__()
            return self

        def __exit__(self, *exc: Any) -> Any:
            return self.real.__exit__(*exc)

        def write(self, data: bytes) -> int:
            if self.real.size > 100_000:
                enospc()
            return int(self.real.write(data))

        @property
        def size(self) -> int:
            return int(self.real.size)

        def commit(self) -> str:
            return str(self.real.commit())

    blobs = site.services.blobs
    real_writer = blobs.writer
    with monkeypatch.context() as patch:
        patch.setattr(blobs, "writer", lambda: FullWriter(real_writer()))
        response = source.submit(body)
        assert (response.status_code, error_of(response)) == (507, "insufficient_storage")
        assert int(response.headers["Retry-After"]) > 0
    now = stored(site)
    # Nothing partial: no blob, no temporary, no row; the upload waits.
    assert (now.submissions, now.blobs, len(now.uploads)) == (0, (), 1)
    assert source.submit(body).status_code == 201


def test_a_full_disk_during_a_patch_is_507_and_keeps_no_byte_of_it(site, team, monkeypatch):
    source = new_source(site)
    envelope = sealed(team, os.urandom(300_000))
    path = source.create(len(envelope))
    assert source.patch(path, 0, envelope[:1000]).status_code == 204
    real_write_all = files.write_all
    calls = {"n": 0}

    def fills_up(fd: int, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] > 2:
            enospc()
        real_write_all(fd, data)

    with monkeypatch.context() as patch:
        patch.setattr("dropbox.uploads.parts.write_all", fills_up)
        response = source.patch(path, 1000, envelope[1000:])
        assert (response.status_code, error_of(response)) == (507, "insufficient_storage")
        assert int(response.headers["Retry-After"]) > 0
        assert response.headers["Tus-Resumable"] == "1.0.0"
    assert source.tus("HEAD", path).headers["Upload-Offset"] == "1000"
    part = site.services.instance().uploads_dir / uploads_of(site)[upload_id(path)]
    assert part.stat().st_size == 1000
    assert source.patch(path, 1000, envelope[1000:]).status_code == 204
    assert source.submit(items_of([(upload_id(path), "file")])).status_code == 201


def uploads_of(site: Site) -> dict[str, str]:
    """Each upload's id and the name of its part data."""
    with site.services.db() as db:
        return {row.upload_id: row.part for row in db.query(UploadRow)}


def test_a_full_disk_at_creation_is_507_and_leaves_nothing(site, team, monkeypatch):
    source = new_source(site)
    length = len(sealed(team, b"x"))
    with monkeypatch.context() as patch:
        patch.setattr("dropbox.uploads.parts.fsync_dir", enospc)
        response = source.tus("POST", "/api/uploads", {"Upload-Length": str(length)})
    assert (response.status_code, error_of(response)) == (507, "insufficient_storage")
    assert int(response.headers["Retry-After"]) > 0
    assert stored(site).uploads == ()
    assert source.create(length)


def sqlite_full() -> BaseException:
    error = sqlite3.OperationalError("database or disk is full")
    error.sqlite_errorcode = 13
    return error


def postgresql_full() -> BaseException:
    return psycopg.errors.DiskFull("could not extend file: No space left on device")


@pytest.mark.parametrize("full", [sqlite_full, postgresql_full], ids=["sqlite", "postgresql"])
def test_a_full_database_at_completion_is_507_whichever_the_engine(site, team, full):
    """The database's own "full" (SQLITE_FULL, PostgreSQL's SQLSTATE 53100 disk_full) gets the
    same answer as a full disk: 507 with Retry-After, nothing partial kept."""
    source = new_source(site)
    body = items_of([(source.upload(sealed(team, os.urandom(1000), Kind.FILE)), "file")])

    def refuse(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("INSERT INTO submissions"):
            # As SQLAlchemy raises the driver's error, whichever backend this test runs on.
            raise sa.exc.OperationalError(statement, None, full())

    engine = site.services.engine
    sa.event.listen(engine, "before_cursor_execute", refuse)
    try:
        response = source.submit(body)
    finally:
        sa.event.remove(engine, "before_cursor_execute", refuse)
    assert (response.status_code, error_of(response)) == (507, "insufficient_storage")
    assert int(response.headers["Retry-After"]) > 0
    now = stored(site)
    assert (now.submissions, len(now.uploads)) == (0, 1)
    assert source.submit(body).status_code == 201


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_real_4_gib_envelope_uploads_for_4_hours_and_completes(team, tmp_path):
    """The same, with every byte: a 4 GiB file sealed here, sent in 64 MiB PATCHes by a client
    without any session while the clock moves as 300 KB/s would make it."""
    site = make_site(make_data_dir(tmp_path / "data", team))
    browser = site.new_browser()
    codename = generate(browser)
    source = Source(browser, page_token(browser, "/submit"))
    length = 4 * GiB - 1000
    metadata = Metadata(Kind.FILE, length, "big.bin", "application/octet-stream")
    recipients = [team.journalist.public.key]
    total = envelope_length(len(recipients), metadata)
    path = source.create(total)
    sealer = Sealer(recipients, Kind.FILE, "big.bin", "application/octet-stream")

    def envelope() -> Iterator[bytes]:
        yield sealer.header
        zeros = bytes(64 * 1024 * 1024)
        for start in range(0, length, len(zeros)):
            yield sealer.update(zeros[: min(len(zeros), length - start)])
        yield from sealer.finish()

    stranger = site.new_browser()
    digest = hashlib.sha256()
    sent = {"offset": 0}

    def patch(body: bytes) -> None:
        site.clock.advance(seconds=len(body) / 300_000)
        response = stranger.patch(
            path,
            data=body,
            headers={
                "Tus-Resumable": "1.0.0",
                "Content-Type": OCTETS,
                "Upload-Offset": str(sent["offset"]),
            },
        )
        assert response.status_code == 204, response.get_data()
        digest.update(body)
        sent["offset"] += len(body)

    # Streamed: never more than a PATCH or two of the envelope in memory. Each body is copied
    # once, through a view (slicing the bytearray would copy it twice: 4 GiB more to move).
    pending, piece = bytearray(), 64 * 1024 * 1024
    for part in envelope():
        pending += part
        while len(pending) >= piece:
            with memoryview(pending) as view:
                body = bytes(view[:piece])
            patch(body)
            del pending[:piece]
    patch(bytes(pending))
    offset = sent["offset"]
    assert offset == total
    assert site.clock.now - START > timedelta(hours=3.9)
    assert login(browser, codename).status_code == 303
    again = Source(browser, page_token(browser, "/submit"))
    done = again.submit(items_of([(upload_id(path), "file")]))
    assert done.status_code == 201, done.get_data()
    with site.services.db() as db:
        (item,) = db.query(Item).all()
    assert item.size == total
    copied = hashlib.sha256()
    with site.services.blobs.open(item.blob_id) as handle:
        while block := handle.read(16 * 1024 * 1024):
            copied.update(block)
    assert copied.digest() == digest.digest()
    assert stored(site).uploads == ()


def test_a_key_reused_for_other_uploads_leaves_them_alone(site, team):
    source = new_source(site)
    key = new_key()
    first = source.upload(sealed(team, b"first"))
    assert source.submit(items_of([(first, "file")], key)).status_code == 201
    # A client bug: the same key for a new submission of another size. It is told about
    # the first submission; the new upload is not deleted unseen (it waits, then expires).
    other = source.upload(sealed(team, b"a longer second file" * 5000))
    assert source.submit(items_of([(other, "file")], key)).status_code == 200
    assert len(stored(site).uploads) == 1
    assert source.submit(items_of([(other, "file")])).status_code == 201
