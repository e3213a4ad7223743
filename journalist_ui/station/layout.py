"""Where everything is in a station home, and the names journalists may have.

A *station home* is one directory on the air-gapped station. Every directory in it is 0700
and every file 0600:

    HOME/station.json                     the station record (journalist_ui.station.record)
    HOME/keys/root.key                    the team root private key (Ed25519)
    HOME/keys/<name>/encryption.key       journalist <name>'s encryption key (X25519):
                                          the recipient of envelopes
    HOME/keys/<name>/signing.key          journalist <name>'s signing key (Ed25519)
    HOME/keys/<name>/retired/             <name>'s rotated encryption keys
    HOME/keys/.revoked/, .retired-roots/  keys of revoked journalists, replaced root keys
    HOME/keyrings/keyring-<serial>.json   every signed keyring issued (kept, never replaced)
    HOME/keyrings/rotations.json          the root rotation chain
    HOME/outbox/keyring.json              the latest signed keyring  } to carry to
    HOME/outbox/root.pub                  the team root public key   } the server
    HOME/store/key.envelope               the database key, sealed to every journalist
    HOME/store/station.db                 the SQLCipher database (journalist_ui.store)
    HOME/store/envelopes/<name>           imported and written envelopes, as received
    HOME/server.pub                       the pinned server signing key (server pin)
    HOME/ledger.head                      seq and hash of the newest ledger record

(docs/format.md section 13 describes the store.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from journalist_ui.errors import StationError

#: A journalist's name: also the name of the directory of their keys.
JOURNALIST_NAME = re.compile(r"[a-z0-9_-]{1,32}")


def check_journalist_name(name: str) -> str:
    if not JOURNALIST_NAME.fullmatch(name):
        raise StationError(
            f"invalid journalist name {name!r}: use 1 to 32 characters from a-z, 0-9, _ and -"
        )
    return name


@dataclass(frozen=True)
class Layout:
    """Where everything is in a station home."""

    home: Path

    @property
    def station_file(self) -> Path:
        return self.home / "station.json"

    @property
    def keys(self) -> Path:
        return self.home / "keys"

    @property
    def root_key(self) -> Path:
        return self.keys / "root.key"

    def journalist_keys(self, name: str) -> Path:
        return self.keys / check_journalist_name(name)

    def encryption_key(self, name: str) -> Path:
        return self.journalist_keys(name) / "encryption.key"

    def signing_key(self, name: str) -> Path:
        return self.journalist_keys(name) / "signing.key"

    @property
    def keyrings(self) -> Path:
        return self.home / "keyrings"

    def keyring(self, serial: int) -> Path:
        return self.keyrings / f"keyring-{serial}.json"

    @property
    def outbox(self) -> Path:
        return self.home / "outbox"

    @property
    def outbox_keyring(self) -> Path:
        return self.outbox / "keyring.json"

    @property
    def outbox_root(self) -> Path:
        return self.outbox / "root.pub"

    def retired_keys(self, name: str) -> Path:
        """Where a journalist's rotated encryption keys are kept (same passphrase)."""
        return self.journalist_keys(name) / "retired"

    def retired_encryption_key(self, name: str, key_id_hex: str) -> Path:
        return self.retired_keys(name) / f"encryption-{key_id_hex}.key"

    @property
    def revoked_keys(self) -> Path:
        """Key directories of revoked journalists: keys/.revoked/<name>-<date>/."""
        return self.keys / ".revoked"

    @property
    def retired_roots(self) -> Path:
        """Team root keys replaced by `journalist keys rotate-root`."""
        return self.keys / ".retired-roots"

    @property
    def rotations(self) -> Path:
        """The root rotation chain, oldest first (a JSON list of section 4.3 objects)."""
        return self.keyrings / "rotations.json"

    @property
    def store(self) -> Path:
        return self.home / "store"

    @property
    def store_key(self) -> Path:
        """The database key, sealed to every journalist's encryption key (format 13.1)."""
        return self.store / "key.envelope"

    @property
    def store_db(self) -> Path:
        return self.store / "station.db"

    @property
    def envelopes(self) -> Path:
        return self.store / "envelopes"

    @property
    def server_pub(self) -> Path:
        """The pinned server signing public key."""
        return self.home / "server.pub"

    @property
    def ledger_head(self) -> Path:
        return self.home / "ledger.head"
