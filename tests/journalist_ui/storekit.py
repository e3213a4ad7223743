"""Helpers for the station store tests: a station home and an unlocked journalist."""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from crypto import KeyKind, Kind, PrivateKey, dump_public_key, seal_bytes
from crypto.bundle import (
    InboundItem,
    InboundManifest,
    sign_inbound_manifest,
    write_inbound_bundle,
)
from journalist_ui import station
from journalist_ui.unlock import Unlocked, unlock
from tests.support.cli import MEMLIMIT, PASSPHRASE
from tests.support.homes import station_home

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def make_home(path: Path, journalist: str = "alice") -> Path:
    """A station home of ``journalist`` at ``path``, every key under PASSPHRASE: a copy of one
    made once per test session (tests/support/homes.py), so every such home holds the same keys."""

    def build(home: Path) -> None:
        station.init_station(home, journalist, lambda _what: PASSPHRASE, now=NOW, memlimit=MEMLIMIT)

    return station_home(f"storekit-{journalist}", build, path)


def open_home(home: Path, journalist: str = "alice") -> Unlocked:
    return unlock(home, journalist, PASSPHRASE)


# -- bundles ---------------------------------------------------------------------------------


@dataclass
class FakeSource:
    """A source as the server knows it: its id and reply key pair."""

    source_id: bytes = field(default_factory=lambda: os.urandom(16))
    reply: PrivateKey = field(
        default_factory=lambda: PrivateKey.generate(KeyKind.ENCRYPTION, "reply")
    )


@dataclass
class Entry:
    id: str
    source: FakeSource
    kind: str
    envelope: bytes
    day: date = date(2026, 11, 20)

    def item(self) -> InboundItem:
        return InboundItem(
            id=self.id,
            source_id=self.source.source_id,
            reply_public_key=self.source.reply.public.key,
            kind=self.kind,
            size=len(self.envelope),
            sha256=hashlib.sha256(self.envelope).digest(),
            day=self.day,
        )


def server_key() -> PrivateKey:
    return PrivateKey.generate(KeyKind.SERVER, "dropbox server")


def pin(home: Path, key: PrivateKey) -> None:
    path = home.parent / "server.pub"
    path.write_bytes(dump_public_key(key.public))
    station.pin_server_key(home, path)


def recipients(home: Path, journalist: str = "alice") -> list[bytes]:
    """The journalist's encryption public key (read from the outbox keyring's manifest)."""
    from journalist_ui.unlock import latest_keyring_recipients

    return latest_keyring_recipients(station.Layout(home))


def message(home: Path, text: str) -> bytes:
    return seal_bytes(text.encode("utf-8"), recipients(home), Kind.MESSAGE)


def file(
    home: Path, content: bytes, name: str = "report.pdf", media: str = "application/pdf"
) -> bytes:
    return seal_bytes(content, recipients(home), Kind.FILE, name, media)


def write_bundle(
    path: Path,
    key: PrivateKey,
    entries: list[Entry],
    *,
    made: date = date(2026, 11, 21),
    envelopes: list[bytes] | None = None,
    trailing: bytes = b"",
) -> Path:
    manifest = InboundManifest(
        server_key=key.public.key,
        keyring_serial=1,
        made=made,
        items=tuple(entry.item() for entry in entries),
    )
    block = sign_inbound_manifest(manifest, key)
    bodies = [e.envelope for e in entries] if envelopes is None else envelopes
    with path.open("wb") as out:
        write_inbound_bundle(out, block, [io.BytesIO(b) for b in bodies])
        out.write(trailing)
    return path
