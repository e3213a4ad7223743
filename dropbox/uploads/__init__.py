"""Incomplete uploads (the storage side of docs/format.md section 8.3).

An upload is a row of the database's ``uploads`` table (:class:`dropbox.db.UploadRow`) and
its part data:

- the row holds the owner (an opaque string chosen by the caller), the hash of the upload's
  capability (a secret returned once, at creation), the announced length, and the days of its
  creation and expiry: days only, as every row (docs/threat-model.md);
- the part data (:mod:`.parts`, a :class:`PartStore`: files ``ROOT/<name>`` in one
  directory of mode 0700, or rows of the shared PostgreSQL database with
  ``POSTERN_BLOB_STORE=database``, :mod:`.database_parts`) holds the bytes received so
  far. Its size *is* the upload offset, so there is no second copy of the offset that could
  disagree with the bytes. Its name is random, unrelated to the upload's id.

``id`` is 32 random lowercase hex digits (or derived from a capability the client chose).
Every id and every part name is checked against its pattern before any path is built.

Appends hold an exclusive lock on the part for their whole duration: two requests for the
same upload never interleave their bytes (the second one gets :class:`UploadBusy`).
Deletion does not wait for that lock: it deletes the row, then discards the part (a file is
overwritten with zeros and unlinked at the daily blur, :mod:`dropbox.filetimes`; rows are
deleted).

Like the blob store, this package never sees plaintext (only envelopes travel this way) and
knows nothing of HTTP or Flask. It reads no clock: every time comes from the caller.
"""

from __future__ import annotations

from dropbox.uploads.parts import LocalParts, Part, PartStore
from dropbox.uploads.store import UploadStore
from dropbox.uploads.upload import (
    CLIENT_SECRET,
    DEFAULT_TTL,
    PIECE,
    ByteSource,
    OffsetMismatch,
    StreamInterrupted,
    Upload,
    UploadBusy,
    UploadConflict,
    UploadError,
    UploadIncomplete,
    UploadNotFound,
    UploadStoreFull,
    check_upload_id,
    key_hash,
)

__all__ = [
    "CLIENT_SECRET",
    "DEFAULT_TTL",
    "PIECE",
    "ByteSource",
    "LocalParts",
    "OffsetMismatch",
    "Part",
    "PartStore",
    "StreamInterrupted",
    "Upload",
    "UploadBusy",
    "UploadConflict",
    "UploadError",
    "UploadIncomplete",
    "UploadNotFound",
    "UploadStore",
    "UploadStoreFull",
    "check_upload_id",
    "key_hash",
]
