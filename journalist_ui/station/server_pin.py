"""The pinned server signing key, ``HOME/server.pub``: the key every inbound bundle must be
signed with (``journalist server pin``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from crypto import FormatError, KeyFileError, KeyKind, PublicKey, dump_public_key, load_public_key
from journalist_ui import fs
from journalist_ui.errors import StationError
from journalist_ui.station.layout import Layout
from journalist_ui.station.record import load_station

MAX_PUBLIC_KEY_FILE = 64 * 1024


@dataclass(frozen=True)
class PinResult:
    fingerprint: str
    #: The fingerprint of the key this one replaced, if any.
    replaced: str | None
    #: True when this very key was already pinned (nothing changed).
    unchanged: bool


def load_server_key(layout: Layout) -> PublicKey:
    """The pinned server signing key; a clear error when none is pinned."""
    try:
        data = layout.server_pub.read_bytes()
    except FileNotFoundError:
        raise StationError(
            f"no server key is pinned on this station ({layout.server_pub} is missing): "
            "pin it with `journalist server pin FILE`"
        ) from None
    try:
        key = load_public_key(data)
    except (FormatError, KeyFileError) as exc:
        raise StationError(f"the pinned server key {layout.server_pub} is damaged: {exc}") from None
    if key.kind is not KeyKind.SERVER:
        raise StationError(f"{layout.server_pub} holds a {key.kind.value} key, not a server key")
    return key


def pin_server_key(home: Path, key_file: Path, *, replace: bool = False) -> PinResult:
    """Pin the server signing public key in key_file (format 2.3, kind server)."""
    layout = Layout(home)
    load_station(home)
    try:
        with key_file.open("rb") as handle:
            data = handle.read(MAX_PUBLIC_KEY_FILE + 1)
    except FileNotFoundError:
        raise StationError(f"no such key file: {key_file}") from None
    try:
        if len(data) > MAX_PUBLIC_KEY_FILE:
            raise FormatError("too large")
        key = load_public_key(data)
    except (FormatError, KeyFileError) as exc:
        raise StationError(f"{key_file} is not a public key file: {exc}") from None
    if key.kind is not KeyKind.SERVER:
        raise StationError(
            f"{key_file} holds a {key.kind.value} key, not the server signing key "
            "(pin the server.pub that `dropbox init` wrote)"
        )
    replaced = None
    if layout.server_pub.exists():
        old = load_server_key(layout)
        if old.key == key.key:
            return PinResult(key.fingerprint, None, True)
        if not replace:
            raise StationError(
                f"a different server key is already pinned (fingerprint {old.fingerprint}); "
                "pass --replace to pin this one instead"
            )
        replaced = old.fingerprint
    fs.atomic_write(layout.server_pub, dump_public_key(key))
    return PinResult(key.fingerprint, replaced, False)
