"""A minimal app around the tus blueprint, for tests/dropbox/test_tus*.py (and a broken body).

In-process tests call :func:`build_app` with their own policy (and clock). Under gunicorn,
:func:`create_app` reads ``$POSTERN_TUS_TESTAPP_DIR/config.json`` and keeps its uploads in
``$POSTERN_TUS_TESTAPP_DIR/uploads``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, abort, request

from dropbox import db
from dropbox.storage import BlobStore
from dropbox.tus import create_tus_blueprint
from dropbox.uploads import UploadStore

ENV_DIR = "POSTERN_TUS_TESTAPP_DIR"
SESSION_COOKIE = "postern_session"
CSRF_HEADER = "X-Postern-CSRF"


@dataclass(frozen=True)
class Session:
    csrf: str
    owner: str


@dataclass
class FakePolicy:
    """Sessions are fixed cookie values; the clock and the recipients can be changed."""

    sessions: dict[str, Session]
    recipients: list[bytes]
    max_size: int
    clock: Callable[[], datetime]
    completed: list[tuple[str, str]] = field(default_factory=list)

    def authorize(self) -> str:
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE, ""))
        if session is None or request.headers.get(CSRF_HEADER) != session.csrf:
            abort(403)
        return session.owner

    def recipient_public_keys(self) -> Sequence[bytes]:
        return list(self.recipients)

    def now(self) -> datetime:
        return self.clock()

    def on_complete(self, upload_id: str, owner: str) -> None:
        self.completed.append((upload_id, owner))


def make_upload_store(root: Path, database_url: str | None = None) -> UploadStore:
    """An upload store with its state in ``database_url`` (None: ``root/db.sqlite``) and its
    bytes in ``root/uploads``."""
    engine = db.make_engine(database_url or db.sqlite_url(root))
    db.upgrade(engine)
    return UploadStore(root / "uploads", db.make_sessionmaker(engine))


def build_app(store: UploadStore, policy: FakePolicy) -> Flask:
    app = Flask(__name__)
    app.register_blueprint(create_tus_blueprint(store, policy))
    return app


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app() -> Flask:
    """The gunicorn factory."""
    root = Path(os.environ[ENV_DIR])
    config = json.loads((root / "config.json").read_text("utf-8"))
    policy = FakePolicy(
        sessions={cookie: Session(**value) for cookie, value in config["sessions"].items()},
        recipients=[bytes.fromhex(key) for key in config["recipients"]],
        max_size=int(config["max_size"]),
        clock=_utc_now,
    )
    return build_app(make_upload_store(root), policy)


class BrokenStream:
    """A request body whose connection breaks after ``deliver`` bytes of ``declared``."""

    def __init__(self, data: bytes, deliver: int, declared: int, *, raises: bool) -> None:
        self._data = data[:deliver]
        self._declared = declared
        self._raises = raises
        self._told = 0

    # The test client asks the stream for its length this way.
    def tell(self) -> int:
        return self._told

    def seek(self, offset: int, whence: int = 0) -> int:
        self._told = self._declared if whence == 2 else offset
        return self._told

    def read(self, size: int = -1) -> bytes:
        if self._data:
            size = len(self._data) if size < 0 else size
            piece, self._data = self._data[:size], self._data[size:]
            return piece
        if self._raises:
            raise ConnectionResetError("connection reset by peer")
        return b""


def complete_into(store: UploadStore, upload_id: str, blobs: BlobStore) -> str:
    """What completion does with one upload: copy it into a blob, release it, delete it."""
    with contextlib.ExitStack() as hold:
        blob_id = store.copy_into(upload_id, blobs, hold)
    store.delete(upload_id)
    return blob_id
