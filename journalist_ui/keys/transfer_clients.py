"""Transfer clients: the machines that carry bundles between the server and the station.

Each has its own Ed25519 request-signing key and X25519 onion client-authorization key; the
private key files go to the transfer machine, the public halves into ``station.json`` and the
keyring, from which the server learns whom to accept.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from crypto import FormatError, KeyKind, PrivateKey
from journalist_ui import fs
from journalist_ui.errors import StationError
from journalist_ui.keys.keyfiles import seal_key
from journalist_ui.keys.keyring import Issued, issue_keyring
from journalist_ui.keys.record import client_entry, load_record, write_record
from journalist_ui.keys.root import load_root
from journalist_ui.passphrase import check_new
from journalist_ui.station import DEFAULT_MEMLIMIT, Layout, PassphraseSource

MAX_TRANSFER_CLIENTS = 16


@dataclass(frozen=True)
class TransferClientResult:
    issued: Issued
    label: str
    files: tuple[tuple[Path, str], ...]
    signing_fingerprint: str
    onion_auth_fingerprint: str


ONION_PLACEHOLDER = "API_ONION_ADDRESS"


def tor_auth_private_line(onion_auth: PrivateKey, onion: str = ONION_PLACEHOLDER) -> str:
    """A line for a file in tor's ClientOnionAuthDir (``<name>.auth_private``).

    Tor's format: ``<56-character onion address without .onion>:descriptor:x25519:<key>``
    where the key is the base32 of the X25519 private key, without padding. The station does
    not know the server's API onion address: the operator replaces the placeholder.
    """
    scalar = bytearray(onion_auth.secret)
    scalar[0] &= 248
    scalar[31] &= 127
    scalar[31] |= 64  # clamped as X25519 uses it: the same public key
    encoded = base64.b32encode(bytes(scalar)).decode("ascii").rstrip("=")
    return f"{onion}:descriptor:x25519:{encoded}"


def add_transfer_client(
    home: Path,
    label: str,
    out_dir: Path,
    ask: PassphraseSource,
    client_passphrase: str | None,
    *,
    now: datetime,
    memlimit: int = DEFAULT_MEMLIMIT,
) -> TransferClientResult:
    """Keys for one transfer machine: its own Ed25519 request key and X25519 onion key.

    The private key files go to out_dir (new or empty) for the transfer machine, sealed
    under ``client_passphrase`` or unprotected (``None``: for unattended use, protected by
    file permissions); the public halves go into a new keyring.
    """
    layout = Layout(home)
    record = load_record(home)
    if any(c["label"] == label for c in record.transfer_clients):
        raise StationError(f"a transfer client named {label!r} already exists")
    if len(record.transfer_clients) >= MAX_TRANSFER_CLIENTS:
        raise StationError(f"a keyring lists at most {MAX_TRANSFER_CLIENTS} transfer clients")
    try:
        signing = PrivateKey.generate(KeyKind.TRANSFER, label)
        onion = PrivateKey.generate(KeyKind.ONION_AUTH, label)
    except FormatError as exc:
        raise StationError(f"invalid label {label!r}: {exc}") from None
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise StationError(f"{out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise StationError(f"{out_dir} is not empty: give a new directory for the client's keys")
    if client_passphrase is not None:
        check_new(client_passphrase)
    root = load_root(layout, ask)

    if not out_dir.exists():
        fs.make_private_dir(out_dir)
    files = (
        (out_dir / "transfer.key", seal_key(signing, client_passphrase, memlimit),
         "request-signing key: dropbox-transfer --key"),
        (out_dir / "onion-auth.key", seal_key(onion, client_passphrase, memlimit),
         "onion client-authorization key (Postern key file)"),
        (out_dir / "postern-api.auth_private", (tor_auth_private_line(onion) + "\n").encode(),
         f"for tor's ClientOnionAuthDir: replace {ONION_PLACEHOLDER} first"),
    )  # fmt: skip
    for path, content, _ in files:
        fs.create_private_file(path, content)
    entry = client_entry(label, signing.public.key, onion.public.key, now)
    record = replace(record, transfer_clients=(*record.transfer_clients, entry))
    issued, record = issue_keyring(layout, record, root, now)
    write_record(layout, record)
    return TransferClientResult(
        issued,
        label,
        tuple((p, what) for p, _, what in files),
        signing.public.fingerprint,
        onion.public.fingerprint,
    )


def revoke_transfer_client(
    home: Path, label: str, ask: PassphraseSource, *, now: datetime
) -> Issued:
    """Take a transfer client out of the keyring: the server stops accepting it."""
    layout = Layout(home)
    record = load_record(home)
    remaining = tuple(c for c in record.transfer_clients if c["label"] != label)
    if len(remaining) == len(record.transfer_clients):
        known = ", ".join(c["label"] for c in record.transfer_clients) or "none"
        raise StationError(f"no transfer client named {label!r} (this station has: {known})")
    root = load_root(layout, ask)
    issued, record = issue_keyring(layout, replace(record, transfer_clients=remaining), root, now)
    write_record(layout, record)
    return issued
