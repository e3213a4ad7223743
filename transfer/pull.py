"""``dropbox-transfer pull``: every unacknowledged item into signed inbound bundles.

It lists the items the server holds that no journalist acknowledged yet, asks for a manifest
of them signed by the server, and writes one inbound bundle (docs/format.md section 10) per
manifest. The bundle is written in place, once: its head and then every envelope as it
arrives go into a partial file in a work directory next to the destination (envelope bodies
by :mod:`transfer.download`, streamed into the file); background threads read each
envelope back and check its SHA-256 against the signed manifest while the next one arrives
(:class:`transfer.spool.Spool`), and the complete file is synced and moved into place.
An interrupted pull (server gone, network down, Ctrl-C) is finished by the next one, which
reuses the work directory and its signed manifest, checks the partial bundle envelope by
envelope and fetches only what is missing (with ``Range`` for a partial envelope).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from common.files import fsync_dir
from crypto.bundle import InboundItem
from transfer import download
from transfer.batches import (
    PART_NAME,
    Batch,
    bundle_head,
    check_pin,
    locked,
    new_batch,
    resumed_batches,
    verified_prefix,
)
from transfer.client import MANIFEST_BATCH, SyncClient
from transfer.errors import ServerRefused, TransferError, Unreachable, WireError
from transfer.network import RETRY_HINT
from transfer.progress import Progress
from transfer.spool import Segment, Spool

if TYPE_CHECKING:
    from hashlib import _Hash as Hasher


@dataclass
class PullResult:
    bundles: list[Path] = field(default_factory=list)
    items: int = 0
    bytes: int = 0
    fetched: int = 0
    seconds: float = 0.0
    resumed: int = 0
    #: Bundles that were already complete (the same manifest was pulled before).
    existing: int = 0


class Puller:
    """``pull``: every unacknowledged item into inbound bundles in ``dest``."""

    def __init__(
        self,
        client: SyncClient,
        dest: Path,
        *,
        stderr: TextIO,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        verify: bool = True,
    ) -> None:
        """``verify``: check every envelope's SHA-256 against the signed manifest as it
        arrives. Without it only what an interrupted pull left is checked (before it is
        reused); the station checks every envelope at import either way."""
        self.client = client
        self.verify = verify
        self.dest = dest
        self.stderr = stderr
        self.tty = tty
        self.clock = clock
        self.progress = Progress(stderr, 0, 0, tty=tty, clock=clock)

    def run(self) -> PullResult:
        if not self.dest.is_dir():
            raise TransferError(f"{self.dest} is not a directory")
        with locked(self.dest):
            return self._run()

    def _run(self) -> PullResult:
        started = self.clock()
        status = self.client.status()
        check_pin(self.dest, status.server_key)
        batches = resumed_batches(self.dest, status.server_key)
        covered = {item.id for batch in batches for item in batch.manifest.items}
        fresh = [i for i in self.client.list_item_ids() if i not in covered]
        for start in range(0, len(fresh), MANIFEST_BATCH):
            ids = fresh[start : start + MANIFEST_BATCH]
            batches.append(new_batch(self.client, self.dest, ids, status))
        result = PullResult(resumed=sum(batch.resumed for batch in batches))
        todo = [b for b in batches if not (self.dest / b.bundle_name).exists()]
        self.progress = Progress(
            self.stderr,
            sum(b.manifest.total_size for b in todo),
            sum(len(b.manifest.items) for b in todo),
            done_bytes=sum(self._on_disk(b) for b in todo),
            tty=self.tty,
            clock=self.clock,
        )
        for batch in batches:
            path = self.dest / batch.bundle_name
            if not path.exists():
                self._write_bundle(batch, path)
            else:
                result.existing += 1
            result.bundles.append(path)
            result.items += len(batch.manifest.items)
            result.bytes += batch.manifest.total_size
        self.progress.finish()
        for batch in batches:
            shutil.rmtree(batch.work)
        if batches:
            fsync_dir(self.dest)
        result.fetched = self.progress.fetched
        result.seconds = self.clock() - started
        return result

    def interrupted(self) -> None:
        self.progress.interrupt()

    @staticmethod
    def _on_disk(batch: Batch) -> int:
        """Bytes of the batch's envelopes already downloaded (by an interrupted pull).

        An estimate for the progress line only: what they hold is checked before use.
        """
        try:
            size = (batch.work / PART_NAME).stat().st_size
        except FileNotFoundError:
            return 0
        return max(0, min(batch.manifest.total_size, size - len(bundle_head(batch))))

    # -- the bundle --

    def _write_bundle(self, batch: Batch, path: Path) -> None:
        """Download the batch's envelopes into its partial bundle, then move it to ``path``.

        The partial bundle (``PART_NAME`` in the work directory) is the bundle's own bytes:
        the header, then the envelopes in manifest order, so each byte is written once. An
        interrupted pull left a prefix of it; that prefix is checked envelope by envelope
        against the signed manifest and the download continues after what matches.
        """
        part = batch.work / PART_NAME
        fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            first, have, hasher = verified_prefix(fd, batch)
            offset = len(bundle_head(batch)) + sum(i.size for i in batch.manifest.items[:first])
            spool = Spool(fd)
            try:
                for index in range(first, len(batch.manifest.items)):
                    item = batch.manifest.items[index]
                    if index != first:
                        have, hasher = 0, hashlib.sha256()
                    self._download(spool, fd, batch, item, offset, have, hasher)
                    offset += item.size
                    self.progress.item_done()
                if (bad := spool.settle()) is not None:
                    _mismatched(fd, bad)
            except BaseException:
                # Keep what arrived, on disk: the next run continues from there.
                with contextlib.suppress(Exception):
                    spool.close()
                    os.fsync(fd)
                raise
            spool.close()
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(part, path)
        fsync_dir(self.dest)

    def _download(
        self, spool: Spool, fd: int, batch: Batch, item: InboundItem, base: int, have: int,
        hasher: Hasher,
    ) -> None:  # fmt: skip
        """Fetch the envelope that starts at ``base`` in the file, ``have`` bytes of which
        are there already (``hasher`` has hashed them).

        With :attr:`verify`, its hash is checked in the background while the next one
        arrives. One completed here from an earlier run's bytes is checked at once, verify or
        not, and fetched whole once more if it does not match (the bytes kept may be what is
        wrong).
        """
        self._receive(spool, fd, batch, item, base, have, hasher, check=self.verify or have > 0)
        if not have:
            bad = spool.mismatch()
        elif (bad := spool.settle()) is not None:
            self.progress.advance(-item.size)
            self._receive(spool, fd, batch, item, base, 0, hashlib.sha256(), check=True)
            bad = spool.settle()
        if bad is not None:
            _mismatched(fd, bad)

    def _receive(
        self, spool: Spool, fd: int, batch: Batch, item: InboundItem, base: int, offset: int,
        hasher: Hasher, *, check: bool,
    ) -> None:  # fmt: skip
        """Fetch the envelope's bytes from ``offset`` on into the file at ``base + offset``
        (``hasher`` has hashed those before) and, with ``check``, hand it to the spool to be
        checked against the manifest."""
        path = f"/v1/items/{item.id}/envelope"
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            answer = self.client.fetch(path, headers=headers, ok=(200, 206))
        except ServerRefused as exc:
            if batch.resumed and exc.status == 404:
                raise TransferError(
                    f"item {item.id} of the interrupted pull is no longer on the server; "
                    f"remove {batch.work} to start a fresh pull"
                ) from None
            raise
        except Unreachable as exc:
            raise TransferError(f"{exc}; {RETRY_HINT}") from None
        except WireError as exc:
            raise TransferError(f"{exc}; run the same command again to resume") from None
        wire = self.client.wire
        try:
            if offset and answer.status == 200:
                # The server sent the whole envelope instead of the rest: start over.
                self.progress.advance(-offset)
                offset, hasher = 0, hashlib.sha256()
            elif answer.status == 206:
                try:
                    download.expect_range(answer, offset, item.size)
                except WireError as exc:
                    raise TransferError(f"item {item.id}: {exc}") from None
            expected = item.size - offset
            length = answer.length
            if length is None or length != expected:
                raise TransferError(
                    f"item {item.id}: the server sends {length} bytes where the signed "
                    f"manifest leaves {expected}"
                )
        except (TransferError, WireError) as exc:
            wire.close()
            raise TransferError(str(exc)) from None
        if check:
            spool.begin(item, base, hasher, base + offset)
        received = 0

        def wrote(count: int) -> None:
            nonlocal received
            received += count
            spool.wrote(base + offset + received)
            self.progress.advance(count)

        try:
            wire.copy_body(fd, base + offset, wrote)
        except WireError as exc:
            # What arrived is in the file and kept (see _write_bundle).
            raise TransferError(
                f"{exc} after {offset + received} of {item.size} bytes of item {item.id}; "
                "run the same command again to resume"
            ) from None
        if check:
            spool.end()


def _mismatched(fd: int, segment: Segment) -> NoReturn:
    """Cut the partial bundle before an envelope that does not match the manifest (the next
    run fetches it afresh) and say so."""
    os.ftruncate(fd, segment.base)
    raise TransferError(
        f"the envelope of item {segment.item.id} does not match the server's signed manifest"
    )
