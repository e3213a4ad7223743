"""Listing every key of the station, with its fingerprint, role, owner and file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from crypto import KeyKind, PublicKey
from journalist_ui.keys.keyfiles import peek_key_file, retired_files
from journalist_ui.keys.record import client_keys, load_record
from journalist_ui.station import Layout


@dataclass(frozen=True)
class KeyRow:
    role: str
    owner: str
    label: str
    fingerprint: str
    key_id: str
    where: str


def list_keys(home: Path) -> list[KeyRow]:
    """Every key of the station, with fingerprints in the grouped form of section 2.2."""
    layout = Layout(home)
    record = load_record(home)
    rows: list[KeyRow] = []

    def add(role: str, owner: str, pub: PublicKey, where: str) -> None:
        rows.append(KeyRow(role, owner, pub.label, pub.fingerprint, pub.key_id.hex(), where))

    def rel(path: Path) -> str:
        return str(path.relative_to(home))

    add("team root", "team", peek_key_file(layout.root_key), rel(layout.root_key))
    if layout.retired_roots.is_dir():
        for path in sorted(layout.retired_roots.glob("root-*.key")):
            add("retired team root", "team", peek_key_file(path), rel(path))
    for name in record.journalists:
        add("encryption", name, peek_key_file(layout.encryption_key(name)),
            rel(layout.encryption_key(name)))  # fmt: skip
        add("signing", name, peek_key_file(layout.signing_key(name)),
            rel(layout.signing_key(name)))  # fmt: skip
        for path in retired_files(layout, name):
            add("retired encryption", name, peek_key_file(path), rel(path))
    for entry in record.revoked:
        directory = home / entry["keys"]
        if not directory.is_dir():
            continue
        for path in sorted(directory.rglob("*.key")):
            pub = peek_key_file(path)
            add(f"revoked {pub.kind.value}", entry["name"], pub, rel(path))
    for client in record.transfer_clients:
        kinds = (KeyKind.TRANSFER, KeyKind.ONION_AUTH)
        for kind, key in zip(kinds, client_keys(client), strict=True):
            pub = PublicKey(kind, key, client["label"])
            add(f"transfer client {kind.value}", "transfer machine", pub, "(public half only)")
    return rows
