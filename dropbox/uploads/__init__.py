"""Incomplete uploads on the local filesystem (the storage side of docs/format.md section 8.3).

An upload is two files in one directory (mode 0700):

- ``ROOT/<id>.part`` (mode 0600): the bytes received so far. Its size *is* the upload offset,
  so there is no second copy of the offset that could disagree with the bytes.
- ``ROOT/<id>.json`` (mode 0600): a small sidecar (:mod:`.sidecar`) with the owner (an opaque
  string chosen by the caller), the hash of the upload's capability (a secret returned once,
  at creation), the announced length, the creation time and the expiry.

``id`` is 32 random lowercase hex digits. Every id is checked against that pattern before any
path is built from it, so no id can name a file outside the directory.

Appends hold an exclusive ``flock`` on the ``.part`` file for their whole duration: two
requests for the same upload never interleave their bytes (the second one gets
:class:`UploadBusy`). Deletion does not wait for that lock: it unlinks at once, and an append
still running writes into a file that no longer has a name.

Like the blob store, this package never sees plaintext (only envelopes travel this way) and
knows nothing of HTTP or Flask. It reads no clock: every time comes from the caller.
"""

from __future__ import annotations

from dropbox.uploads.sidecar import key_hash
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
)

__all__ = [
    "CLIENT_SECRET",
    "DEFAULT_TTL",
    "PIECE",
    "ByteSource",
    "OffsetMismatch",
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
