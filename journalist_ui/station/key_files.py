"""Opening the passphrase-sealed private key files of a station home.

Private keys are key files of docs/format.md section 2.4, sealed under a passphrase with
Argon2id; in this version one passphrase protects the root key and the journalist's keys.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from crypto import KeyFileError, KeyKind, PassphraseError, PrivateKey, load_private_key
from journalist_ui.errors import StationError
from journalist_ui.station.layout import Layout

#: Asks for the passphrase of the keys it names (for example "journalist alice's keys").
PassphraseSource = Callable[[str], str]


def load_private_key_file(path: Path, passphrase: str, kind: KeyKind, whose: str) -> PrivateKey:
    """Open one passphrase-sealed key file, checking it holds the expected kind of key."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StationError(f"key file {path} is missing") from None
    try:
        key = load_private_key(data, passphrase)
    except PassphraseError:
        raise StationError(f"wrong passphrase for {whose}") from None
    except KeyFileError as exc:
        raise StationError(f"key file {path} is damaged: {exc}") from None
    if key.kind is not kind:
        raise StationError(f"key file {path} holds a {key.kind.value} key, not a {kind.value} key")
    return key


def load_encryption_keys(layout: Layout, journalist: str, passphrase: str) -> list[PrivateKey]:
    """Every encryption private key of a journalist: the current one, then the retired ones.

    Retired keys (``keys/<name>/retired/encryption-<key id>.key``, left by
    ``journalist keys rotate-key``) share the journalist's passphrase.
    """
    whose = f"journalist {journalist}'s keys"
    paths = [layout.encryption_key(journalist)]
    retired = layout.retired_keys(journalist)
    if retired.is_dir():
        paths += sorted(retired.glob("encryption-*.key"))
    return [load_private_key_file(p, passphrase, KeyKind.ENCRYPTION, whose) for p in paths]
