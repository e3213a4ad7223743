"""Looking for plaintext on disk: every regular file under some roots that holds a marker.

A test makes a random marker, sends it through the server and then asks which files hold
it. Only files whose inode changed since the marker was made are read: a file holding the
marker must have been written after it existed, and a write always moves the change time
(st_ctime), which, unlike the modification time, no program can set back. The server sets
its own files' modification times to the day (dropbox.filetimes), so a scan by
modification time would skip exactly the files that matter. Reading only what changed
keeps the scan of a shared temporary directory short however much other runs left there.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

MiB = 1 << 20

#: Slack for the file system's coarse clock, which may trail time.time() a little.
CLOCK_SLACK = 2.0


def scan_start() -> float:
    """The ``since`` to give files_containing for markers made from now on."""
    return time.time() - CLOCK_SLACK


def files_containing(
    roots: list[Path], marker: bytes, since: float, *, block: int = 4 * MiB
) -> list[Path]:
    """Regular files under ``roots`` changed since ``since`` whose bytes hold ``marker``
    (each file once, in the order found; symbolic links are not followed)."""
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for root in roots:
        for directory, _dirs, names in os.walk(root):
            for name in names:
                path = Path(directory, name)
                try:
                    info = path.lstat()
                    if not stat.S_ISREG(info.st_mode) or info.st_ctime < since:
                        continue
                    if (info.st_dev, info.st_ino) in seen:
                        continue
                    seen.add((info.st_dev, info.st_ino))
                    if file_holds(path, marker, block):
                        found.append(path)
                except OSError:
                    continue  # gone meanwhile, or not ours to read
    return found


def file_holds(path: Path, marker: bytes, block: int = 4 * MiB) -> bool:
    """Whether the file's bytes hold ``marker``, also across the reads' boundaries."""
    with path.open("rb") as handle:
        tail = b""
        while piece := handle.read(block):
            if marker in tail + piece:
                return True
            tail = piece[-(len(marker) - 1) :] if len(marker) > 1 else b""
    return False
