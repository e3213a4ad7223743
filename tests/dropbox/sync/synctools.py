"""Helpers for the sync API tests: the sync app under a fake clock, a request signer written
from docs/format.md 9.1, sources and items made directly through the use cases, and a snapshot
of everything stored."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from crypto import Kind, PrivateKey, SourceSecrets, seal_bytes
from crypto.bundle import Deletion, OutboundManifest, write_outbound_bundle
from dropbox import db
from dropbox.db import Item, ItemKind
from dropbox.filetimes import DISCARDED_PREFIX
from dropbox.sources import create_source
from dropbox.storage import ReclaimableBlobStore
from dropbox.submissions import add_submission
from dropbox.sync.app import create_sync_app
from dropbox.sync.context import SYNC_EXTENSION_KEY, SyncServices
from tests.dropbox.sitetools import START, FakeClock
from tests.support.database import server_url, settings_for
from tests.support.team import Team

TODAY = START.date()
REQUEST_LABEL = b"postern/v1 sync request\n"


# -- signing requests (docs/format.md section 9.1, written out again here) ---------------------


def signature_headers(
    key: PrivateKey,
    method: str,
    target: str,
    body: bytes = b"",
    *,
    timestamp: int,
    nonce: str | None = None,
) -> dict[str, str]:
    nonce = nonce or os.urandom(16).hex()
    signed = (
        REQUEST_LABEL
        + f"{method}\n{target}\n{hashlib.sha256(body).hexdigest()}\n{timestamp}\n{nonce}".encode()
    )
    return {
        "X-Postern-Client": key.key_id.hex(),
        "X-Postern-Timestamp": str(timestamp),
        "X-Postern-Nonce": nonce,
        "X-Postern-Signature": base64.b64encode(key.sign(signed)).decode("ascii"),
    }


@dataclass
class SyncSite:
    """The sync app, its clock and data directory, and a signing client for it."""

    app: Flask
    clock: FakeClock
    data_dir: Path
    team: Team
    client: FlaskClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = self.app.test_client()

    @property
    def services(self) -> SyncServices:
        services: SyncServices = self.app.extensions[SYNC_EXTENSION_KEY]
        return services

    @property
    def blobs(self) -> ReclaimableBlobStore:
        return self.services.blobs

    def now(self) -> int:
        return int(self.clock.now.timestamp())

    def request(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        *,
        key: PrivateKey | None = None,
        headers: Mapping[str, str] | None = None,
        nonce: str | None = None,
        timestamp: int | None = None,
    ) -> TestResponse:
        """A request signed by the transfer client (or ``key``), sent as signed."""
        signed = signature_headers(
            key or self.team.transfer,
            method,
            target,
            body,
            timestamp=self.now() if timestamp is None else timestamp,
            nonce=nonce,
        )
        return self.client.open(
            target, method=method, data=body, headers={**signed, **(headers or {})}, buffered=True
        )

    def get(self, target: str, **kwargs: Any) -> TestResponse:
        return self.request("GET", target, **kwargs)

    def post(self, target: str, body: bytes, **kwargs: Any) -> TestResponse:
        return self.request("POST", target, body, **kwargs)

    # -- content ---------------------------------------------------------------------------

    def add_source(self) -> SourceSecrets:
        """A source made from random secrets (no Argon2id: the API never derives them)."""
        secrets = SourceSecrets(
            lookup_id=os.urandom(32), reply_private=os.urandom(32), source_id=os.urandom(16)
        )
        with self.services.db() as session:
            create_source(session, secrets, TODAY)
        return secrets

    def add_submission(
        self, source: SourceSecrets, contents: Sequence[bytes], *, day: date = TODAY
    ) -> list[int]:
        """One submission of envelopes sealed to the team; returns the item ids."""
        entries = []
        for index, content in enumerate(contents):
            kind = ItemKind.MESSAGE if index == 0 else ItemKind.FILE
            envelope = seal_bytes(
                content,
                [self.team.journalist.public.key],
                Kind.MESSAGE if kind is ItemKind.MESSAGE else Kind.FILE,
                "" if kind is ItemKind.MESSAGE else f"file{index}.bin",
            )
            with self.blobs.writer() as writer:
                writer.write(envelope)
                blob_id = writer.commit()
            entries.append((kind, blob_id, len(envelope)))
        with self.services.db() as session:
            row_id = session.scalar(
                sa.select(db.Source.id).where(db.Source.source_id == source.source_id)
            )
            assert row_id is not None
            submission = add_submission(session, row_id, entries, day)
            return list(
                session.scalars(
                    sa.select(Item.id)
                    .where(Item.submission_id == submission.id)
                    .order_by(Item.position)
                )
            )

    def reply_envelope(self, source: SourceSecrets, text: str) -> bytes:
        """A reply as the station seals it: to the source's reply key and the team."""
        return seal_bytes(
            text.encode("utf-8"),
            [source.reply_public, self.team.journalist.public.key],
            Kind.REPLY,
        )

    def bundle(
        self,
        *,
        replies: Sequence[tuple[bytes, bytes]] = (),
        deletions: Sequence[Deletion] = (),
        acknowledged: Sequence[str] = (),
        signer: PrivateKey | None = None,
        bundle_id: bytes | None = None,
    ) -> tuple[bytes, OutboundManifest]:
        out = io.BytesIO()
        manifest = write_outbound_bundle(
            out,
            signing_key=signer or self.team.signer,
            made=TODAY,
            replies=replies,
            deletions=deletions,
            acknowledged=acknowledged,
            bundle_id=bundle_id,
        )
        return out.getvalue(), manifest

    def push(self, bundle: bytes, **kwargs: Any) -> TestResponse:
        return self.post("/v1/outbound", bundle, **kwargs)


def make_sync_site(data_dir: Path, team: Team, **settings: int | bool) -> SyncSite:
    clock = FakeClock()
    app = create_sync_app(settings_for(data_dir, **settings), clock=clock)
    return SyncSite(app, clock, data_dir, team)


# -- what is stored --------------------------------------------------------------------------


#: The server's own bookkeeping of requests (sessions, budgets, the nonces every signed request
#: uses up): not the data a refused request must leave as it was.
REQUEST_STATE_TABLES = frozenset({"source_sessions", "derivation_counts", "sync_nonces"})


def snapshot(data_dir: Path) -> dict[str, Any]:
    """Every row of every table, and every file in the blob store with its SHA-256 (but the
    discarded ones: emptied, they wait for the daily blur to be unlinked)."""
    engine = db.make_engine(server_url(data_dir))
    try:
        with engine.connect() as connection:
            tables = {
                table.name: sorted(tuple(row) for row in connection.execute(sa.select(table)))
                for table in db.Base.metadata.sorted_tables
                if table.name not in REQUEST_STATE_TABLES
            }
    finally:
        engine.dispose()
    blobs_dir = data_dir / "blobs"
    files = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(blobs_dir.iterdir())
        if not path.name.startswith(DISCARDED_PREFIX) or path.stat().st_size
    }
    return {"tables": tables, "blobs": files}


def table_rows(data_dir: Path, table: str) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = snapshot(data_dir)["tables"][table]
    return rows
