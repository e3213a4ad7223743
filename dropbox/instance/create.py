"""``dropbox init``: making a new data directory pinned to a team root."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from common.cli import describe_os_error
from common.files import write_atomic
from crypto import KeyKind, PrivateKey, dump_private_key, dump_public_key
from dropbox import db
from dropbox.database.engine import resolve_url
from dropbox.errors import DropboxError
from dropbox.instance.document import (
    MIN_MEMLIMIT,
    MIN_OPSLIMIT,
    SALT_LEN,
    CodenameParams,
    instance_json,
)
from dropbox.instance.layout import (
    BLOBS_DIR,
    INSTANCE_FILE,
    SERVER_KEY_FILE,
    SERVER_PUB_FILE,
    UPLOADS_DIR,
)
from dropbox.instance.load import Instance, load_instance
from dropbox.storage import LocalBlobStore

SERVER_KEY_LABEL = "server signing key"


def init_instance(
    data_dir: Path,
    root: bytes,
    *,
    opslimit: int = MIN_OPSLIMIT,
    memlimit: int = MIN_MEMLIMIT,
    database_url: str | None = None,
) -> Instance:
    """Create a new data directory pinned to the team root public key ``root``, with its
    database at the newest schema: the SQLite file in the directory, or the empty database
    at ``database_url`` (``POSTERN_DATABASE_URL``).

    ``data_dir`` may exist if it is an empty directory. An initialized directory, or one with
    anything in it, is refused: nothing in it is touched. So is a database that already holds
    a schema (another instance's, or one a failed init left).
    """
    if len(root) != 32:
        raise DropboxError("the team root public key must be 32 bytes")
    params = CodenameParams(opslimit, memlimit)
    if opslimit < MIN_OPSLIMIT or memlimit < MIN_MEMLIMIT:
        raise DropboxError("the codename Argon2id parameters are below 3 passes and 64 MiB")
    try:
        _make_data_dir(data_dir)
        key = PrivateKey.generate(KeyKind.SERVER, SERVER_KEY_LABEL)
        write_atomic(data_dir / SERVER_KEY_FILE, dump_private_key(key, None), replace=False)
        write_atomic(
            data_dir / SERVER_PUB_FILE, dump_public_key(key.public), mode=0o644, replace=False
        )
        LocalBlobStore(data_dir / BLOBS_DIR)
        (data_dir / UPLOADS_DIR).mkdir(mode=0o700)
        if database_url is None:
            database = data_dir / db.DATABASE_FILE
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        _migrate_new(resolve_url(database_url, data_dir))
        salt = secrets.token_bytes(SALT_LEN)
        # Written last: a directory without instance.json is not an instance.
        write_atomic(data_dir / INSTANCE_FILE, instance_json(salt, params, root), replace=False)
    except OSError as exc:
        raise DropboxError(describe_os_error(exc)) from None
    return load_instance(data_dir)


def _migrate_new(url: str) -> None:
    engine = db.make_engine(url, connections=1)
    try:
        if db.current_revision(engine) is not None:
            raise DropboxError(
                "the database (POSTERN_DATABASE_URL) already holds a Postern schema: "
                "dropbox init needs an empty database of its own"
            )
        db.upgrade(engine)
    finally:
        engine.dispose()


def _make_data_dir(data_dir: Path) -> None:
    if data_dir.exists() or data_dir.is_symlink():
        if not data_dir.is_dir():
            raise DropboxError(f"{data_dir} exists and is not a directory")
        if (data_dir / INSTANCE_FILE).exists():
            raise DropboxError(f"{data_dir} is already an initialized Postern data directory")
        if any(data_dir.iterdir()):
            raise DropboxError(
                f"{data_dir} is not empty (a failed init leaves files behind: remove them, or "
                "choose a new directory)"
            )
        os.chmod(data_dir, 0o700)
    else:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        data_dir.mkdir(mode=0o700)
        os.chmod(data_dir, 0o700)  # mkdir's mode is filtered by the umask
