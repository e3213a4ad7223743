"""Reading a data directory: the :class:`Instance` it describes, checked as a whole.

:class:`InstanceLoader` reads it again whenever its files change, so a keyring installed while
the server runs is used from the next request on.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from common.cli import describe_os_error
from crypto import (
    Algorithm,
    CryptoError,
    KeyKind,
    PrivateKey,
    SignedKeyring,
    SourceSecrets,
    derive_source_secrets,
    fingerprint,
    load_private_key,
    verify_keyring,
)
from dropbox.errors import DropboxError
from dropbox.instance.document import CodenameParams, parse_instance_json
from dropbox.instance.layout import (
    BLOBS_DIR,
    INSTANCE_FILE,
    KEYRING_FILE,
    MAX_INSTANCE_FILE,
    MAX_KEY_FILE,
    MAX_KEYRING_FILE,
    SERVER_KEY_FILE,
    UPLOADS_DIR,
)


@dataclass(frozen=True)
class Instance:
    """Everything the server reads from its data directory, as one consistent snapshot."""

    data_dir: Path
    instance_salt: bytes = field(repr=False)
    codename_params: CodenameParams
    #: The team root the server trusts now: the installed keyring's current root if one is
    #: installed, else the root pinned at ``dropbox init``.
    pinned_root: bytes
    keyring: SignedKeyring | None
    server_key: PrivateKey = field(repr=False)

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / BLOBS_DIR

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / UPLOADS_DIR

    @property
    def root_fingerprint(self) -> str | None:
        """The fingerprint of the installed keyring's root, for people to compare."""
        if self.keyring is None:
            return None
        return fingerprint(Algorithm.ED25519, self.keyring.root)

    def derive_source_secrets(self, codename: str) -> SourceSecrets:
        """Argon2id over a codename with this instance's salt and parameters (slow, 64+ MiB)."""
        return derive_source_secrets(
            codename,
            self.instance_salt,
            opslimit=self.codename_params.opslimit,
            memlimit=self.codename_params.memlimit,
        )


def read_limited(path: Path, limit: int) -> bytes:
    """The whole file, refused (DropboxError) when it is longer than ``limit`` bytes."""
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise DropboxError(f"{path} is too large (over {limit} bytes)")
    return data


def require_instance(data_dir: Path) -> Path:
    """The path of ``instance.json``; DropboxError when the directory is not initialized."""
    path = data_dir / INSTANCE_FILE
    if not path.is_file():
        raise DropboxError(
            f"{data_dir} is not an initialized Postern data directory (no {INSTANCE_FILE}); "
            "run `dropbox init` first"
        )
    return path


def load_instance(data_dir: Path) -> Instance:
    """Read and check the whole instance; every problem is one clear DropboxError line."""
    try:
        return _load_instance(data_dir)
    except OSError as exc:
        raise DropboxError(describe_os_error(exc)) from None


def _load_instance(data_dir: Path) -> Instance:
    path = require_instance(data_dir)
    try:
        salt, params, root = parse_instance_json(read_limited(path, MAX_INSTANCE_FILE))
    except DropboxError as exc:
        raise DropboxError(f"{path} is damaged: {exc}") from None

    key_path = data_dir / SERVER_KEY_FILE
    try:
        server_key = load_private_key(read_limited(key_path, MAX_KEY_FILE), None)
    except CryptoError as exc:
        raise DropboxError(f"{key_path} is not a usable server key file: {exc}") from None
    if server_key.kind is not KeyKind.SERVER:
        raise DropboxError(f"{key_path} holds a {server_key.kind.value} key, not a server key")

    keyring = None
    keyring_path = data_dir / KEYRING_FILE
    if keyring_path.exists():
        data = read_limited(keyring_path, MAX_KEYRING_FILE)
        try:
            keyring = verify_keyring(data, root)
        except CryptoError as exc:
            raise DropboxError(
                f"the installed keyring {keyring_path} does not verify against the pinned team "
                f"root: {exc}"
            ) from None
        root = keyring.root
    return Instance(
        data_dir=data_dir,
        instance_salt=salt,
        codename_params=params,
        pinned_root=root,
        keyring=keyring,
        server_key=server_key,
    )


class InstanceLoader:
    """The current :class:`Instance`, read again whenever its files change on disk.

    :meth:`current` costs two ``stat`` calls when nothing changed, so it is called on every
    request: a keyring installed while the server runs is used from the next request on.
    Thread-safe.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._stamp: tuple[object, ...] | None = None
        self._instance: Instance | None = None

    def _file_stamp(self, name: str) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.data_dir / name)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DropboxError(describe_os_error(exc)) from None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def current(self) -> Instance:
        stamp = (self._file_stamp(INSTANCE_FILE), self._file_stamp(KEYRING_FILE))
        with self._lock:
            if self._instance is None or stamp != self._stamp:
                self._instance = load_instance(self.data_dir)
                self._stamp = stamp
            return self._instance
