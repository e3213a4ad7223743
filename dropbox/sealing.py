"""Sealing content into an envelope for the recipients of a verified keyring.

The server seals to exactly the recipients named by a keyring that verifies against the team
root public key; it never picks recipients of its own. The envelope goes to a temporary file
next to the output and gets its name only once it is complete, so a half-written envelope is
never left under the output name.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from common.files import fsync_dir
from crypto import (
    FormatError,
    KeyFileError,
    KeyKind,
    KeyringError,
    Kind,
    Sealer,
    SignatureError,
    SignedKeyring,
    UnsupportedVersion,
    clean_filename,
    load_public_key,
    verify_keyring,
)
from dropbox.errors import DropboxError

DEFAULT_FILE_MEDIA_TYPE = "application/octet-stream"
DEFAULT_MESSAGE_MEDIA_TYPE = "text/plain; charset=utf-8"
#: Largest keyring file read (docs/format.md section 4.2 allows 256 KiB).
MAX_KEYRING_FILE = 256 * 1024
MAX_PUBLIC_KEY_FILE = 1024


class SealError(DropboxError):
    """An expected failure of sealing; its message is one clear line."""


def _read_small(path: Path, limit: int, what: str) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise SealError(f"{what} {path} does not exist") from None
    if len(data) > limit:
        raise SealError(f"{what} {path} is too large to be one (over {limit} bytes)")
    return data


def load_root(path: Path) -> bytes:
    """The team root public key from a public key file (docs/format.md section 2.3)."""
    data = _read_small(path, MAX_PUBLIC_KEY_FILE, "root public key file")
    try:
        key = load_public_key(data)
    except KeyFileError as exc:
        raise SealError(f"{path} is not a valid public key file: {exc}") from None
    if key.kind is not KeyKind.ROOT:
        raise SealError(f"{path} holds a {key.kind.value} key, not the team root key")
    return key.key


def load_keyring(keyring_path: Path, root_path: Path) -> SignedKeyring:
    """Read a signed keyring file and verify it against the root public key file."""
    root = load_root(root_path)
    data = _read_small(keyring_path, MAX_KEYRING_FILE, "keyring file")
    try:
        return verify_keyring(data, root)
    except UnsupportedVersion as exc:
        raise SealError(
            f"{keyring_path} has a keyring version this server cannot read: {exc}"
        ) from None
    except FormatError as exc:
        raise SealError(f"{keyring_path} is not a valid signed keyring: {exc}") from None
    except SignatureError:
        raise SealError(
            f"the signature of {keyring_path} does not verify under the team root key in "
            f"{root_path}: the keyring was altered, or signed by another root"
        ) from None
    except KeyringError as exc:
        raise SealError(
            f"{keyring_path} was not issued by the team root key in {root_path}: {exc}"
        ) from None


@dataclass(frozen=True)
class SealResult:
    out: Path
    kind: Kind
    filename: str
    media_type: str
    content_length: int
    envelope_length: int
    keyring_serial: int
    #: The journalists whose keys the envelope is sealed to, with the keys' labels.
    recipients: tuple[tuple[str, str], ...]


def default_media_type(kind: Kind, filename: str) -> str:
    if kind is not Kind.FILE:
        return DEFAULT_MESSAGE_MEDIA_TYPE
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or DEFAULT_FILE_MEDIA_TYPE


def seal_to_keyring(
    keyring: SignedKeyring,
    src: BinaryIO,
    out: Path,
    *,
    kind: Kind,
    filename: str = "",
    media_type: str | None = None,
    force: bool = False,
) -> SealResult:
    """Seal everything src yields into a new envelope file at out.

    The envelope is sealed to exactly the keyring's recipients. ``filename`` is cleaned with
    :func:`crypto.clean_filename` (and must be empty for messages); ``media_type`` defaults
    to a guess from the filename for files and to plain text for messages. An existing out
    is replaced only with ``force``.
    """
    if kind is not Kind.FILE and filename:
        raise SealError("only files carry a filename")
    filename = clean_filename(filename)
    if media_type is None:
        media_type = default_media_type(kind, filename)
    manifest = keyring.manifest
    try:
        sealer = Sealer(manifest.recipient_keys, kind, filename, media_type)
    except FormatError as exc:
        raise SealError(f"cannot seal with this metadata: {exc}") from None
    directory = out.parent
    if not directory.is_dir():
        raise SealError(f"cannot write {out}: {directory} is not a directory")
    if not force and (out.exists() or out.is_symlink()):
        raise SealError(f"{out} already exists (use --force to replace it)")

    fd, temp_name = tempfile.mkstemp(prefix=".postern-seal-", suffix=".part", dir=directory)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as dst:
            length = sealer.seal_stream(src, dst)
            dst.flush()
            os.fsync(dst.fileno())
            size = dst.tell()
        if force:
            os.replace(temp, out)
        else:
            try:
                os.link(temp, out)
            except FileExistsError:
                raise SealError(f"{out} already exists (use --force to replace it)") from None
            os.unlink(temp)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fsync_dir(directory)
    return SealResult(
        out=out,
        kind=kind,
        filename=filename,
        media_type=media_type,
        content_length=length,
        envelope_length=size,
        keyring_serial=manifest.serial,
        recipients=tuple((e.journalist, e.label) for e in manifest.recipients),
    )
