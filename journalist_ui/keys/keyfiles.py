"""The private key files on the station: their public halves, their names, which ones exist.

A private key file keeps its public half in clear (format section 2.4), so the keyring, the
listing and the checks before destroying keys read it without a passphrase. Passphrases are
asked for by what they open: :data:`ROOT_WHAT` and :func:`journalist_what`.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterable
from pathlib import Path

from crypto import FormatError, KeyKind, PrivateKey, PublicKey, dump_private_key
from journalist_ui.errors import StationError
from journalist_ui.keys.record import load_record
from journalist_ui.station import ARGON2_OPSLIMIT, Layout

ROOT_WHAT = "the team root key"


def journalist_what(name: str) -> str:
    return f"journalist {name}'s keys"


def peek_key_file(path: Path) -> PublicKey:
    """The public half of a private key file (section 2.4 keeps it in clear)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StationError(f"key file {path} is missing") from None
    fields: dict[str, str] = {}
    lines = data.decode("utf-8", errors="replace").split("\n")
    if not lines or lines[0] != "postern private key v1":
        raise StationError(f"{path} is not a Postern private key file")
    for line in lines[1:]:
        name, sep, value = line.partition(": ")
        if sep and name in ("kind", "label", "public-key"):
            fields[name] = value
    try:
        kind = KeyKind(fields["kind"])
        key = base64.b64decode(fields["public-key"], validate=True)
        return PublicKey(kind, key, fields["label"])
    except (KeyError, ValueError, FormatError):
        raise StationError(f"key file {path} is damaged: cannot read its public key") from None


def seal_key(key: PrivateKey, passphrase: str | None, memlimit: int) -> bytes:
    """A new key file's bytes: sealed under ``passphrase``, or unprotected when it is None."""
    if passphrase is None:
        return dump_private_key(key, None)
    return dump_private_key(key, passphrase, opslimit=ARGON2_OPSLIMIT, memlimit=memlimit)


def active_recipients(layout: Layout, journalists: Iterable[str]) -> list[bytes]:
    """The current encryption public keys of these journalists."""
    return [peek_key_file(layout.encryption_key(n)).key for n in journalists]


def retired_files(layout: Layout, name: str) -> list[Path]:
    """A journalist's rotated encryption key files, in keys/<name>/retired/."""
    directory = layout.retired_keys(name)
    return sorted(directory.glob("encryption-*.key")) if directory.is_dir() else []


def retired_key_files(home: Path) -> list[Path]:
    """Every retired or revoked private key file still on the station."""
    layout = Layout(home)
    record = load_record(home)
    found: list[Path] = []
    for name in record.journalists:
        found += retired_files(layout, name)
    if layout.revoked_keys.is_dir():
        found += sorted(p for p in layout.revoked_keys.rglob("*") if p.is_file())
    if layout.retired_roots.is_dir():
        found += sorted(p for p in layout.retired_roots.iterdir() if p.is_file())
    return found


def held_encryption_key_ids(home: Path) -> set[bytes]:
    """The key ids of every encryption private key file on the station (any state)."""
    layout = Layout(home)
    record = load_record(home)
    paths = [layout.encryption_key(n) for n in record.journalists] + retired_key_files(home)
    held = set()
    for path in paths:
        with contextlib.suppress(StationError):
            public = peek_key_file(path)
            if public.kind is KeyKind.ENCRYPTION:
                held.add(public.key_id)
    return held
