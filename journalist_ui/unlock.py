"""Unlocking the station for one journalist: their keys, and the encrypted store.

``unlock(home, journalist, passphrase)`` opens the journalist's key files (current and
retired encryption keys, signing key) with their passphrase, opens HOME/store/key.envelope
with those keys and the SQLCipher database with the key inside. A station home created
before the store existed gets its store here, on the first unlock (the key sealed to the
journalist and to every recipient of the station's newest keyring).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from crypto import CryptoError, KeyKind, PrivateKey, load_public_key, verify_keyring
from journalist_ui import fs
from journalist_ui.errors import StationError
from journalist_ui.station import (
    Layout,
    choose_journalist,
    load_encryption_keys,
    load_private_key_file,
    load_station,
)
from journalist_ui.store import Store, open_store
from journalist_ui.store.keyfile import create_store_key, open_store_key

MAX_KEYRING_FILE = 1024 * 1024


@dataclass
class Unlocked:
    """A journalist's open keys and the open store; ``lock()`` when done."""

    journalist: str
    #: The current encryption key first, then every retired one.
    encryption_keys: list[PrivateKey] = field(repr=False)
    signing_key: PrivateKey = field(repr=False)
    store: Store = field(repr=False)
    layout: Layout

    @property
    def secrets(self) -> list[bytes]:
        """The X25519 private keys, as the crypto core's open functions take them."""
        return [key.secret for key in self.encryption_keys]

    def lock(self) -> None:
        """Close the store and drop the references to the keys (twice is harmless)."""
        self.store.close()
        self.encryption_keys = []
        with contextlib.suppress(AttributeError):
            del self.signing_key


def latest_keyring_recipients(layout: Layout) -> list[bytes]:
    """The encryption public keys of the newest keyring in HOME/keyrings/ (verified against
    the team root public key in HOME/outbox/root.pub)."""
    newest: tuple[int, Path] | None = None
    if layout.keyrings.is_dir():
        for path in layout.keyrings.glob("keyring-*.json"):
            serial = path.name[len("keyring-") : -len(".json")]
            if not (serial.isascii() and serial.isdigit()):
                continue
            if newest is None or int(serial) > newest[0]:
                newest = (int(serial), path)
    if newest is None:
        raise StationError(f"no keyring in {layout.keyrings}")
    try:
        root = load_public_key(layout.outbox_root.read_bytes())
        data = newest[1].read_bytes()[: MAX_KEYRING_FILE + 1]
        keyring = verify_keyring(data, root.key)
    except FileNotFoundError as exc:
        raise StationError(f"missing {exc.filename}") from None
    except CryptoError as exc:
        raise StationError(f"the keyring {newest[1]} does not verify: {exc}") from None
    return list(keyring.manifest.recipient_keys)


def create_store(layout: Layout, recipients: list[bytes]) -> Store:
    """Create HOME/store/ with a new key.envelope sealed to recipients and a new database."""
    if layout.store_db.exists() or layout.store_key.exists():
        raise StationError(f"{layout.store} already holds a store")
    if not layout.store.is_dir():
        fs.make_private_dir(layout.store)
    if not layout.envelopes.is_dir():
        fs.make_private_dir(layout.envelopes)
    key = create_store_key(layout.store_key, recipients)
    return open_store(layout.store_db, key)


def unlock(home: Path, journalist: str, passphrase: str) -> Unlocked:
    layout = Layout(home)
    name = choose_journalist(load_station(home), journalist)
    keys = load_encryption_keys(layout, name, passphrase)
    signing = load_private_key_file(
        layout.signing_key(name), passphrase, KeyKind.SIGNING, f"journalist {name}'s keys"
    )
    if layout.store_key.exists():
        key = open_store_key(layout.store_key, [k.secret for k in keys], name)
        if not layout.envelopes.is_dir():
            fs.make_private_dir(layout.envelopes)
        store = open_store(layout.store_db, key)
    elif layout.store_db.exists():
        raise StationError(
            f"the station database {layout.store_db} exists but its key "
            f"{layout.store_key} is missing: restore it from a backup"
        )
    else:
        recipients = [keys[0].public.key, *latest_keyring_recipients(layout)]
        store = create_store(layout, recipients)
    return Unlocked(name, keys, signing, store, layout)


__all__ = ["Unlocked", "create_store", "latest_keyring_recipients", "unlock"]
