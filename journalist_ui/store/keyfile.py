"""The database key at rest: HOME/store/key.envelope (docs/format.md section 13.1).

The 32-byte SQLCipher key is the content of an ordinary envelope (format section 3) of kind
file, without a filename, with the media type :data:`MEDIA_TYPE`, sealed to the encryption
key of every journalist on the station: any one of them opens the store with their own key.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from crypto import DecryptionError, FormatError, Kind, open_bytes, seal_bytes
from journalist_ui import fs
from journalist_ui.errors import StationError
from journalist_ui.store import KEY_LEN

MEDIA_TYPE = "application/x-postern-store-key"
MAX_KEY_ENVELOPE = 64 * 1024


def seal_store_key(key: bytes, recipients: Sequence[bytes]) -> bytes:
    if len(key) != KEY_LEN:
        raise StationError(f"a station database key is {KEY_LEN} bytes")
    unique = list(dict.fromkeys(recipients))
    return seal_bytes(key, unique, Kind.FILE, "", MEDIA_TYPE)


def create_store_key(path: Path, recipients: Sequence[bytes]) -> bytes:
    """Make a new random database key, seal it into a new file at path, return it."""
    key = os.urandom(KEY_LEN)
    fs.create_private_file(path, seal_store_key(key, recipients))
    return key


def reseal_store_key(path: Path, key: bytes, recipients: Sequence[bytes]) -> None:
    """Replace key.envelope atomically (when the station's journalists change)."""
    fs.atomic_write(path, seal_store_key(key, recipients))


def open_store_key(path: Path, secrets: Iterable[bytes], journalist: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_KEY_ENVELOPE + 1)
    except FileNotFoundError:
        raise StationError(f"the store key {path} is missing") from None
    if len(data) > MAX_KEY_ENVELOPE:
        raise StationError(f"the store key {path} is larger than {MAX_KEY_ENVELOPE} bytes")
    try:
        metadata, key = open_bytes(data, list(secrets))
    except (DecryptionError, FormatError):
        raise StationError(
            f"journalist {journalist}'s keys cannot open the store key {path}: it is not "
            "sealed to them, or it is damaged"
        ) from None
    if metadata.media_type != MEDIA_TYPE or len(key) != KEY_LEN:
        raise StationError(f"{path} does not hold a station database key")
    return key


__all__ = ["MEDIA_TYPE", "create_store_key", "open_store_key", "reseal_store_key"]
