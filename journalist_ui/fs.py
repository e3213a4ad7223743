"""File system helpers of the station: private directories and files, atomic writes.

Everything the station writes is readable by its owner only (directories 0700, files 0600).
A file is written to a temporary file in the same directory and synced first; then it is
renamed over the old one, or, where it must never replace anything, linked to its new name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from common.files import fsync_dir, write_all, write_atomic

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_private_dir(path: Path) -> None:
    """Create a directory readable by its owner only; it must not exist yet."""
    os.mkdir(path, DIR_MODE)
    os.chmod(path, DIR_MODE)  # the umask may have taken bits away


def create_private_file(path: Path, content: bytes) -> None:
    """Create a new 0600 file with content; never replace an existing file (FileExistsError).

    The content is written and synced under a temporary name first, so ``path`` never
    exists half-written, even after a crash.
    """
    write_atomic(path, content, mode=FILE_MODE, replace=False)


def atomic_write(path: Path, content: bytes) -> None:
    """Write a 0600 file in one step: a temporary file, synced, renamed over path."""
    write_atomic(path, content, mode=FILE_MODE)


def shred(path: Path) -> None:
    """Overwrite a file with random bytes, sync it, then unlink it.

    The caller syncs the directory that held it.
    """
    size = path.stat().st_size
    fd = os.open(path, os.O_WRONLY)
    try:
        write_all(fd, os.urandom(size))
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink()


def link_without_replacing(source: Path, directory: Path, names: Iterable[str]) -> Path:
    """Give the file ``source`` the first of ``names`` that is free in ``directory``.

    ``source`` must be in ``directory``. The new name never replaces an existing entry, even
    if another process creates one at the same moment; ``source`` is gone afterwards.
    Raises FileExistsError when every name is taken.
    """
    for name in names:
        target = directory / name
        try:
            os.link(source, target)
        except FileExistsError:
            continue
        except OSError:
            # File systems without hard links (FAT on removable media): claim the name
            # with an exclusive create, then rename the finished file over the claim.
            try:
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
            except FileExistsError:
                continue
            try:
                os.replace(source, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(target)
                raise
        else:
            os.unlink(source)
        fsync_dir(directory)
        return target
    raise FileExistsError(f"no free file name left in {directory}")
