"""Exporting decrypted files: to a folder, or encrypted to a colleague's OpenPGP key.

The plaintext arrives as a stream of chunks (journalist_ui.content.open_file) and goes
straight into a new file in the chosen folder: a temporary name first (0600, synced), then
the final name, which is the sanitized filename from the envelope's metadata
(:mod:`journalist_ui.filenames`) or a numbered variant of it: an existing file is never
replaced. The SHA-256 of what was written is checked against the one recorded at import; on
any failure the partial file is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from crypto import Kind
from journalist_ui import filenames, fs, gpg
from journalist_ui.errors import StationError

#: Longest folder path accepted from a form.
MAX_PATH_CHARS = 4096


class Plaintext(Protocol):
    """A decrypted file, streamed (journalist_ui.content.FilePlaintext)."""

    @property
    def filename(self) -> str | None: ...
    @property
    def sha256(self) -> str: ...
    def chunks(self) -> Iterator[bytes]: ...


def check_folder(text: str) -> Path:
    """The export folder named in a form: an absolute path to an existing directory."""
    if not text or len(text) > MAX_PATH_CHARS or "\x00" in text:
        raise StationError("give the folder to export to as an absolute path")
    folder = Path(text)
    if not folder.is_absolute():
        raise StationError(f"the export folder must be an absolute path, not {text!r}")
    if not folder.is_dir():
        raise StationError(f"the export folder {text} does not exist or is not a folder")
    return folder


def export_name(plaintext: Plaintext) -> str:
    return filenames.output_name(Kind.FILE, plaintext.filename or "", plaintext.sha256)


def export_to_folder(plaintext: Plaintext, folder: Path) -> Path:
    """Write the plaintext into ``folder`` under a new sanitized name; the path written."""
    return write_new(
        folder,
        export_name(plaintext),
        lambda out: _copy_checked(plaintext.chunks(), out, plaintext.sha256),
    )


def export_path_to_folder(path: Path, name: str, folder: Path) -> Path:
    """Copy a file (a metadata-stripped copy) into ``folder`` under a new sanitized name."""

    def copy(out: BinaryIO) -> None:
        with path.open("rb") as src:
            while chunk := src.read(1 << 20):
                out.write(chunk)

    return write_new(folder, filenames.safe_filename(name) or path.name, copy)


def export_encrypted(plaintext: Plaintext, folder: Path, key: gpg.RecipientKey) -> Path:
    """Encrypt the plaintext to ``key`` (OpenPGP, binary) as ``<name>.gpg`` in ``folder``."""
    digest = hashlib.sha256()

    def counted() -> Iterator[bytes]:
        for chunk in plaintext.chunks():
            digest.update(chunk)
            yield chunk

    def encrypt(out: BinaryIO) -> None:
        gpg.encrypt_stream(key, counted(), out)
        if digest.hexdigest() != plaintext.sha256:
            raise StationError("the decrypted file does not match its recorded SHA-256")

    return write_new(folder, export_name(plaintext) + ".gpg", encrypt)


def write_new(folder: Path, name: str, fill: Callable[[BinaryIO], None]) -> Path:
    """Create ``folder/name`` (or a numbered variant) with what ``fill`` writes."""
    temp = folder / f".postern-export-{secrets.token_hex(8)}.part"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, fs.FILE_MODE)
    except OSError as exc:
        raise StationError(f"cannot write in {folder}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            fill(out)
            out.flush()
            os.fsync(out.fileno())
        try:
            return fs.link_without_replacing(temp, folder, filenames.candidates(name))
        except FileExistsError:
            raise StationError(f"too many files named like {name} in {folder}") from None
    except OSError as exc:
        raise StationError(f"cannot write in {folder}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def _copy_checked(chunks: Iterable[bytes], out: BinaryIO, sha256: str) -> None:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
        out.write(chunk)
    if digest.hexdigest() != sha256:
        raise StationError("the decrypted file does not match its recorded SHA-256")
