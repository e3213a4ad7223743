"""Issuing the team's signed keyring: the manifest of the station as it is, signed by the root.

The manifest is built from the key files (their public halves are readable without a
passphrase) and from ``station.json``: ``recipients`` are the active journalists' current
encryption keys, ``signing_keys`` their signing keys, ``retired`` every key that was a
recipient of an earlier keyring and is no longer one (carried over from the previous keyring,
so it stays complete after retired private keys are destroyed), ``transfer_clients`` the
clients in ``station.json``. Each keyring is written to ``HOME/keyrings/keyring-<serial>.json``
and ``HOME/outbox/keyring.json``, with the root rotation chain kept in
``HOME/keyrings/rotations.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from crypto import (
    CryptoError,
    FormatError,
    KeyEntry,
    Manifest,
    PrivateKey,
    RootRotation,
    TransferClient,
    dump_public_key,
    parse_json,
    parse_manifest,
    parse_rotation,
    sign_keyring,
)
from crypto.keyring import verify_rotation_chain
from journalist_ui import fs
from journalist_ui.errors import StationError
from journalist_ui.keys.keyfiles import peek_key_file, retired_files
from journalist_ui.keys.record import client_keys
from journalist_ui.station import Layout, StationRecord

#: rotations.json holds at most MAX_ROTATIONS statements of about 1 KB each.
MAX_ROTATIONS_FILE = 64 * 1024


def load_rotations(layout: Layout) -> list[RootRotation]:
    """The root rotation chain kept on the station (empty before the first rotation)."""
    if not layout.rotations.exists():
        return []
    data = layout.rotations.read_bytes()
    try:
        raw = parse_json(data, max_bytes=MAX_ROTATIONS_FILE, what=str(layout.rotations))
        if not isinstance(raw, list):
            raise ValueError("not a JSON list")
        chain = [parse_rotation(item) for item in raw]
        verify_rotation_chain(chain)
    except (ValueError, UnicodeDecodeError, CryptoError) as exc:
        raise StationError(f"{layout.rotations} is damaged: {exc}") from None
    return chain


def _previous_manifest(layout: Layout, record: StationRecord) -> Manifest | None:
    path = layout.keyring(record.keyring_serial)
    try:
        obj = json.loads(path.read_bytes().decode("utf-8"))
        return parse_manifest(obj["manifest"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, CryptoError) as exc:
        raise StationError(f"the last keyring issued, {path}, cannot be read: {exc}") from None


def build_manifest(
    layout: Layout, record: StationRecord, serial: int, root: bytes, now: datetime
) -> Manifest:
    """The manifest for the station as it is now (see the module docstring)."""
    recipients, signing = [], []
    for name in record.journalists:
        enc = peek_key_file(layout.encryption_key(name))
        sig = peek_key_file(layout.signing_key(name))
        recipients.append(KeyEntry(enc.key, enc.label, name))
        signing.append(KeyEntry(sig.key, sig.label, name))
    active = {e.public_key for e in recipients}
    retired: dict[bytes, KeyEntry] = {}
    previous = _previous_manifest(layout, record)
    if previous is not None:
        for entry in previous.retired + previous.recipients:
            if entry.public_key not in active:
                retired[entry.public_key] = entry
    # Retired key files still on the station are listed too (for example after a crash).
    for name in record.journalists:
        for path in retired_files(layout, name):
            pub = peek_key_file(path)
            if pub.key not in active:
                retired.setdefault(pub.key, KeyEntry(pub.key, pub.label, name))
    clients = tuple(TransferClient(*client_keys(c), c["label"]) for c in record.transfer_clients)
    try:
        return Manifest(
            serial=serial,
            issued=now,
            root=root,
            recipients=tuple(recipients),
            retired=tuple(retired.values()),
            signing_keys=tuple(signing),
            transfer_clients=clients,
        )
    except FormatError as exc:
        raise StationError(f"cannot issue a keyring: {exc}") from None


def next_serial(layout: Layout, record: StationRecord) -> int:
    """One more than any keyring issued (station.json or a keyring file left by a crash)."""
    highest = record.keyring_serial
    if layout.keyrings.is_dir():
        for path in layout.keyrings.glob("keyring-*.json"):
            digits = path.stem.removeprefix("keyring-")
            if digits.isascii() and digits.isdigit():
                highest = max(highest, int(digits))
    return highest + 1


@dataclass(frozen=True)
class Issued:
    """A keyring issued by an action."""

    serial: int
    keyring: Path
    outbox: Path
    root_fingerprint: str
    manifest: Manifest


def issue_keyring(
    layout: Layout,
    record: StationRecord,
    root: PrivateKey,
    now: datetime,
    rotations: Sequence[RootRotation] | None = None,
) -> tuple[Issued, StationRecord]:
    """Sign and write the next keyring; return it and the record to write afterwards."""
    serial = next_serial(layout, record)
    manifest = build_manifest(layout, record, serial, root.public.key, now)
    chain = load_rotations(layout) if rotations is None else list(rotations)
    try:
        signed = sign_keyring(manifest, root, chain)
    except CryptoError as exc:
        raise StationError(f"cannot sign the keyring: {exc}") from None
    path = layout.keyring(serial)
    fs.create_private_file(path, signed)
    fs.atomic_write(layout.outbox_keyring, signed)
    fs.atomic_write(layout.outbox_root, dump_public_key(root.public))
    issued = Issued(serial, path, layout.outbox_keyring, root.public.fingerprint, manifest)
    return issued, replace(record, keyring_serial=serial)
