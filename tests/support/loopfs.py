"""A small real file system for tests that fill a disk: an ext4 image, loop-mounted.

:func:`loop_mounted` makes an image file of ``size`` bytes, formats it (``mkfs.ext4``, no
blocks reserved for root: the tests run as root, and reserved blocks would let the server
write on where a real service user could not) and mounts it with ``mount -o loop``; it is
unmounted when the block ends. Needs root, ``mkfs.ext4`` (e2fsprogs) and ``mount``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.conftest import require_tool


@contextlib.contextmanager
def loop_mounted(
    directory: Path,
    size: int = 8 * 1024 * 1024,
    *,
    mkfs_options: Sequence[str] = (),
    mount_options: str = "",
    keep_image: bool = False,
) -> Iterator[Path]:
    """A fresh ext4 file system of ``size`` bytes mounted at ``directory/mnt``.

    ``mkfs_options`` go to ``mkfs.ext4`` and ``mount_options`` to ``mount -o``; with
    ``keep_image`` the image ``directory/disk.img`` stays after the unmount (to be read raw).
    """
    if os.geteuid() != 0:
        pytest.fail("mounting a loop file system needs root (CI runs the tests as root)")
    mkfs, mount, umount = (require_tool(name) for name in ("mkfs.ext4", "mount", "umount"))
    image, mountpoint = directory / "disk.img", directory / "mnt"
    with image.open("wb") as handle:
        handle.truncate(size)
    subprocess.run([mkfs, "-q", "-F", "-m", "0", *mkfs_options, str(image)], check=True)
    mountpoint.mkdir()
    options = ",".join(filter(None, ("loop", mount_options)))
    subprocess.run([mount, "-o", options, str(image), str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        done = subprocess.run([umount, str(mountpoint)], capture_output=True, check=False)
        if done.returncode != 0:  # something still holds a file open there: detach lazily
            subprocess.run([umount, "-l", str(mountpoint)], check=True)
        if not keep_image:
            image.unlink()


def fill(path: Path) -> int:
    """Write ``path`` until the file system is full; return the bytes written."""
    written = 0
    block = bytes(64 * 1024)
    with path.open("wb", buffering=0) as handle:
        while True:
            try:
                written += handle.write(block)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                break
        # The last blocks, a byte at a time is too slow: halve until nothing more fits.
        size = len(block) // 2
        while size:
            try:
                written += handle.write(bytes(size))
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                size //= 2
    return written
