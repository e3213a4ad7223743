"""Completing a script-path submission (docs/format.md 8.4): completed uploads become one
submission, exactly once, however often the browser asks.

The browser sends a key of its own choosing with the list of its uploads. The order makes
every crash harmless:

1. each upload is copied into the blob store (the uploads stay);
2. the submission's rows are committed together with a hash of the key;
3. only then are the uploads deleted.

A crash before 2 leaves the uploads (the retry copies them again, into the same
content-addressed blobs; a blob that no retry claims has no row, and the reclaiming sweep
removes it). A crash after 2 leaves a committed submission whose key the retry finds: it gets
the same answer, and the uploads it names are deleted then if they match what was recorded
(else they expire). Two requests racing with one key meet at the unique index on (source row,
key hash): one commits, the other finds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from crypto.envelope import MAX_RECIPIENTS, header_length, parse_header, sealed_to
from crypto.errors import FormatError
from dropbox.db import Item, Submission
from dropbox.errors import DropboxError
from dropbox.storage import BlobStore, is_out_of_space
from dropbox.submissions import NewItem, SubmissionError, add_submission
from dropbox.uploads import (
    UploadBusy,
    UploadError,
    UploadIncomplete,
    UploadStore,
)

#: A key is 16 to 64 random bytes in base64url without padding (22 to 86 characters).
COMPLETION_KEY: Final = re.compile(r"\A[A-Za-z0-9_-]{22,86}\Z")
_KEY_CONTEXT: Final = b"postern completion key v1\x00"
_HEADER_MAX: Final = header_length(MAX_RECIPIENTS)


class CompletionError(DropboxError):
    """Completion refused: ``code`` names the answer (docs/format.md 8.4)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Completed:
    """A completion's result: ``created`` is False when the key had already completed."""

    submission_id: int
    created: bool


def key_hash(source_row_id: int, key: str) -> bytes:
    """What the database keeps of a key: a hash bound to the source row, nothing else."""
    return hashlib.sha256(
        _KEY_CONTEXT + source_row_id.to_bytes(8, "big") + key.encode("ascii")
    ).digest()


def _find(db: Session, source_row_id: int, hashed: bytes) -> int | None:
    query = select(Submission.id).where(
        Submission.source_row_id == source_row_id, Submission.completion_key == hashed
    )
    return db.scalars(query).first()


def _check(
    uploads: UploadStore, owner: str, items: Sequence[tuple[str, str]], recipients: Sequence[bytes]
) -> None:
    """Every upload is there, the owner's, complete and sealed to the current keyring."""
    for upload_id, _ in items:
        upload = uploads.get(upload_id)
        if upload is None or not upload.belongs_to(owner):
            raise CompletionError("unknown_upload")
        if not upload.complete:
            raise CompletionError("incomplete_upload")
        try:
            header = parse_header(uploads.read_prefix(upload_id, _HEADER_MAX))
        except (FormatError, UploadError):
            raise CompletionError("bad_envelope") from None
        if not sealed_to(header, recipients):
            raise CompletionError("stale_keyring")


def _copy_all(
    uploads: UploadStore,
    blobs: BlobStore,
    items: Sequence[tuple[str, str]],
    hold: contextlib.ExitStack[bool | None],
) -> list[NewItem]:
    """Copy every upload into a blob; raise CompletionError when one cannot be copied.

    The blobs already made are left: blob ids are content hashes, so a request racing with
    this one (a retry after a lost answer) may be about to commit rows naming the very same
    blobs. The retry makes the same ids again, and blobs that no row names are the
    reclaiming sweep's.
    """
    made: list[NewItem] = []
    try:
        for upload_id, kind in items:
            blob_id = uploads.copy_into(upload_id, blobs, hold)
            made.append((kind, blob_id, blobs.size(blob_id)))
    except (UploadError, OSError, DropboxError) as error:
        if is_out_of_space(error):
            raise CompletionError("insufficient_storage") from error
        if isinstance(error, UploadBusy):
            raise CompletionError("upload_busy") from error
        if isinstance(error, UploadIncomplete):
            raise CompletionError("incomplete_upload") from error
        raise CompletionError("unknown_upload") from error
    return made


def _item_sizes(db: Session, submission_id: int) -> list[int]:
    query = select(Item.size).where(Item.submission_id == submission_id).order_by(Item.position)
    return list(db.scalars(query).all())


def _length(uploads: UploadStore, owner: str, upload_id: str) -> int | None:
    upload = uploads.get(upload_id)
    return upload.length if upload is not None and upload.belongs_to(owner) else None


def _left_by(recorded: Sequence[int], lengths: Sequence[int | None]) -> bool:
    """Whether uploads of these ``lengths`` (None: gone) are what is left of a submission of
    items of the ``recorded`` sizes: as many items, and each upload still there the size of
    its item."""
    if len(recorded) != len(lengths):
        return False
    return all(
        length is None or length == size for size, length in zip(recorded, lengths, strict=True)
    )


def _delete_uploads(uploads: UploadStore, owner: str, items: Sequence[tuple[str, str]]) -> None:
    """Delete the named uploads of ``owner`` (after the commit; failures leave them to expire)."""
    for upload_id, _ in items:
        upload = uploads.get(upload_id)
        if upload is not None and upload.belongs_to(owner):
            with contextlib.suppress(OSError, UploadError):
                uploads.delete(upload_id)


def complete_submission(
    *,
    uploads: UploadStore,
    blobs: BlobStore,
    db: Callable[[], Session],
    source_row_id: int,
    key: str,
    items: Sequence[tuple[str, str]],
    recipients: Sequence[bytes],
    today: date,
) -> Completed:
    """Make ``items`` (upload id, kind) of the source one submission, once per ``key``.

    Raises :class:`CompletionError` with the code of the answer; nothing is recorded then.
    """
    if not COMPLETION_KEY.match(key):
        raise CompletionError("bad_request")
    owner = str(source_row_id)
    hashed = key_hash(source_row_id, key)

    def replay() -> Completed | None:
        with db() as session:
            found = _find(session, source_row_id, hashed)
            if found is None:
                return None
            sizes = _item_sizes(session, found)
        # The uploads a crash left behind are deleted only when they look like what the
        # submission recorded (a client that reused a key by mistake keeps its uploads,
        # which then expire). An upload already gone is no sign against it: a crash between
        # two deletions leaves the first gone and the second to delete.
        if _left_by(sizes, [_length(uploads, owner, upload_id) for upload_id, _ in items]):
            _delete_uploads(uploads, owner, items)
        return Completed(found, created=False)

    if (done := replay()) is not None:
        return done
    # Every blob stays held until the rows that name it are committed (or the request
    # fails): the reclaiming sweep never takes a blob between its copy and its row.
    with contextlib.ExitStack() as hold:
        try:
            _check(uploads, owner, items, recipients)
            made = _copy_all(uploads, blobs, items, hold)
        except CompletionError:
            # A request racing with this one may have completed the same key meanwhile.
            if (done := replay()) is not None:
                return done
            raise
        submission_id = _record(db, source_row_id, made, today, hashed, replay)
    _delete_uploads(uploads, owner, items)
    return Completed(submission_id, created=True)


def _record(
    db: Callable[[], Session],
    source_row_id: int,
    made: list[NewItem],
    today: date,
    hashed: bytes,
    replay: Callable[[], Completed | None],
) -> int:
    """Commit the submission's rows; the id of the submission (a racing one's if it won)."""
    try:
        with db() as session:
            return add_submission(session, source_row_id, made, today, hashed).id
    except IntegrityError:
        if (done := replay()) is not None:
            return done.submission_id
        raise CompletionError("bad_request") from None
    except SubmissionError:
        raise CompletionError("bad_request") from None
    except OperationalError as error:
        if is_out_of_space(error):
            raise CompletionError("insufficient_storage") from None
        raise
