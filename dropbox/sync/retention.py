"""Deleting what the journalists are done with: items, a source's data, whole sources.

The functions that take a database session change rows inside the caller's transaction and
return the blob ids that the removed rows named; the caller commits, then hands those ids to
:func:`delete_unreferenced_blobs`. Blobs are deleted only after the rows are gone, so a failed
transaction never leaves a row without its content; a blob is kept while another row still
names it (blobs are content-addressed, dropbox/storage.py).

:func:`purge_acknowledged` is the whole use case behind ``dropbox purge``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

from sqlalchemy import CursorResult, delete, exists, select, update
from sqlalchemy.orm import Session

from dropbox.db import Item, Reply, Source, Submission, UploadRow
from dropbox.storage import BlobStore

#: Ids are bound in chunks of this many, below every database's limit on query parameters.
CHUNK: Final = 500
#: The largest row id a database integer holds; a larger id names nothing.
MAX_ROW_ID: Final = 2**63 - 1

_T = TypeVar("_T")


def chunks(values: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def row_ids(texts: Iterable[str]) -> list[int]:
    """Decimal item ids as row ids; ids too large to be a row are left out (they name nothing)."""
    ids = []
    for text in texts:
        value = int(text)
        if 0 < value <= MAX_ROW_ID:
            ids.append(value)
    return ids


def delete_items(db: Session, item_ids: Sequence[int]) -> list[str]:
    """Delete these items (missing ones are skipped) and every submission left empty."""
    return _delete_items(db, item_ids)[0]


def _delete_items(db: Session, item_ids: Sequence[int]) -> tuple[list[str], int]:
    """:func:`delete_items`, also returning how many submissions it deleted."""
    blob_ids: list[str] = []
    submissions: set[int] = set()
    for chunk in chunks(item_ids):
        rows = db.execute(select(Item.blob_id, Item.submission_id).where(Item.id.in_(chunk))).all()
        blob_ids += [row.blob_id for row in rows]
        submissions.update(row.submission_id for row in rows)
        db.execute(delete(Item).where(Item.id.in_(chunk)))
    return blob_ids, _delete_empty_submissions(db, sorted(submissions))


def _delete_empty_submissions(db: Session, submission_ids: Sequence[int]) -> int:
    count = 0
    for chunk in chunks(submission_ids):
        empty = ~exists().where(Item.submission_id == Submission.id)
        result = db.execute(delete(Submission).where(Submission.id.in_(chunk), empty))
        count += cast(CursorResult[Any], result).rowcount
    return count


def delete_source_data(db: Session, source_row_id: int) -> list[str]:
    """Delete every submission, item and reply of a source; the account stays."""
    submissions = select(Submission.id).where(Submission.source_row_id == source_row_id)
    blob_ids = list(db.scalars(select(Item.blob_id).where(Item.submission_id.in_(submissions))))
    blob_ids += db.scalars(select(Reply.blob_id).where(Reply.source_row_id == source_row_id))
    db.execute(delete(Item).where(Item.submission_id.in_(submissions)))
    db.execute(delete(Submission).where(Submission.source_row_id == source_row_id))
    db.execute(delete(Reply).where(Reply.source_row_id == source_row_id))
    return blob_ids


def delete_source(db: Session, source_row_id: int) -> list[str]:
    """Delete a source's account with everything it sent and every reply to it.

    Its uploads in progress go too: their rows here (the source interface owns uploads by
    the source's row id, dropbox/web/api.py), their part data at the next expiry pass,
    which discards every part no row names (dropbox/uploads/store.py).
    """
    blob_ids = delete_source_data(db, source_row_id)
    db.execute(delete(UploadRow).where(UploadRow.owner == str(source_row_id)))
    db.execute(delete(Source).where(Source.id == source_row_id))
    return blob_ids


def acknowledge_items(db: Session, item_ids: Sequence[int], *, purge: bool) -> list[str]:
    """Mark items acknowledged, or with ``purge`` delete them at once (as :func:`delete_items`)."""
    if purge:
        return delete_items(db, item_ids)
    for chunk in chunks(item_ids):
        db.execute(update(Item).where(Item.id.in_(chunk)).values(acknowledged=True))
    return []


def blob_in_use(db: Session, blob_id: str) -> bool:
    for model in (Item, Reply):
        if db.scalars(select(model.id).where(model.blob_id == blob_id).limit(1)).first():
            return True
    return False


def delete_unreferenced_blobs(db: Session, blobs: BlobStore, blob_ids: Collection[str]) -> int:
    """Delete each blob that no item or reply names any more; return how many were named."""
    count = 0
    for blob_id in sorted(set(blob_ids)):
        if not blob_in_use(db, blob_id):
            blobs.delete(blob_id)
            count += 1
    return count


@dataclass(frozen=True)
class PurgeResult:
    items: int
    bytes: int
    submissions: int


def purge_acknowledged(db: Session, blobs: BlobStore) -> PurgeResult:
    """Purge every acknowledged item now: row and blob, and submissions left empty."""
    rows = db.execute(select(Item.id, Item.size).where(Item.acknowledged.is_(True))).all()
    freed, submissions = _delete_items(db, [row.id for row in rows])
    db.commit()
    delete_unreferenced_blobs(db, blobs, freed)
    return PurgeResult(
        items=len(rows), bytes=sum(row.size for row in rows), submissions=submissions
    )
