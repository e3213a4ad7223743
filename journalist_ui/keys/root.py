"""The team root key: loading it, and rotating it (format section 4.3).

A rotation writes the new key beside ``root.key`` as ``root.key.next``, then the rotation
chain (the commit point), then gives the new key ``root.key``'s name. :func:`load_root`
finishes a rotation that stopped between the last two steps, and forgets one that stopped
before the chain was written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from common.files import fsync_dir
from crypto import KeyKind, PrivateKey, RootRotation, rotate_root
from journalist_ui import fs
from journalist_ui.errors import StationError
from journalist_ui.keys.keyfiles import ROOT_WHAT, peek_key_file, seal_key
from journalist_ui.keys.keyring import Issued, issue_keyring, load_rotations
from journalist_ui.keys.record import load_record, write_record
from journalist_ui.passphrase import check_new
from journalist_ui.station import (
    DEFAULT_MEMLIMIT,
    ROOT_LABEL,
    Layout,
    PassphraseSource,
    load_private_key_file,
)

#: The most root rotations one keyring carries.
MAX_ROTATIONS = 16


def _next_root_path(layout: Layout) -> Path:
    """Where rotate-root writes the new root key before the chain names it."""
    return layout.keys / "root.key.next"


def _finish_interrupted_rotation(layout: Layout, chain: Sequence[RootRotation]) -> None:
    """If a rotation stopped after writing the chain, give the new key root.key's name."""
    upcoming = _next_root_path(layout)
    if not chain or peek_key_file(layout.root_key).key == chain[-1].new_root:
        if upcoming.exists():  # written by a rotation that stopped before its chain: unused
            fs.shred(upcoming)
            fsync_dir(layout.keys)
        return
    if upcoming.exists() and peek_key_file(upcoming).key == chain[-1].new_root:
        os.replace(upcoming, layout.root_key)
        fsync_dir(layout.keys)
        return
    raise StationError(
        f"{layout.root_key} is not the root the rotation chain {layout.rotations} ends at, "
        f"and the new root key is not in {upcoming}: restore the station from a backup "
        f"(the previous roots are in {layout.retired_roots})"
    )


def load_root(layout: Layout, ask: PassphraseSource) -> PrivateKey:
    """The current team root key, asked for by ROOT_WHAT; finishes an interrupted rotation."""
    _finish_interrupted_rotation(layout, load_rotations(layout))
    return load_private_key_file(layout.root_key, ask(ROOT_WHAT), KeyKind.ROOT, ROOT_WHAT)


@dataclass(frozen=True)
class RootRotationResult:
    issued: Issued
    old_fingerprint: str
    new_fingerprint: str
    chain_length: int


def rotate_team_root(
    home: Path,
    ask: PassphraseSource,
    ask_new: PassphraseSource,
    *,
    now: datetime,
    memlimit: int = DEFAULT_MEMLIMIT,
) -> RootRotationResult:
    """A new team root, vouched for by the old one (format section 4.3)."""
    layout = Layout(home)
    record = load_record(home)
    old = load_root(layout, ask)
    chain = load_rotations(layout)
    if len(chain) >= MAX_ROTATIONS:
        raise StationError(f"a keyring carries at most {MAX_ROTATIONS} root rotations")
    passphrase = check_new(ask_new("the new team root key"))
    new = PrivateKey.generate(KeyKind.ROOT, ROOT_LABEL)
    rotation = rotate_root(old, new, now)
    chain.append(rotation)

    if not layout.retired_roots.exists():
        fs.make_private_dir(layout.retired_roots)
    retired = layout.retired_roots / f"root-{old.key_id.hex()}.key"
    if not retired.exists():
        os.link(layout.root_key, retired)
        fsync_dir(layout.retired_roots)
    # The new key is written beside root.key, then the chain (the commit point), then the new
    # key takes root.key's name. After a crash between the last two, load_root finishes the
    # rename; before the chain is written, the unused root.key.next is simply replaced.
    upcoming = _next_root_path(layout)
    fs.atomic_write(upcoming, seal_key(new, passphrase, memlimit))
    fs.atomic_write(
        layout.rotations,
        (json.dumps([r.to_json() for r in chain], indent=2) + "\n").encode("utf-8"),
    )
    os.replace(upcoming, layout.root_key)
    fsync_dir(layout.keys)
    issued, record = issue_keyring(layout, record, new, now, chain)
    write_record(layout, record)
    return RootRotationResult(issued, old.public.fingerprint, new.public.fingerprint, len(chain))
