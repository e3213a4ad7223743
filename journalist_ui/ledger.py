"""The evidence ledger: an append-only, hash-chained record of what happened to each item.

docs/format.md section 13.4 defines the records and their hashes. ``record`` appends one
event in the caller's session (so it commits or rolls back with the change it records);
after the commit the caller writes HOME/ledger.head with :func:`write_head`. ``verify``
detects an edited, deleted, inserted or reordered record and a cut-off tail; ``report``
renders the ledger as plain text for a legal team.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from journalist_ui import fs
from journalist_ui.errors import StationError
from journalist_ui.store import Store
from journalist_ui.store.models import LedgerRecord

LABEL = b"postern/v1 ledger\n"
GENESIS = "0" * 64
MAX_HEAD_FILE = 4096
MAX_DETAIL = 4096


def canonical(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def coarse_hour(now: datetime) -> str:
    if now.tzinfo is None:
        raise ValueError("the ledger needs a timezone-aware time")
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H")


def record_hash(
    *,
    prev_hash: str,
    seq: int,
    hour: str,
    event: str,
    journalist: str,
    item_ref: str | None,
    sha256: str | None,
    detail: str,
) -> str:
    body = canonical(
        {
            "detail": detail,
            "event": event,
            "hour": hour,
            "item_ref": item_ref,
            "journalist": journalist,
            "seq": seq,
            "sha256": sha256,
        }
    )
    return hashlib.sha256(
        LABEL + prev_hash.encode("ascii") + b"\n" + body.encode("utf-8")
    ).hexdigest()


def _hash_of(row: LedgerRecord) -> str:
    return record_hash(
        prev_hash=row.prev_hash,
        seq=row.seq,
        hour=row.hour,
        event=row.event,
        journalist=row.journalist,
        item_ref=row.item_ref,
        sha256=row.sha256,
        detail=row.detail,
    )


def record(
    session: Session,
    *,
    event: str,
    journalist: str,
    item_ref: str | None,
    sha256: str | None,
    detail: Mapping[str, str | int],
    now: datetime,
) -> LedgerRecord:
    """Append one event to the ledger, in the caller's transaction."""
    last = session.execute(
        select(LedgerRecord.seq, LedgerRecord.hash).order_by(LedgerRecord.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (1, GENESIS) if last is None else (last[0] + 1, last[1])
    row = LedgerRecord(
        **_record_fields(
            seq=seq, prev_hash=prev_hash, event=event, journalist=journalist,
            item_ref=item_ref, sha256=sha256, detail=detail, now=now,
        )
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row


def _record_fields(
    *,
    seq: int,
    prev_hash: str,
    event: str,
    journalist: str,
    item_ref: str | None,
    sha256: str | None,
    detail: Mapping[str, str | int],
    now: datetime,
) -> dict[str, object]:
    """The columns of the record that follows ``prev_hash`` in the chain, its hash included."""
    text = _detail_text(detail)
    hour = coarse_hour(now)
    digest = record_hash(
        prev_hash=prev_hash, seq=seq, hour=hour, event=event, journalist=journalist,
        item_ref=item_ref, sha256=sha256, detail=text,
    )  # fmt: skip
    return {
        "seq": seq,
        "prev_hash": prev_hash,
        "hour": hour,
        "event": event,
        "journalist": journalist,
        "item_ref": item_ref,
        "sha256": sha256,
        "detail": text,
        "hash": digest,
    }


class Appender:
    """Appends many records in one transaction with one read of the chain's end and one
    multi-row INSERT per :meth:`flush` (an import records thousands of events)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        head = current_head(session)
        self._seq, self._hash = (0, GENESIS) if head is None else (head.seq, head.hash)
        self._pending: list[dict[str, object]] = []

    def add(
        self,
        *,
        event: str,
        journalist: str,
        item_ref: str | None,
        sha256: str | None,
        detail: Mapping[str, str | int],
        now: datetime,
    ) -> None:
        seq = self._seq + 1
        fields = _record_fields(
            seq=seq, prev_hash=self._hash, event=event, journalist=journalist,
            item_ref=item_ref, sha256=sha256, detail=detail, now=now,
        )  # fmt: skip
        self._pending.append(fields)
        self._seq, self._hash = seq, str(fields["hash"])

    def flush(self) -> None:
        if self._pending:
            self._session.execute(insert(LedgerRecord), self._pending)
            self._pending = []


def _detail_text(detail: Mapping[str, str | int]) -> str:
    for key, value in detail.items():
        if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, str | int):
            raise TypeError("ledger details are strings and integers")
    text = canonical(dict(detail))
    if len(text) > MAX_DETAIL:
        raise ValueError(f"ledger details are at most {MAX_DETAIL} characters")
    return text


# -- the head file ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str


def current_head(session: Session) -> Head | None:
    last = session.execute(
        select(LedgerRecord.seq, LedgerRecord.hash).order_by(LedgerRecord.seq.desc()).limit(1)
    ).first()
    return None if last is None else Head(last[0], last[1])


def write_head(session: Session, head_file: Path) -> None:
    """Replace HOME/ledger.head with the newest record's seq and hash (after a commit)."""
    head = current_head(session)
    if head is not None:
        content = canonical({"hash": head.hash, "seq": head.seq}) + "\n"
        fs.atomic_write(head_file, content.encode("ascii"))


def update_head(store: Store, head_file: Path) -> None:
    """write_head in a transaction of its own, after the event's transaction committed."""
    with store.session() as session:
        write_head(session, head_file)


def read_head(head_file: Path) -> Head | None:
    try:
        with head_file.open("rb") as handle:
            data = handle.read(MAX_HEAD_FILE + 1)
    except FileNotFoundError:
        return None
    try:
        obj = json.loads(data.decode("ascii"))
        seq, hash_ = obj["seq"], obj["hash"]
        if set(obj) != {"seq", "hash"} or isinstance(seq, bool) or not isinstance(seq, int):
            raise ValueError
        if not isinstance(hash_, str) or len(hash_) != 64 or seq < 1:
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise StationError(f"{head_file} is damaged: not a ledger head") from None
    return Head(seq, hash_)


# -- verification ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerReport:
    ok: bool
    count: int
    first_bad_seq: int | None
    problem: str | None
    #: A remark that is not a failure (the head behind the ledger after a crash).
    note: str | None = None


def verify(session: Session, head_file: Path) -> LedgerReport:
    """Walk the whole chain and compare its end with the head file."""
    expected_prev = GENESIS
    count = 0
    last: LedgerRecord | None = None
    rows = session.execute(select(LedgerRecord).order_by(LedgerRecord.seq)).scalars()
    for row in rows:
        count += 1
        if row.seq != count:
            return LedgerReport(
                False, count, count, f"record {count} is missing (the next one is {row.seq})"
            )
        if row.prev_hash != expected_prev:
            return LedgerReport(
                False, count, row.seq,
                f"record {row.seq} does not follow record {row.seq - 1} (deleted, inserted "
                "or reordered records)",
            )  # fmt: skip
        if _hash_of(row) != row.hash:
            return LedgerReport(
                False, count, row.seq, f"record {row.seq} was changed after it was written"
            )
        expected_prev = row.hash
        last = row
    head = read_head(head_file)
    if head is None:
        if last is None:
            return LedgerReport(True, 0, None, None)
        return LedgerReport(
            False, count, None, f"{head_file.name} is missing but the ledger has records"
        )
    if last is None or head.seq > last.seq:
        have = 0 if last is None else last.seq
        return LedgerReport(
            False, count, have + 1,
            f"records {have + 1} to {head.seq} are missing: the ledger's tail was cut off",
        )  # fmt: skip
    at_head = session.scalar(select(LedgerRecord.hash).where(LedgerRecord.seq == head.seq))
    if at_head != head.hash:
        return LedgerReport(
            False, count, head.seq,
            f"record {head.seq} is not the one {head_file.name} names: the ledger was rewritten",
        )  # fmt: skip
    note = None
    if head.seq < last.seq:
        note = (
            f"{head_file.name} names record {head.seq} of {last.seq}: the station stopped "
            "before updating it; the next event updates it"
        )
    return LedgerReport(True, count, None, None, note)


# -- the report ------------------------------------------------------------------------------


def report(session: Session) -> str:
    """A plain-text rendering of the whole ledger, for a legal team."""
    count = session.scalar(select(func.count()).select_from(LedgerRecord)) or 0
    lines = [
        "Postern evidence ledger",
        "=======================",
        "",
        f"Records: {count}. Times are UTC, to the hour. Each record's hash covers the previous",
        "record's hash, so no record can be changed, removed or moved without breaking the",
        "chain (docs/format.md section 13.4 gives the exact rule; `journalist ledger verify`",
        "checks it). SHA-256 is of the original content as the source sent it (for imports:",
        "of the encrypted envelope as received).",
        "",
    ]
    rows = session.execute(select(LedgerRecord).order_by(LedgerRecord.seq)).scalars()
    for row in rows:
        lines.append(f"#{row.seq}  {row.hour}:00Z  {row.event}  by {row.journalist}")
        if row.item_ref is not None:
            lines.append(f"    item:    {row.item_ref}")
        if row.sha256 is not None:
            lines.append(f"    sha256:  {row.sha256}")
        detail = json.loads(row.detail)
        for key in sorted(detail):
            lines.append(f"    {key}: {_printable(str(detail[key]))}")
        lines.append(f"    hash:    {row.hash}")
        lines.append("")
    return "\n".join(lines)


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


__all__ = [
    "GENESIS",
    "Appender",
    "Head",
    "LedgerReport",
    "coarse_hour",
    "current_head",
    "read_head",
    "record",
    "record_hash",
    "report",
    "update_head",
    "verify",
    "write_head",
]
