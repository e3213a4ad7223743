"""Use cases about submissions: recording envelopes already stored as blobs.

The envelopes are written to the blob store by the upload paths (tus for the script path,
the streaming sealer for the plain form); a submission groups them, in order, for one source.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy.orm import Session

from dropbox.db import Item, ItemKind, Source, Submission
from dropbox.errors import DropboxError
from dropbox.storage import StorageError, check_blob_id

#: One item of a new submission: what it is, its blob id and its ciphertext size in bytes.
NewItem = tuple[ItemKind | str, str, int]


class SubmissionError(DropboxError):
    """A submission cannot be recorded as given."""


def add_submission(
    db: Session,
    source_row_id: int,
    items: Sequence[NewItem],
    today: date,
    completion_key: bytes | None = None,
) -> Submission:
    """Record one submission of ``items`` (in that order) for the source row ``source_row_id``.

    ``source_row_id`` is ``sources.id``, not the journalist-facing ``sources.source_id``.
    ``completion_key`` is the hashed idempotency key of a script-path completion (unique per
    source: a second submission with the same one fails to commit with an IntegrityError).
    """
    if not items:
        raise SubmissionError("a submission holds at least one item")
    checked = []
    for kind, blob_id, size in items:
        try:
            checked.append((ItemKind(kind), check_blob_id(blob_id), size))
        except ValueError:
            raise SubmissionError(f"unknown item kind {kind!r}") from None
        except StorageError:
            raise SubmissionError("invalid blob id") from None
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise SubmissionError("an item size is a non-negative integer")
    if db.get(Source, source_row_id) is None:
        raise SubmissionError("no such source")
    submission = Submission(
        source_row_id=source_row_id, received_day=today, completion_key=completion_key
    )
    db.add(submission)
    db.flush()
    for position, (kind, blob_id, size) in enumerate(checked):
        db.add(
            Item(
                submission_id=submission.id,
                position=position,
                kind=kind.value,
                blob_id=blob_id,
                size=size,
            )
        )
    db.commit()
    return submission
