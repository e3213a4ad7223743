"""``journalist keys rewrap``: re-sealing the stored envelopes to the current journalists.

On a station with a store, the envelopes are those of the database's items, and each item's
row follows its new file (format section 13.5): a batch's new files are written under new
names and listed in ``HOME/store/rewrap.journal``, the rows change in one transaction, then
the old files go. :func:`finish_interrupted_rewrap` removes what a rewrap that stopped left
behind, whichever side of the commit it stopped on. On a station without a store, the
envelope files are re-sealed in place (:mod:`journalist_ui.keys.envelope_files`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from secrets import token_hex

from sqlalchemy import select, update

import crypto
from common.files import fsync_dir, sha256_file
from crypto import CryptoError, DecryptionError, FormatError, KeyKind
from journalist_ui import fs, ledger
from journalist_ui.errors import StationError
from journalist_ui.keys.envelope_files import RewrapResult, rewrap_envelope_files
from journalist_ui.keys.keyfiles import (
    active_recipients,
    held_encryption_key_ids,
    journalist_what,
    peek_key_file,
)
from journalist_ui.keys.record import load_record
from journalist_ui.station import (
    Layout,
    PassphraseSource,
    StationRecord,
    load_encryption_keys,
    load_private_key_file,
)
from journalist_ui.store import Store, open_store
from journalist_ui.store.keyfile import open_store_key
from journalist_ui.store.models import Item, Source


def rewrap_store(
    home: Path,
    journalists: Sequence[str],
    ask: PassphraseSource,
    revoked: Sequence[str] = (),
    *,
    now: datetime | None = None,
) -> tuple[list[RewrapResult], list[tuple[Path, str]]]:
    """``journalist keys rewrap``: HOME/store/envelopes/* to the current journalists' keys.

    The named journalists' keys (current and retired) open the envelopes, and the kept keys
    of the named revoked journalists (asked as "journalist NAME's revoked keys"), for
    material that was sealed to them alone. On a station with a store, the envelopes are
    those of the database's items (a reply stays sealed to its source's reply key too), and
    each item's row follows its new file in the same run (format section 13.5); the first
    named journalist records the ``rewrap`` events in the ledger.
    """
    layout = Layout(home)
    record = load_record(home)
    if not journalists and not revoked:
        raise StationError("name at least one journalist whose keys open the stored envelopes")
    keys: list[bytes] = []
    for name in journalists:
        if name not in record.journalists:
            raise StationError(f"no active journalist {name!r} on this station")
        keys += [k.secret for k in load_encryption_keys(layout, name, ask(journalist_what(name)))]
    for name in revoked:
        keys += _revoked_encryption_keys(layout, record, name, ask)
    if layout.store_key.exists():
        actor = journalists[0] if journalists else f"{revoked[0]} (revoked)"
        return rewrap_store_with_keys(home, keys, actor, now=now)
    recipients = active_recipients(layout, record.journalists)
    directory = layout.envelopes
    paths = (
        sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
        if directory.is_dir()
        else []
    )
    return rewrap_envelope_files(paths, keys, recipients)


def rewrap_store_with_keys(
    home: Path,
    keys: Sequence[bytes],
    actor: str,
    *,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[RewrapResult], list[tuple[Path, str]]]:
    """Rewrap a station with a store with secret ``keys`` already open (the station UI's
    unlocked journalist ``actor``); ``progress(items done, items)`` after each batch."""
    layout = Layout(home)
    record = load_record(home)
    recipients = active_recipients(layout, record.journalists)
    held = held_encryption_key_ids(home)
    when = datetime.now(UTC) if now is None else now
    with opened_store(layout, keys, actor) as store:
        done, failed = _rewrap_items(layout, store, keys, recipients, held, actor, when, progress)
    more, failed_key = rewrap_envelope_files([layout.store_key], keys, recipients)
    return done + more, failed + failed_key


def _revoked_encryption_keys(
    layout: Layout, record: StationRecord, name: str, ask: PassphraseSource
) -> list[bytes]:
    directories = [layout.home / r["keys"] for r in record.revoked if r["name"] == name]
    paths = [
        p
        for d in directories
        if d.is_dir()
        for p in sorted(d.rglob("*.key"))
        if peek_key_file(p).kind is KeyKind.ENCRYPTION
    ]
    if not paths:
        raise StationError(f"no kept keys of a revoked journalist {name!r} on this station")
    what = f"journalist {name}'s revoked keys"
    passphrase = ask(what)
    return [load_private_key_file(p, passphrase, KeyKind.ENCRYPTION, what).secret for p in paths]


# -- rewrapping the store's items (format section 13.5) --------------------------------------

#: Why an envelope sealed to none of the station's keys is not rewrapped.
UNDECRYPTABLE = "sealed to no key of this station (imported as not decryptable)"
#: Items rewrapped per database transaction (and per journal file).
REWRAP_BATCH = 64
MAX_JOURNAL_FILE = 1024 * 1024


def _journal_path(layout: Layout) -> Path:
    return layout.store / REWRAP_JOURNAL


REWRAP_JOURNAL = "rewrap.journal"


@contextlib.contextmanager
def opened_store(layout: Layout, secrets: Sequence[bytes], who: str) -> Iterator[Store]:
    """The station database, opened with the database key that secrets open."""
    db_key = open_store_key(layout.store_key, secrets, who)
    store = open_store(layout.store_db, db_key)
    try:
        finish_interrupted_rewrap(layout, store)
        yield store
    finally:
        store.close()


def finish_interrupted_rewrap(layout: Layout, store: Store) -> None:
    """Remove the files a rewrap that stopped left behind (format section 13.5).

    The journal lists (item id, old name, new name) of one batch. The row names the file
    that is kept: if it names the new file, the old one goes; otherwise the new one goes.
    """
    path = _journal_path(layout)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_JOURNAL_FILE + 1)
    except FileNotFoundError:
        return
    try:
        entries = json.loads(data.decode("utf-8"))["items"]
        triples = [(int(i), _envelope_name(old), _envelope_name(new)) for i, old, new in entries]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise StationError(f"{path} is damaged: remove it only after checking the store") from None
    with store.session() as session:
        found = session.execute(
            select(Item.id, Item.envelope_name).where(Item.id.in_([t[0] for t in triples]))
        ).all()
        names: dict[int, str] = dict(found)
    for item_id, old, new in triples:
        kept = names.get(item_id)
        leftover = old if kept == new else new
        if leftover != kept:
            with contextlib.suppress(FileNotFoundError):
                (layout.envelopes / leftover).unlink()
    fsync_dir(layout.envelopes)
    path.unlink()
    fsync_dir(layout.store)


def _envelope_name(text: object) -> str:
    hexdigits = "0123456789abcdef"
    if not isinstance(text, str) or len(text) != 32 or not all(c in hexdigits for c in text):
        raise ValueError("not an envelope name")
    return text


@dataclass(frozen=True)
class _Row:
    id: int
    name: str
    sha256: str
    plaintext_sha256: str | None
    reply_key: bytes | None


def _rewrap_items(
    layout: Layout,
    store: Store,
    keys: Sequence[bytes],
    team: Sequence[bytes],
    held: set[bytes],
    actor: str,
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[RewrapResult], list[tuple[Path, str]]]:
    with store.session() as session:
        rows = [
            _Row(i, name, sha, plain, reply if direction == "out" else None)
            for i, name, sha, plain, direction, reply in session.execute(
                select(
                    Item.id, Item.envelope_name, Item.envelope_sha256, Item.plaintext_sha256,
                    Item.direction, Source.reply_public_key,
                )
                .join(Source, Source.id == Item.source_pk)
                .order_by(Item.id)
            ).all()
        ]  # fmt: skip
    known = {row.name for row in rows}
    done: list[RewrapResult] = []
    failed: list[tuple[Path, str]] = []
    if layout.envelopes.is_dir():
        for path in sorted(layout.envelopes.iterdir()):
            if path.is_file() and not path.name.startswith(".") and path.name not in known:
                failed.append((path, "no item of the station database names it: left as it is"))
    for start in range(0, len(rows), REWRAP_BATCH):
        batch_done, batch_failed = _rewrap_batch(
            layout, store, rows[start : start + REWRAP_BATCH], keys, team, held, actor, now
        )
        done += batch_done
        failed += batch_failed
        if progress is not None:
            progress(min(start + REWRAP_BATCH, len(rows)), len(rows))
    return done, failed


def _rewrap_batch(
    layout: Layout,
    store: Store,
    rows: Sequence[_Row],
    keys: Sequence[bytes],
    team: Sequence[bytes],
    held: set[bytes],
    actor: str,
    now: datetime,
) -> tuple[list[RewrapResult], list[tuple[Path, str]]]:
    """One batch: new files under new names, the rows in one transaction, old files removed."""
    done: list[RewrapResult] = []
    failed: list[tuple[Path, str]] = []
    todo: list[tuple[_Row, str, list[bytes]]] = []
    for row in rows:
        path = layout.envelopes / row.name
        recipients = list(dict.fromkeys([row.reply_key, *team] if row.reply_key else team))
        try:
            with path.open("rb") as src:
                header = crypto.read_header(src)
        except (FormatError, CryptoError) as exc:
            failed.append((path, f"not a valid envelope: {exc}"))
            continue
        except OSError as exc:
            failed.append((path, f"cannot read it: {exc.strerror or exc}"))
            continue
        if crypto.sealed_to(header, recipients):
            ids = tuple(sorted(k.hex() for k in header.key_ids))
            done.append(RewrapResult(path, row.sha256, ids, False, row.id))
            continue
        if not header.key_ids & held:
            failed.append((path, f"{UNDECRYPTABLE}: left as it is"))
            continue
        todo.append((row, token_hex(16), recipients))
    if not todo:
        return done, failed
    journal = {"items": [[row.id, row.name, new] for row, new, _ in todo]}
    fs.atomic_write(_journal_path(layout), (json.dumps(journal) + "\n").encode("ascii"))
    written: list[tuple[_Row, str, str, int, tuple[str, ...]]] = []
    for row, new, recipients in todo:
        old_path, new_path = layout.envelopes / row.name, layout.envelopes / new
        try:
            with old_path.open("rb") as src:
                fd = os.open(new_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, fs.FILE_MODE)
                try:
                    with os.fdopen(fd, "wb") as dst:
                        header = crypto.rewrap(src, dst, keys, recipients)
                        dst.flush()
                        os.fsync(dst.fileno())
                except BaseException:
                    with contextlib.suppress(OSError):
                        new_path.unlink()
                    raise
        except DecryptionError:
            failed.append((old_path, "none of the keys given opens it, or it is damaged"))
            continue
        except (FormatError, CryptoError) as exc:
            failed.append((old_path, f"not a valid envelope: {exc}"))
            continue
        except OSError as exc:
            failed.append((old_path, f"cannot rewrite it: {exc.strerror or exc}"))
            continue
        ids = tuple(sorted(k.hex() for k in header.key_ids))
        written.append((row, new, sha256_file(new_path), new_path.stat().st_size, ids))
    fsync_dir(layout.envelopes)
    gone: list[tuple[_Row, str]] = []
    with store.session() as session:
        appender = ledger.Appender(session)
        for row, new, sha, size, ids in written:
            changed = session.execute(
                update(Item)
                .where(Item.id == row.id, Item.envelope_name == row.name)
                .values(
                    envelope_name=new, envelope_sha256=sha, envelope_size=size,
                    key_ids=",".join(ids),
                )
            )  # fmt: skip
            # Deleted meanwhile: its new file is not needed.
            if changed.rowcount != 1:  # type: ignore[attr-defined]
                gone.append((row, new))
                continue
            appender.add(
                event="rewrap", journalist=actor, item_ref=str(row.id),
                sha256=row.plaintext_sha256,
                detail={"envelope_before": row.sha256, "envelope_after": sha,
                        "key_ids": ",".join(ids)},
                now=now,
            )  # fmt: skip
        appender.flush()
    ledger.update_head(store, layout.ledger_head)
    for row, new in gone:
        (layout.envelopes / new).unlink()
        failed.append((layout.envelopes / row.name, "its item was deleted meanwhile"))
    for row, new, sha, _, ids in written:
        if (row, new) in gone:
            continue
        with contextlib.suppress(FileNotFoundError):
            (layout.envelopes / row.name).unlink()
        done.append(RewrapResult(layout.envelopes / new, sha, ids, True, row.id))
    fsync_dir(layout.envelopes)
    _journal_path(layout).unlink()
    fsync_dir(layout.store)
    return done, failed
