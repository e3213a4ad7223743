"""Destroying retired and revoked private keys for good (``journalist keys destroy-retired``).

Refused while any stored envelope can be opened only with those keys: rewrap first. On a
station with a store, the destruction is recorded in the evidence ledger before the first
file is overwritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import crypto
from common.files import fsync_dir
from crypto import CryptoError
from journalist_ui import fs, ledger
from journalist_ui.errors import StationError
from journalist_ui.keys.keyfiles import (
    held_encryption_key_ids,
    peek_key_file,
    retired_key_files,
)
from journalist_ui.keys.record import load_record
from journalist_ui.keys.rewrap import opened_store
from journalist_ui.keys.storekey import store_opener
from journalist_ui.station import Layout, PassphraseSource

#: The word a person types to confirm destroy-retired.
DESTROY_CONFIRMATION = "destroy"


def stranded_envelopes(home: Path) -> list[Path]:
    """Stored envelopes that destroying the retired keys would make unreadable.

    That is those sealed to no active journalist's current encryption key but to a retired or
    revoked key still on the station (or that cannot be parsed). An envelope sealed to none of
    the station's keys (imported as not decryptable) loses nothing and is not counted.
    """
    layout = Layout(home)
    record = load_record(home)
    active = {peek_key_file(layout.encryption_key(n)).key_id for n in record.journalists}
    held = held_encryption_key_ids(home)
    candidates = (
        sorted(p for p in layout.envelopes.iterdir() if p.is_file())
        if layout.envelopes.is_dir()
        else []
    )
    if layout.store_key.exists():
        candidates.append(layout.store_key)
    stranded = []
    for path in candidates:
        with path.open("rb") as src:
            try:
                header = crypto.read_header(src)
            except CryptoError:
                stranded.append(path)
                continue
        if not header.key_ids & active and header.key_ids & held:
            stranded.append(path)
    return stranded


def destroy_retired(
    home: Path,
    confirmation: str,
    ask: PassphraseSource,
    *,
    acting: str | None = None,
    now: datetime | None = None,
) -> list[Path]:
    """Destroy retired and revoked private keys (overwrite, sync, unlink).

    Refused unless ``confirmation`` is exactly "destroy", and while any stored envelope is
    sealed to no current journalist (rewrap first). On a station with a store, the acting
    journalist (``acting``, or the only journalist) opens it and a ``key-destroy`` ledger
    event listing the key ids is committed before the first file is overwritten. Returns
    the files destroyed.
    """
    if confirmation != DESTROY_CONFIRMATION:
        raise StationError(f'not confirmed: type "{DESTROY_CONFIRMATION}" to destroy retired keys')
    layout = Layout(home)
    record = load_record(home)
    if not layout.store_key.exists():
        _check_nothing_stranded(home)
        return _destroy_files(layout, retired_key_files(home))
    opener = store_opener(layout, ask, acting, record)
    actor = acting if acting is not None else record.journalists[0]
    with opened_store(layout, opener, actor) as store:
        _check_nothing_stranded(home)
        files = retired_key_files(home)
        if not files:
            return []
        ids = sorted({_key_id_of(path) for path in files})
        when = datetime.now(UTC) if now is None else now
        with store.session() as session:
            for start in range(0, len(ids), KEY_IDS_PER_RECORD):
                part = ids[start : start + KEY_IDS_PER_RECORD]
                ledger.record(
                    session, event="key-destroy", journalist=actor, item_ref=None, sha256=None,
                    detail={"key_ids": ",".join(part), "count": len(part), "files": len(files)},
                    now=when,
                )  # fmt: skip
        ledger.update_head(store, layout.ledger_head)
    return _destroy_files(layout, files)


#: A key-destroy ledger record lists at most this many key ids (its detail stays short).
KEY_IDS_PER_RECORD = 64


def _key_id_of(path: Path) -> str:
    try:
        return peek_key_file(path).key_id.hex()
    except StationError:
        return f"file {path.name}"


def _check_nothing_stranded(home: Path) -> None:
    stranded = stranded_envelopes(home)
    if stranded:
        raise StationError(
            f"{len(stranded)} stored envelope(s) can be opened only with retired keys, for "
            f"example {stranded[0]}: run `journalist keys rewrap` first"
        )


def _destroy_files(layout: Layout, files: Sequence[Path]) -> list[Path]:
    for path in files:
        fs.shred(path)
        fsync_dir(path.parent)
    for directory in (layout.revoked_keys, layout.retired_roots):
        if directory.is_dir():
            for sub in sorted(directory.rglob("*"), reverse=True):
                if sub.is_dir():
                    sub.rmdir()
    record = load_record(layout.home)
    for name in record.journalists:
        retired = layout.retired_keys(name)
        if retired.is_dir() and not any(retired.iterdir()):
            retired.rmdir()
    return list(files)
