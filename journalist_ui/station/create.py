"""Creating a station home: the team root key, the first journalist's keys, the first
signed keyring, the store and the station record.

Key files and issued keyrings are created with O_EXCL and never overwritten; files that a
later operation replaces (``station.json``, the outbox) are written atomically. A home whose
creation fails is removed again (or emptied, when it was an empty directory before).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from crypto import (
    FormatError,
    KeyEntry,
    KeyKind,
    Manifest,
    PrivateKey,
    dump_private_key,
    dump_public_key,
    sign_keyring,
)
from crypto import keys as key_format
from journalist_ui import fs
from journalist_ui.errors import StationError
from journalist_ui.passphrase import check_new
from journalist_ui.station.key_files import PassphraseSource
from journalist_ui.station.layout import Layout, check_journalist_name
from journalist_ui.station.record import StationRecord
from journalist_ui.store import open_store
from journalist_ui.store.keyfile import create_store_key

ARGON2_OPSLIMIT = 3
DEFAULT_MEMLIMIT = 256 * 1024 * 1024
MIN_MEMLIMIT = key_format.MIN_MEMLIMIT
# What a key file may ask for (docs/format.md section 2.4): the station never writes a file
# that it, or another station, would refuse to open.
MAX_MEMLIMIT = key_format.MAX_MEMLIMIT

ROOT_LABEL = "Postern team root"


def check_memlimit(memlimit: int) -> int:
    if not MIN_MEMLIMIT <= memlimit <= MAX_MEMLIMIT or memlimit % 1024:
        raise StationError(
            f"the Argon2 memory limit must be a multiple of 1024 from {MIN_MEMLIMIT} (64 MiB) "
            f"to {MAX_MEMLIMIT} ({MAX_MEMLIMIT >> 30} GiB) bytes, got {memlimit}"
        )
    return memlimit


@dataclass(frozen=True)
class InitResult:
    layout: Layout
    journalist: str
    root_fingerprint: str
    keyring_serial: int
    #: Every file written, with what it is, in the order written.
    files: tuple[tuple[Path, str], ...]


def init_station(
    home: Path,
    journalist: str,
    passphrase: PassphraseSource,
    *,
    now: datetime,
    label: str | None = None,
    memlimit: int = DEFAULT_MEMLIMIT,
) -> InitResult:
    """Create a station home with a team root key and the keys of its first journalist.

    ``home`` must not exist or be an empty directory. ``passphrase`` is asked once, after
    every other check, for the new passphrase of all the keys (at least 12 characters).
    ``label`` names the journalist's keys in the keyring (default: the journalist's name).
    ``now`` is the keyring's issue time (timezone-aware).
    """
    check_journalist_name(journalist)
    check_memlimit(memlimit)
    label = journalist if label is None else label
    layout = Layout(home)
    _check_new_home(home)
    try:
        root = PrivateKey.generate(KeyKind.ROOT, ROOT_LABEL)
        encryption = PrivateKey.generate(KeyKind.ENCRYPTION, label)
        signing = PrivateKey.generate(KeyKind.SIGNING, label)
    except FormatError as exc:
        raise StationError(f"invalid label {label!r}: {exc}") from None
    new_passphrase = check_new(passphrase(f"the team root key and journalist {journalist}'s keys"))

    serial = 1
    manifest = Manifest(
        serial=serial,
        issued=now,
        root=root.public.key,
        recipients=(KeyEntry(encryption.public.key, label, journalist),),
        signing_keys=(KeyEntry(signing.public.key, label, journalist),),
    )
    signed_keyring = sign_keyring(manifest, root)

    def seal(key: PrivateKey) -> bytes:
        return dump_private_key(key, new_passphrase, opslimit=ARGON2_OPSLIMIT, memlimit=memlimit)

    private_files = [
        (layout.root_key, seal(root), "team root private key (passphrase-protected)"),
        (
            layout.encryption_key(journalist),
            seal(encryption),
            f"{journalist}'s encryption private key (passphrase-protected)",
        ),
        (
            layout.signing_key(journalist),
            seal(signing),
            f"{journalist}'s signing private key (passphrase-protected)",
        ),
    ]
    record = StationRecord((journalist,), serial)

    written: list[tuple[Path, str]] = []
    with _new_home(home) as made:
        for directory in (
            layout.keys,
            layout.journalist_keys(journalist),
            layout.keyrings,
            layout.outbox,
        ):
            fs.make_private_dir(directory)
            made.append(directory)
        for path, content, what in private_files:
            fs.create_private_file(path, content)
            made.append(path)
            written.append((path, what))
        fs.create_private_file(layout.keyring(serial), signed_keyring)
        made.append(layout.keyring(serial))
        written.append((layout.keyring(serial), f"signed keyring, serial {serial} (kept)"))
        for path, content, what in (
            (layout.outbox_keyring, signed_keyring, "signed keyring to carry to the server"),
            (layout.outbox_root, dump_public_key(root.public), "team root public key"),
        ):
            made.append(path)
            fs.atomic_write(path, content)
            written.append((path, what))
        for directory in (layout.store, layout.envelopes):
            fs.make_private_dir(directory)
            made.append(directory)
        made.append(layout.store_key)
        store_key = create_store_key(layout.store_key, [encryption.public.key])
        written.append((layout.store_key, "the store's database key, sealed to your key"))
        made.append(layout.store_db)
        open_store(layout.store_db, store_key).close()
        written.append((layout.store_db, "the encrypted station database"))
        # Last: a home without station.json is not a station, whatever else it holds.
        made.append(layout.station_file)
        fs.atomic_write(layout.station_file, record.to_bytes())
        written.append((layout.station_file, "station record"))
    return InitResult(layout, journalist, root.public.fingerprint, serial, tuple(written))


def _check_new_home(home: Path) -> None:
    if home.is_symlink() or (home.exists() and not home.is_dir()):
        raise StationError(f"{home} exists and is not a directory")
    if home.is_dir() and any(home.iterdir()):
        raise StationError(f"{home} is not empty: a station home must be a new directory")


@contextlib.contextmanager
def _new_home(home: Path) -> Iterator[list[Path]]:
    """Create (or take over an empty) home; on failure remove everything made in it."""
    _check_new_home(home)
    created_home = not home.exists()
    if created_home:
        home.parent.mkdir(parents=True, exist_ok=True)
        fs.make_private_dir(home)
    else:
        os.chmod(home, fs.DIR_MODE)
    made: list[Path] = []
    try:
        yield made
    except BaseException:
        if created_home:
            shutil.rmtree(home, ignore_errors=True)
        else:
            for path in reversed(made):
                with contextlib.suppress(OSError):
                    if path.is_dir():
                        path.rmdir()
                    else:
                        path.unlink()
        raise
