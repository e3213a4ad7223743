"""Reading and verifying an inbound bundle, its envelopes streaming to the spool.

The bundle is verified against the pinned server key (crypto.bundle.read_inbound_bundle with
one sink per envelope) while it is hashed up to the end of its signature: that hash is the
bundle's identity, known before the first envelope, so that a bundle imported already is
verified all the same but nothing of it is kept.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, cast

from crypto import FormatError, PublicKey, SignatureError, UnsupportedVersion
from crypto.bundle import InboundItem, InboundManifest, open_bundle_file, read_inbound_bundle
from journalist_ui.errors import StationError
from journalist_ui.importer.record import bundle_imported
from journalist_ui.importer.spool import Receiving, SpoolSink
from journalist_ui.unlock import Unlocked

#: Free space kept on the store's file system beyond what an import writes.
FREE_SPACE_MARGIN = 64 * 1024 * 1024

#: Called with the bytes done and the bytes to do.
Progress = Callable[[int, int], None]


class _Reader:
    """The bundle file, counting bytes and hashing them up to the end of the signature."""

    def __init__(self, raw: BinaryIO, total: int, progress: Progress | None) -> None:
        self._raw = raw
        self.total = total
        self.position = 0
        self.prefix = hashlib.sha256()
        self.in_prefix = True
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if self.in_prefix:
            self.prefix.update(data)
        self.position += len(data)
        if self._progress is not None and data:
            self._progress(self.position, 2 * self.total)
        return data


def receive_bundle(
    bundle: Path,
    server_key: PublicKey,
    unlocked: Unlocked,
    receiving: Receiving,
    progress: Progress | None,
) -> tuple[InboundManifest, str, int]:
    """Verify ``bundle``, each envelope going to a sink of ``receiving``; the manifest, the
    bundle's SHA-256 up to the end of its signature, and the file's size."""
    try:
        raw = open_bundle_file(bundle)
    except FormatError as exc:
        raise StationError(f"refused {bundle}: {exc}") from None
    except FileNotFoundError:
        raise StationError(f"no such bundle file: {bundle}") from None
    with raw:
        total = os.fstat(raw.fileno()).st_size
        reader = _Reader(raw, total, progress)

        envelopes = receiving.directory

        def open_sink(item: InboundItem) -> SpoolSink:
            if reader.in_prefix:
                # Signature and manifest are behind us: the bundle's identity is known.
                reader.in_prefix = False
                with unlocked.store.session() as session:
                    if bundle_imported(session, reader.prefix.hexdigest()):
                        receiving.keep = False  # verified all the same, but nothing is kept
                # The rest of the file bounds what the envelopes need on disk.
                free = shutil.disk_usage(envelopes).free
                if receiving.keep and total - reader.position + FREE_SPACE_MARGIN > free:
                    raise StationError(
                        f"not enough free space in {envelopes} for the "
                        f"{total - reader.position} bytes of envelopes in {bundle}"
                    )
            remaining = total - reader.position
            if item.size > remaining:
                raise FormatError(
                    f"item {item.id} claims {item.size} bytes but only {remaining} bytes "
                    "remain in the bundle"
                )
            sink = SpoolSink(receiving, item)
            receiving.sinks.append(sink)
            return sink

        try:
            manifest = read_inbound_bundle(cast(BinaryIO, reader), server_key.key, open_sink)
        except SignatureError:
            raise StationError(
                f"refused {bundle}: it is not signed by the pinned server key "
                f"(fingerprint {server_key.fingerprint})"
            ) from None
        except UnsupportedVersion as exc:
            raise StationError(f"refused {bundle}: {exc}") from None
        except FormatError as exc:
            raise StationError(f"refused {bundle}: not a valid inbound bundle: {exc}") from None
    return manifest, reader.prefix.hexdigest(), total
