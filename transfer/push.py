"""``dropbox-transfer push``: an outbound bundle made on the station, uploaded as signed.

The bundle (docs/format.md section 11) is checked to be an outbound bundle of a known
version, hashed for the request signature, then streamed from the file. The server's answer
(docs/format.md section 9.2) is checked and said in words by :func:`push_summary`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crypto.bundle import INBOUND_MAGIC, OUTBOUND_MAGIC, VERSION, open_bundle_file
from transfer.client import MAX_JSON, PIECE, SyncClient, read_limited
from transfer.errors import TransferError


@dataclass(frozen=True)
class PushAnswer:
    """The sync API's answer to ``POST /v1/outbound``, checked; ``raw`` is it as it came."""

    applied: bool
    replies: int
    deletions: int
    acknowledged: int
    #: Acknowledged items the server deleted at once; None from a server that does not say.
    purged: int | None
    raw: dict[str, Any]


def push(client: SyncClient, path: Path) -> PushAnswer:
    """Upload an outbound bundle, streamed; return the server's answer."""
    with open_bundle_file(path) as bundle:
        head = bundle.read(len(OUTBOUND_MAGIC) + 1)
        if head[:8] == INBOUND_MAGIC:
            raise TransferError(
                f"{path} is an inbound bundle (server to station); push takes the outbound "
                "bundle the station made"
            )
        if head[:8] != OUTBOUND_MAGIC:
            raise TransferError(f"{path} is not an outbound bundle")
        if head[8:9] != bytes([VERSION]):
            raise TransferError(f"{path} is an outbound bundle of an unknown version")
        bundle.seek(0)
        hasher = hashlib.sha256()
        while data := bundle.read(PIECE):
            hasher.update(data)
        bundle.seek(0)
        with client.send(
            "POST",
            "/v1/outbound",
            body=bundle,
            body_sha256=hasher.digest(),
            headers={"Content-Type": "application/octet-stream"},
        ) as response:
            raw = read_limited(response, MAX_JSON, "the answer to POST /v1/outbound")
    return parse_push_answer(raw)


def parse_push_answer(raw: bytes) -> PushAnswer:
    """The answer to ``POST /v1/outbound`` (docs/format.md 9.2), checked."""
    try:
        answer = json.loads(raw)
    except ValueError:
        raise TransferError("the answer to POST /v1/outbound is not JSON") from None
    if not isinstance(answer, dict):
        raise TransferError("the answer to POST /v1/outbound is not a JSON object")
    applied = answer.get("applied")
    if not isinstance(applied, bool):
        raise TransferError("the answer to POST /v1/outbound has no applied: true or false")
    counts = {}
    for name in ("replies", "deletions", "acknowledged", "purged"):
        value = answer.get(name)
        if name == "purged" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TransferError(f"the answer to POST /v1/outbound: {name} is not a count")
        counts[name] = value
    return PushAnswer(
        applied=applied,
        replies=counts["replies"],
        deletions=counts["deletions"],
        acknowledged=counts["acknowledged"],
        purged=counts.get("purged"),
        raw=answer,
    )


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def push_summary(path: Path, answer: PushAnswer) -> str:
    """What the push did, in words, for the person at the terminal."""
    if not answer.applied:
        # The server keeps only the ids of applied bundles, never when (docs/format.md 11.2).
        return (
            f"{path}: this bundle was already applied (the server keeps no date of it); "
            "nothing changed."
        )
    done = [
        _count(answer.replies, "reply delivered", "replies delivered"),
        _count(answer.deletions, "deletion", "deletions"),
        _count(answer.acknowledged, "acknowledgement", "acknowledgements"),
    ]
    if answer.purged is not None:
        done.append(_count(answer.purged, "item purged", "items purged"))
    return f"{path}: applied: {', '.join(done)}."
