"""``dropbox-transfer push``: an outbound bundle made on the station, uploaded as signed.

The bundle (docs/format.md section 11) is checked to be an outbound bundle of a known
version, hashed for the request signature, then streamed from the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from crypto.bundle import INBOUND_MAGIC, OUTBOUND_MAGIC, VERSION, open_bundle_file
from transfer.client import MAX_JSON, PIECE, SyncClient, read_limited
from transfer.errors import TransferError


def push(client: SyncClient, path: Path) -> dict[str, Any]:
    """Upload an outbound bundle, streamed; return the server's JSON summary."""
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
    try:
        summary = json.loads(raw)
    except ValueError:
        raise TransferError("the answer to POST /v1/outbound is not JSON") from None
    if not isinstance(summary, dict):
        raise TransferError("the answer to POST /v1/outbound is not a JSON object")
    return summary
