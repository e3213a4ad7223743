"""Small file-system helpers: atomic replacement of whole files.

Files are written to a temporary name in the same directory, flushed and fsynced, then renamed
over the target, and the directory is fsynced: a reader sees the old file or the new one, whole,
never a mixture, even after a crash.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from common.files import fsync_dir

_TEMP_PREFIX = ".tmp-"


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600, replace: bool = True) -> None:
    """Write ``data`` as the whole content of ``path`` (created with ``mode``), atomically.

    With ``replace=False`` an existing ``path`` is never replaced (``FileExistsError``).
    """
    temp = path.with_name(f"{_TEMP_PREFIX}{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temp, path)
        else:
            os.link(temp, path)
            os.unlink(temp)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fsync_dir(path.parent)
