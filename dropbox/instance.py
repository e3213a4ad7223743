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
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from common.cli import describe_os_error
from crypto import (
    Algorithm,
    CryptoError,
    FormatError,
    KeyKind,
    KeyringError,
    PrivateKey,
    SignatureError,
    SignedKeyring,
    SourceSecrets,
    UnsupportedVersion,
    check_install,
    derive_source_secrets,
    dump_private_key,
    dump_public_key,
    fingerprint,
    load_private_key,
    parse_json,
    verify_keyring,
)
from dropbox import db
from dropbox.errors import DropboxError
from dropbox.fsutil import write_atomic
from dropbox.storage import LocalBlobStore

INSTANCE_FILE: Final = "instance.json"
KEYRING_FILE: Final = "keyring.json"
SERVER_KEY_FILE: Final = "server.key"
SERVER_PUB_FILE: Final = "server.pub"
BLOBS_DIR: Final = "blobs"
UPLOADS_DIR: Final = "uploads"

INSTANCE_TYPE: Final = "postern-instance"
INSTANCE_VERSION: Final = 1
SALT_LEN: Final = 16
SERVER_KEY_LABEL: Final = "server signing key"
#: Largest instance.json read (it is a few hundred bytes).
_MAX_INSTANCE_FILE: Final = 4096
#: Largest keyring file read (docs/format.md section 4.2).
_MAX_KEYRING_FILE: Final = 256 * 1024
_MAX_KEY_FILE: Final = 2048
_MIN_OPSLIMIT: Final = 3
_MIN_MEMLIMIT: Final = 64 * 1024 * 1024


@dataclass(frozen=True)
class CodenameParams:
    """Argon2id parameters of the codename derivation (docs/format.md section 5.2)."""

    opslimit: int
    memlimit: int


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


# -- instance.json -----------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, length: int, what: str) -> bytes:
    if not isinstance(text, str):
        raise DropboxError(f"{what} must be a base64 string")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise DropboxError(f"{what} is not valid base64") from None
    if _b64(data) != text or len(data) != length:
        raise DropboxError(f"{what} must be the base64 of {length} bytes")
    return data


def _instance_json(salt: bytes, params: CodenameParams, root: bytes) -> bytes:
    document = {
        "type": INSTANCE_TYPE,
        "version": INSTANCE_VERSION,
        "instance_salt": _b64(salt),
        "codename_argon2": {"opslimit": params.opslimit, "memlimit": params.memlimit},
        "root": _b64(root),
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("ascii")


def _int_member(obj: dict[str, Any], name: str, minimum: int) -> int:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DropboxError(f"{name} must be an integer of at least {minimum}")
    return value


#: instance.json is a few hundred bytes; anything far larger is not ours.
_MAX_INSTANCE_JSON = 64 * 1024


def _parse_instance_json(data: bytes) -> tuple[bytes, CodenameParams, bytes]:
    try:
        document = parse_json(data, max_bytes=_MAX_INSTANCE_JSON, what="instance.json")
    except FormatError as exc:
        raise DropboxError(f"not valid JSON ({exc})") from None
    members = {"type", "version", "instance_salt", "codename_argon2", "root"}
    if not isinstance(document, dict) or set(document) != members:
        raise DropboxError(f"must be an object with exactly the members {sorted(members)}")
    if document["type"] != INSTANCE_TYPE:
        raise DropboxError(f"type must be {INSTANCE_TYPE!r}")
    if document["version"] != INSTANCE_VERSION:
        raise DropboxError(f"version {document['version']!r} is not one this server can read")
    params = document["codename_argon2"]
    if not isinstance(params, dict) or set(params) != {"opslimit", "memlimit"}:
        raise DropboxError("codename_argon2 must hold exactly opslimit and memlimit")
    return (
        _unb64(document["instance_salt"], SALT_LEN, "instance_salt"),
        CodenameParams(
            _int_member(params, "opslimit", _MIN_OPSLIMIT),
            _int_member(params, "memlimit", _MIN_MEMLIMIT),
        ),
        _unb64(document["root"], 32, "root"),
    )


# -- reading -----------------------------------------------------------------------------------


def _read_limited(path: Path, limit: int) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise DropboxError(f"{path} is too large (over {limit} bytes)")
    return data


def _require_instance(data_dir: Path) -> Path:
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
    path = _require_instance(data_dir)
    try:
        salt, params, root = _parse_instance_json(_read_limited(path, _MAX_INSTANCE_FILE))
    except DropboxError as exc:
        raise DropboxError(f"{path} is damaged: {exc}") from None

    key_path = data_dir / SERVER_KEY_FILE
    try:
        server_key = load_private_key(_read_limited(key_path, _MAX_KEY_FILE), None)
    except CryptoError as exc:
        raise DropboxError(f"{key_path} is not a usable server key file: {exc}") from None
    if server_key.kind is not KeyKind.SERVER:
        raise DropboxError(f"{key_path} holds a {server_key.kind.value} key, not a server key")

    keyring = None
    keyring_path = data_dir / KEYRING_FILE
    if keyring_path.exists():
        data = _read_limited(keyring_path, _MAX_KEYRING_FILE)
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


# -- init --------------------------------------------------------------------------------------


def init_instance(
    data_dir: Path,
    root: bytes,
    *,
    opslimit: int = _MIN_OPSLIMIT,
    memlimit: int = _MIN_MEMLIMIT,
) -> Instance:
    """Create a new data directory pinned to the team root public key ``root``.

    ``data_dir`` may exist if it is an empty directory. An initialized directory, or one with
    anything in it, is refused: nothing in it is touched.
    """
    if len(root) != 32:
        raise DropboxError("the team root public key must be 32 bytes")
    params = CodenameParams(opslimit, memlimit)
    if opslimit < _MIN_OPSLIMIT or memlimit < _MIN_MEMLIMIT:
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
        database = data_dir / db.DATABASE_FILE
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        engine = db.make_engine(db.sqlite_url(data_dir))
        try:
            db.upgrade(engine)
        finally:
            engine.dispose()
        salt = secrets.token_bytes(SALT_LEN)
        write_atomic(data_dir / INSTANCE_FILE, _instance_json(salt, params, root), replace=False)
    except OSError as exc:
        raise DropboxError(describe_os_error(exc)) from None
    return load_instance(data_dir)


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


# -- keyring installation ----------------------------------------------------------------------


@dataclass(frozen=True)
class InstalledKeyring:
    keyring: SignedKeyring
    previous_serial: int | None
    previous_root: bytes

    @property
    def root_moved(self) -> bool:
        return self.keyring.root != self.previous_root


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    """An exclusive lock on the data directory, so that installs do not interleave."""
    fd = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def install_keyring(
    data_dir: Path, data: bytes, *, source: str = "the keyring"
) -> InstalledKeyring:
    """Verify a signed keyring against the pinned root and install it.

    Refused (``DropboxError``): a keyring that does not verify, one not issued by the pinned
    root's chain, and one whose serial is not strictly greater than the installed one
    (rollback or replay). ``source`` names the keyring in messages.
    """
    try:
        _require_instance(data_dir)
        with _locked(data_dir):
            return _install(data_dir, data, source)
    except OSError as exc:
        raise DropboxError(describe_os_error(exc)) from None


def _install(data_dir: Path, data: bytes, source: str) -> InstalledKeyring:
    instance = load_instance(data_dir)
    if len(data) > _MAX_KEYRING_FILE:
        raise DropboxError(
            f"{source} is too large to be a keyring (over {_MAX_KEYRING_FILE} bytes)"
        )
    keyring = _verify_for_install(data, instance.pinned_root, source)
    installed = instance.keyring.serial if instance.keyring is not None else None
    if installed is not None and keyring.serial == installed:
        raise DropboxError(
            f"{source} has serial {keyring.serial}, which is already installed: refusing to "
            "install the same serial twice (a replay)"
        )
    if installed is not None and keyring.serial < installed:
        raise DropboxError(
            f"{source} has serial {keyring.serial}, older than the installed serial "
            f"{installed}: refusing a rollback"
        )
    try:
        check_install(keyring, installed)
    except KeyringError as exc:  # pragma: no cover - the two checks above are stricter
        raise DropboxError(f"{source} may not be installed: {exc}") from None

    write_atomic(data_dir / KEYRING_FILE, keyring.raw)
    salt, params, stored_root = _parse_instance_json(
        _read_limited(data_dir / INSTANCE_FILE, _MAX_INSTANCE_FILE)
    )
    if stored_root != keyring.root:
        write_atomic(data_dir / INSTANCE_FILE, _instance_json(salt, params, keyring.root))
    return InstalledKeyring(keyring, installed, instance.pinned_root)


def _verify_for_install(data: bytes, pinned_root: bytes, source: str) -> SignedKeyring:
    try:
        return verify_keyring(data, pinned_root)
    except UnsupportedVersion as exc:
        raise DropboxError(f"{source} has a version this server cannot read: {exc}") from None
    except FormatError as exc:
        raise DropboxError(f"{source} is not a valid signed keyring: {exc}") from None
    except SignatureError:
        raise DropboxError(
            f"the signature of {source} does not verify: it was altered, or signed by a key "
            "other than its root"
        ) from None
    except KeyringError as exc:
        raise DropboxError(
            f"{source} was not issued by the pinned team root "
            f"({fingerprint(Algorithm.ED25519, pinned_root)}): {exc}"
        ) from None
