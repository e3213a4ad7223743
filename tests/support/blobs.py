"""Putting blobs into a server blob store and recording them as a source's submission, for
tests of the stores and of the sweep that must tell held blobs from orphans."""

from __future__ import annotations

import os
from datetime import date

from sqlalchemy.orm import Session, sessionmaker

from crypto import SourceSecrets
from dropbox.sources import create_source
from dropbox.storage import BlobStore
from dropbox.submissions import add_submission


def put(store: BlobStore, data: bytes) -> str:
    """Store ``data`` as one blob; its id."""
    with store.writer() as writer:
        writer.write(data)
        return writer.commit()


def record(sessions: sessionmaker[Session], blob_ids: list[str], day: date) -> None:
    """A new source whose one submission holds ``blob_ids`` (each a file of one byte)."""
    with sessions() as session:
        secrets = SourceSecrets(os.urandom(32), os.urandom(32), os.urandom(16))
        source = create_source(session, secrets, day)
        add_submission(session, source.id, [("file", b, 1) for b in blob_ids], day)
