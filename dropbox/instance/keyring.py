"""Installing a signed keyring into a data directory (``dropbox install-keyring``).

``keyring.json`` is written first, then, if the chain moved to a new root, ``instance.json``,
each atomically, under an exclusive lock on the directory. A crash between the two leaves a
keyring whose chain still contains the old pin: :func:`~dropbox.instance.load_instance`
verifies it against that pin, and the next install rewrites ``instance.json``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from common.cli import describe_os_error
from common.files import write_atomic
from crypto import (
    Algorithm,
    FormatError,
    KeyringError,
    SignatureError,
    SignedKeyring,
    UnsupportedVersion,
    check_install,
    fingerprint,
    verify_keyring,
)
from dropbox.errors import DropboxError
from dropbox.instance.document import instance_json, parse_instance_json
from dropbox.instance.layout import INSTANCE_FILE, KEYRING_FILE, MAX_INSTANCE_FILE, MAX_KEYRING_FILE
from dropbox.instance.load import load_instance, read_limited, require_instance


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
        require_instance(data_dir)
        with _locked(data_dir):
            return _install(data_dir, data, source)
    except OSError as exc:
        raise DropboxError(describe_os_error(exc)) from None


def _install(data_dir: Path, data: bytes, source: str) -> InstalledKeyring:
    instance = load_instance(data_dir)
    if len(data) > MAX_KEYRING_FILE:
        raise DropboxError(f"{source} is too large to be a keyring (over {MAX_KEYRING_FILE} bytes)")
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
    salt, params, stored_root = parse_instance_json(
        read_limited(data_dir / INSTANCE_FILE, MAX_INSTANCE_FILE)
    )
    if stored_root != keyring.root:
        write_atomic(data_dir / INSTANCE_FILE, instance_json(salt, params, keyring.root))
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
