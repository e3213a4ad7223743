"""The server's data directory and the instance it describes.

Layout of a data directory made by ``dropbox init`` (directories 0700, files 0600)::

    instance.json   format version, instance salt, codename Argon2id parameters, pinned root
    server.key      the server's Ed25519 signing key (``protection: none``: the service loads
                    it unattended; file permissions protect it)
    server.pub      its public key file
    keyring.json    the installed signed keyring, byte for byte (absent until one is installed)
    blobs/          envelopes, one file per blob (dropbox.storage.LocalBlobStore)
    uploads/        resumable uploads in progress
    db.sqlite       the database, made by the migrations

``instance.json`` is written last by ``init``: a directory without it is not an instance.
Installing a keyring writes ``keyring.json`` and then, if the chain moved to a new root,
``instance.json``, each atomically (temporary file, fsync, rename), under an exclusive lock on
the directory. A crash between the two leaves a keyring whose chain still contains the old pin:
:func:`load_instance` verifies it against that pin and takes the keyring's current root as the
effective pin, and the next install rewrites ``instance.json``.

The modules: :mod:`.layout` (file names), :mod:`.document` (``instance.json``), :mod:`.load`
(reading), :mod:`.create` (``init``), :mod:`.keyring` (installing a keyring). ``init_instance``
is imported from :mod:`.create` itself, not from here: it needs the database layer
(SQLAlchemy and Alembic, most of a command's start-up time), which reading an instance does
not, so every other command starts without it.
"""

from __future__ import annotations

from dropbox.instance.document import CodenameParams
from dropbox.instance.keyring import InstalledKeyring, install_keyring
from dropbox.instance.layout import (
    BLOBS_DIR,
    INSTANCE_FILE,
    KEYRING_FILE,
    SERVER_KEY_FILE,
    SERVER_PUB_FILE,
    UPLOADS_DIR,
)
from dropbox.instance.load import Instance, InstanceLoader, load_instance

__all__ = [
    "BLOBS_DIR",
    "INSTANCE_FILE",
    "KEYRING_FILE",
    "SERVER_KEY_FILE",
    "SERVER_PUB_FILE",
    "UPLOADS_DIR",
    "CodenameParams",
    "InstalledKeyring",
    "Instance",
    "InstanceLoader",
    "install_keyring",
    "load_instance",
]
