"""The durable publish step of an import, and the cleanup of an import that was killed.

The envelope files of an import are written under temporary names (TEMP_PREFIX). Once every
one is decrypted, they are made durable at once (on a second thread, while the calling one
writes the import's rows: the disk's wait and the database's work overlap), the final names
they are about to get are written to HOME/store/import.publishing (PUBLISHING), then they are
renamed and the import's transaction commits. The marker goes once it committed. A kill
before the commit leaves files under final names that no row names: the next import removes
every name the marker lists that no item names (:func:`recover_publish`), and every
temporary file (:func:`sweep_temporaries`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.files import fsync_dir
from journalist_ui import fs, ledger
from journalist_ui.importer.contents import Opened
from journalist_ui.importer.spool import TEMP_PREFIX
from journalist_ui.store.models import Item
from journalist_ui.unlock import Unlocked

#: In HOME/store/: the final names an import is giving its envelope files, written before the
#: first rename and removed once its transaction committed (see recover_publish).
PUBLISHING = "import.publishing"
_FINAL_NAME = re.compile(r"[0-9a-f]{32}")

T = TypeVar("T")


def publish_envelopes(
    unlocked: Unlocked,
    opened: list[Opened],
    write: Callable[[Session], T],
    mark: Callable[[str], None],
) -> T:
    """Give the files of ``opened`` their final names in the transaction in which ``write``
    records them; on any failure the names they got are removed again."""
    layout = unlocked.layout
    # Every new envelope file durable at once, rather than an fsync per file; on a second
    # thread while the rows are written (it waits for the disk, not for the GIL).
    syncing = _Sync(layout.envelopes)
    renamed: list[str] = []
    marker = layout.store / PUBLISHING
    # Plain strings, not a Path built per file (ten thousand of them add up).
    base = os.fspath(layout.envelopes) + os.sep
    try:
        with unlocked.store.session() as session:
            result = write(session)
            syncing.wait()
            if opened:
                # Durable before the first rename: a kill from here on is undone on the
                # next import (recover_publish).
                fs.atomic_write(
                    marker, "".join(f"{entry.final_name}\n" for entry in opened).encode()
                )
            rename = os.rename
            for entry in opened:
                final = base + entry.final_name
                rename(os.fspath(entry.temp), final)
                renamed.append(final)
            fsync_dir(layout.envelopes)
            # The session commits as the block ends; the files already have their names.
    except BaseException:
        syncing.join()
        for path in renamed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        with contextlib.suppress(FileNotFoundError):
            marker.unlink()
        raise
    # Committed: the names are the store's now (a marker left by a crash here is harmless:
    # every name it lists is an item's).
    with contextlib.suppress(FileNotFoundError):
        marker.unlink()
    # Committed: from here on nothing may remove the files.
    ledger.update_head(unlocked.store, layout.ledger_head)
    mark("publish")
    return result


class _Sync:
    """:func:`_sync_file_system` of a directory on its own thread; :meth:`wait` joins it and
    raises what it raised."""

    def __init__(self, directory: Path) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(directory,), name="postern-import-sync"
        )
        self._thread.start()

    def _run(self, directory: Path) -> None:
        try:
            _sync_file_system(directory)
        except BaseException as exc:  # noqa: BLE001 - raised in the calling thread
            self._error = exc

    def join(self) -> None:
        self._thread.join()

    def wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


def sweep_temporaries(directory: Path) -> None:
    """Remove what an import that was killed left (only ever run under the import lock)."""
    for leftover in directory.glob(f"{TEMP_PREFIX}*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def recover_publish(unlocked: Unlocked) -> None:
    """Undo the publish step of an import killed before its commit (only under the lock).

    Its files already had their final names but no row names them: each name listed in
    PUBLISHING that no item of the store names is removed. A name an item does name stays.
    """
    layout = unlocked.layout
    marker = layout.store / PUBLISHING
    try:
        listed = marker.read_text(encoding="ascii").split()
    except FileNotFoundError:
        return
    names = [name for name in listed if _FINAL_NAME.fullmatch(name)]
    known: set[str] = set()
    with unlocked.store.session() as session:
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            known.update(
                session.scalars(select(Item.envelope_name).where(Item.envelope_name.in_(chunk)))
            )
    for name in names:
        if name not in known:
            with contextlib.suppress(FileNotFoundError):
                (layout.envelopes / name).unlink()
    fsync_dir(layout.envelopes)
    marker.unlink()
    fsync_dir(layout.store)


def _sync_file_system(directory: Path) -> None:
    """Make every file written on the file system of ``directory`` durable: syncfs(2), which
    waits for that file system only; os.sync where the C library has no syncfs."""
    libc = ctypes.CDLL(None, use_errno=True)
    syncfs = getattr(libc, "syncfs", None)
    if syncfs is None:
        os.sync()
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"syncfs of {directory} failed: {os.strerror(code)}")
    finally:
        os.close(fd)
