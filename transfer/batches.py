"""A pull's batches: one signed manifest each, its work directory and partial bundle.

A batch is a signed manifest of at most ``MANIFEST_BATCH`` items, turned into one inbound
bundle (docs/format.md section 10). Its work directory in the destination, named for the
manifest's SHA-256, holds the signed block and the partial bundle; an interrupted pull leaves
both, and the next one finds them (:func:`resumed_batches`), checks what the partial bundle
holds envelope by envelope (:func:`verified_prefix`) and goes on from there. The server's
signing key is pinned in the destination by the first pull, and every later one checks it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import stat
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from common.files import fsync_dir, write_atomic
from crypto import CryptoError
from crypto.bundle import (
    INBOUND_MAGIC,
    MAX_MANIFEST,
    SIGNATURE_LEN,
    VERSION,
    InboundManifest,
    parse_signed_inbound_manifest,
)
from transfer.client import PIECE, ServerStatus, SyncClient
from transfer.download import pwrite_all
from transfer.errors import TransferError
from transfer.spool import hash_range

if TYPE_CHECKING:
    from hashlib import _Hash as Hasher

WORK_PREFIX: Final = ".postern-pull-"
BLOCK_NAME: Final = "manifest.block"
#: The bundle being written, in the work directory (moved into place when complete).
PART_NAME: Final = "bundle.part"
PIN_NAME: Final = ".postern-server-key"

_WORK_RE = re.compile(r"\A\.postern-pull-[0-9a-f]{64}\Z")


@dataclass
class Batch:
    """One signed manifest being turned into one bundle, with its work directory."""

    work: Path
    block: bytes
    manifest: InboundManifest
    digest: str
    resumed: bool

    @property
    def bundle_name(self) -> str:
        return f"postern-inbound-{self.manifest.made.isoformat()}-{self.digest[:8]}.bundle"


def manifest_digest(block: bytes) -> str:
    """The SHA-256 (hex) of the manifest in a signed block: the batch's name."""
    (length,) = struct.unpack(">I", block[:4])
    return hashlib.sha256(block[4 : 4 + length]).hexdigest()


def bundle_head(batch: Batch) -> bytes:
    """The bundle's bytes before the first envelope: magic, version, the signed block."""
    return INBOUND_MAGIC + bytes([VERSION]) + batch.block


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on the directory itself, so that two pulls never mix."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TransferError(f"another pull is writing to {directory}") from None
        yield
    finally:
        os.close(fd)


# -- the server key --------------------------------------------------------------------------


def check_pin(dest: Path, server_key: bytes) -> None:
    """Refuse a server key other than the one an earlier pull into ``dest`` pinned."""
    pin = dest / PIN_NAME
    try:
        pinned = pin.read_text("ascii").strip()
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as exc:
        raise TransferError(f"cannot read the pinned server key {pin}: {exc}") from None
    if pinned != base64.b64encode(server_key).decode("ascii"):
        raise TransferError(
            f"the server's signing key is not the one pinned in {pin} by an earlier pull; "
            "refusing to go on (if the server key really changed, remove that file)"
        )


def _pin(dest: Path, server_key: bytes) -> None:
    pin = dest / PIN_NAME
    if not pin.exists():
        text = base64.b64encode(server_key).decode("ascii") + "\n"
        write_atomic(pin, text.encode("ascii"), mode=0o644, replace=False)


def _verify(dest: Path, block: bytes, server_key: bytes, what: str) -> InboundManifest:
    try:
        manifest = parse_signed_inbound_manifest(block, server_key)
    except CryptoError as exc:
        raise TransferError(
            f"{what} does not verify under the server key the server announced: {exc}"
        ) from None
    _pin(dest, server_key)
    return manifest


# -- batches ---------------------------------------------------------------------------------


def resumed_batches(dest: Path, server_key: bytes) -> list[Batch]:
    """The batches interrupted pulls left in ``dest``, their saved manifests verified."""
    batches = []
    for entry in sorted(dest.iterdir()):
        if not _WORK_RE.match(entry.name):
            continue
        if not stat.S_ISDIR(entry.lstat().st_mode):
            raise TransferError(f"{entry} is not a directory; remove it")
        block_path = entry / BLOCK_NAME
        if not block_path.exists():
            # Interrupted between creating the directory and saving the manifest.
            shutil.rmtree(entry)
            continue
        with block_path.open("rb") as handle:
            block = handle.read(4 + MAX_MANIFEST + SIGNATURE_LEN + 1)
        what = f"the saved manifest of the interrupted pull in {entry}"
        manifest = _verify(dest, block, server_key, what)
        digest = manifest_digest(block)
        if entry.name != WORK_PREFIX + digest:
            raise TransferError(f"{what} does not match the directory's name; remove it")
        batches.append(Batch(entry, block, manifest, digest, resumed=True))
    return batches


def new_batch(client: SyncClient, dest: Path, ids: Sequence[str], status: ServerStatus) -> Batch:
    """A batch of these items: their signed manifest, saved in a new work directory."""
    block = client.manifest_block(ids)
    manifest = _verify(dest, block, status.server_key, "the manifest the server sent")
    if [item.id for item in manifest.items] != list(ids):
        raise TransferError("the server's manifest does not list the items asked for")
    digest = manifest_digest(block)
    work = dest / (WORK_PREFIX + digest)
    work.mkdir(mode=0o700, exist_ok=True)
    write_atomic(work / BLOCK_NAME, block, mode=0o600)
    fsync_dir(dest)
    return Batch(work, block, manifest, digest, resumed=False)


def verified_prefix(fd: int, batch: Batch) -> tuple[int, int, Hasher]:
    """Check what an interrupted pull left in the partial bundle ``fd``.

    Returns the index of the first envelope to fetch, how many of its bytes are there
    already and a hasher that has hashed them. Whatever does not match the signed manifest
    is cut off, so the file holds exactly the head and the envelopes before that one (and
    the part of that one) afterwards.
    """
    head = bundle_head(batch)
    size = os.fstat(fd).st_size
    if size < len(head) or os.pread(fd, len(head), 0) != head:
        os.ftruncate(fd, 0)
        pwrite_all(fd, head, 0)
        return 0, 0, hashlib.sha256()
    offset = len(head)
    for index, item in enumerate(batch.manifest.items):
        present = min(item.size, size - offset)
        if present <= 0:
            break
        hasher = hashlib.sha256()
        stop = hash_range(fd, hasher, offset, offset + present, bytearray(PIECE))
        if stop - offset < item.size:
            os.ftruncate(fd, stop)
            return index, stop - offset, hasher
        if hasher.digest() != item.sha256:
            break
        offset += item.size
    else:
        index = len(batch.manifest.items)
    os.ftruncate(fd, offset)
    return index, 0, hashlib.sha256()
