"""Journalists on the station: adding one, revoking one, rotating one's encryption key.

Each action issues a new keyring (:mod:`journalist_ui.keys.keyring`) and, on a station with
an encrypted store, re-seals the store key to the journalists who remain
(:mod:`journalist_ui.keys.storekey`). A revoked journalist's keys move to
``HOME/keys/.revoked/<name>-<date>/`` and a rotated key to ``HOME/keys/<name>/retired/``,
kept to read old material until ``journalist keys destroy-retired``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from common.files import fsync_dir
from crypto import FormatError, KeyKind, PrivateKey
from journalist_ui import fs
from journalist_ui.errors import StationError
from journalist_ui.keys.keyfiles import active_recipients, journalist_what, seal_key
from journalist_ui.keys.keyring import Issued, issue_keyring
from journalist_ui.keys.record import (
    day,
    finish_interrupted_revocations,
    load_record,
    write_record,
)
from journalist_ui.keys.root import load_root
from journalist_ui.keys.storekey import check_opens_store_key, reseal_store_key, store_opener
from journalist_ui.passphrase import check_new
from journalist_ui.station import (
    DEFAULT_MEMLIMIT,
    Layout,
    PassphraseSource,
    check_journalist_name,
    load_encryption_keys,
)

#: A keyring has at most this many recipients.
MAX_JOURNALISTS = 32


@dataclass(frozen=True)
class JournalistResult:
    issued: Issued
    journalist: str
    encryption_fingerprint: str | None = None
    signing_fingerprint: str | None = None
    store_key_resealed: bool = False
    moved_to: Path | None = None


def add_journalist(
    home: Path,
    name: str,
    ask: PassphraseSource,
    ask_new: PassphraseSource,
    *,
    now: datetime,
    label: str | None = None,
    acting: str | None = None,
    memlimit: int = DEFAULT_MEMLIMIT,
) -> JournalistResult:
    """Give a new journalist their own encryption and signing keys and passphrase."""
    layout = Layout(home)
    record = load_record(home)
    check_journalist_name(name)
    label = name if label is None else label
    if name in record.journalists:
        raise StationError(f"journalist {name!r} already has keys on this station")
    if layout.journalist_keys(name).exists():
        raise StationError(
            f"{layout.journalist_keys(name)} exists but {name} is not in station.json: an "
            "earlier add-journalist was interrupted; move that directory away and try again"
        )
    if len(record.journalists) >= MAX_JOURNALISTS:
        raise StationError(
            f"a keyring has at most {MAX_JOURNALISTS} recipients: revoke a journalist first"
        )
    try:
        encryption = PrivateKey.generate(KeyKind.ENCRYPTION, label)
        signing = PrivateKey.generate(KeyKind.SIGNING, label)
    except FormatError as exc:
        raise StationError(f"invalid label {label!r}: {exc}") from None
    root = load_root(layout, ask)
    opener = store_opener(layout, ask, acting, record)
    passphrase = check_new(ask_new(journalist_what(name)))

    staging = Path(tempfile.mkdtemp(prefix=f".new-{name}-", dir=layout.keys))
    try:
        fs.create_private_file(
            staging / "encryption.key", seal_key(encryption, passphrase, memlimit)
        )
        fs.create_private_file(staging / "signing.key", seal_key(signing, passphrase, memlimit))
        os.rename(staging, layout.journalist_keys(name))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_dir(layout.keys)
    record = replace(record, journalists=(*record.journalists, name))
    issued, record = issue_keyring(layout, record, root, now)
    write_record(layout, record)
    resealed = reseal_store_key(layout, opener, active_recipients(layout, record.journalists))
    return JournalistResult(
        issued,
        name,
        encryption.public.fingerprint,
        signing.public.fingerprint,
        store_key_resealed=resealed is not None,
    )


def revoke_journalist(
    home: Path,
    name: str,
    ask: PassphraseSource,
    *,
    now: datetime,
    acting: str | None = None,
) -> JournalistResult:
    """Take a journalist out of the keyring; keep their keys aside for old material."""
    layout = Layout(home)
    record = load_record(home)
    if name not in record.journalists:
        raise StationError(f"no active journalist {name!r} on this station")
    if len(record.journalists) == 1:
        raise StationError(f"{name} is the station's only journalist: add another one first")
    if acting == name:
        raise StationError("a journalist cannot re-seal the store for others while being revoked")
    root = load_root(layout, ask)
    opener = store_opener(layout, ask, acting, record)

    if not layout.revoked_keys.exists():
        fs.make_private_dir(layout.revoked_keys)
    base = f"{name}-{day(now)}"
    taken = {r["keys"] for r in record.revoked}
    target = layout.revoked_keys / base
    counter = 1
    while target.exists() or str(target.relative_to(home)) in taken:
        counter += 1
        target = layout.revoked_keys / f"{base}-{counter}"
    entry = {"name": name, "keys": str(target.relative_to(home)), "revoked": day(now)}
    record = replace(
        record,
        journalists=tuple(n for n in record.journalists if n != name),
        revoked=(*record.revoked, entry),
    )
    # The keyring and the record first (neither reads the revoked keys), then the move:
    # after a crash before it, _finish_interrupted_revocations makes it.
    issued, record = issue_keyring(layout, record, root, now)
    write_record(layout, record)
    finish_interrupted_revocations(layout, record)
    resealed = reseal_store_key(layout, opener, active_recipients(layout, record.journalists))
    return JournalistResult(issued, name, store_key_resealed=resealed is not None, moved_to=target)


def rotate_encryption_key(
    home: Path,
    name: str,
    ask: PassphraseSource,
    *,
    now: datetime,
    memlimit: int = DEFAULT_MEMLIMIT,
) -> JournalistResult:
    """A new encryption key for a journalist; the old one moves to keys/<name>/retired/."""
    layout = Layout(home)
    record = load_record(home)
    if name not in record.journalists:
        raise StationError(f"no active journalist {name!r} on this station")
    passphrase = ask(journalist_what(name))
    old_keys = load_encryption_keys(layout, name, passphrase)
    current = old_keys[0]
    check_opens_store_key(layout, [k.secret for k in old_keys], name)
    root = load_root(layout, ask)
    new = PrivateKey.generate(KeyKind.ENCRYPTION, current.label)

    retired_dir = layout.retired_keys(name)
    if not retired_dir.exists():
        fs.make_private_dir(retired_dir)
    retired_path = layout.retired_encryption_key(name, current.key_id.hex())
    os.link(layout.encryption_key(name), retired_path)
    fsync_dir(retired_dir)
    fs.atomic_write(layout.encryption_key(name), seal_key(new, passphrase, memlimit))
    issued, record = issue_keyring(layout, record, root, now)
    write_record(layout, record)
    resealed = reseal_store_key(
        layout, [k.secret for k in old_keys], active_recipients(layout, record.journalists)
    )
    return JournalistResult(
        issued,
        name,
        encryption_fingerprint=new.public.fingerprint,
        store_key_resealed=resealed is not None,
    )
