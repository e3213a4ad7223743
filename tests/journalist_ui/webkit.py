"""Helpers for the station UI and triage tests: sources and items put straight into the store.

Items are real envelopes sealed to the unlocked journalist's key and stored under
HOME/store/envelopes/ the way an import stores them, so that decrypting on demand works.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast

from flask import Flask
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from crypto import FormatError, Kind, seal_bytes
from journalist_ui.store import index_items
from journalist_ui.store.models import Item, Source
from journalist_ui.store.terms import Analyzer
from journalist_ui.unlock import Unlocked
from journalist_ui.web import UISettings, create_app
from journalist_ui.web.context import STATE_KEY, StationState
from tests.support.cli import PASSPHRASE

#: One analyzer for the test session (building one loads a dictionary).
ANALYZER = Analyzer()

DAY = date(2026, 11, 20)


def add_source(
    session: Session,
    designation: str,
    *,
    day: date = DAY,
    status: str = "new",
    starred: bool = False,
    assigned_to: str | None = None,
) -> Source:
    source = Source(
        source_id=secrets.token_hex(16),
        reply_public_key=secrets.token_bytes(32),
        designation=designation,
        status=status,
        starred=starred,
        assigned_to=assigned_to,
        first_day=day,
        last_day=day,
        deleted=False,
    )
    session.add(source)
    session.flush()
    return source


_KINDS = {"message": Kind.MESSAGE, "file": Kind.FILE, "reply": Kind.REPLY}


def add_item(
    unlocked: Unlocked,
    session: Session,
    source: Source,
    kind: str,
    content: bytes,
    *,
    filename: str | None = None,
    media_type: str | None = None,
    day: date = DAY,
) -> Item:
    """A sealed envelope in the store, its row, and (for text) its search index entry."""
    public_key = unlocked.encryption_keys[0].public
    public = public_key.key
    try:
        envelope = seal_bytes(content, [public], _KINDS[kind], filename or "", media_type or "")
    except FormatError:  # a hostile name the format itself forbids: only the row carries it
        envelope = seal_bytes(content, [public], _KINDS[kind])
    name = secrets.token_hex(16)
    path = unlocked.layout.envelopes / name
    path.write_bytes(envelope)
    path.chmod(0o600)
    direction = "out" if kind == "reply" else "in"
    item = Item(
        source_pk=source.id,
        server_id=None if direction == "out" else str(secrets.randbelow(10**12)),
        direction=direction,
        kind=kind,
        day=day,
        envelope_name=name,
        envelope_size=len(envelope),
        envelope_sha256=hashlib.sha256(envelope).hexdigest(),
        filename=filename,
        media_type=media_type,
        plaintext_size=len(content),
        plaintext_sha256=hashlib.sha256(content).hexdigest(),
        key_ids=public_key.key_id.hex(),
        author=unlocked.journalist if direction == "out" else None,
        decryptable=True,
    )
    session.add(item)
    session.flush()
    # As an import indexes it: a message's text, a file's name.
    body = None if kind == "file" else content.decode("utf-8")
    index_items(session, [(item.id, body, filename)], ANALYZER)
    source.last_day = max(source.last_day, day)
    source.first_day = min(source.first_day, day)
    return item


# -- the web app under Flask's test client -------------------------------------------------------

BASE_URL = "http://127.0.0.1:8090"
_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')


class Clock:
    """A clock the test moves forward."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class WebClient:
    """Flask's test client on the loopback base URL, carrying the page's CSRF token."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client = app.test_client()
        self.csrf = ""

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        response = self.client.get(path, base_url=BASE_URL, **kwargs)
        self._remember(response)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> TestResponse:
        form = {"csrf_token": self.csrf, **(data or {})}
        response = self.client.post(path, data=form, base_url=BASE_URL, **kwargs)
        self._remember(response)
        return response

    def _remember(self, response: TestResponse) -> None:
        response.get_data()  # read the whole body (streamed ones too), then close it
        response.close()
        if response.mimetype == "text/html":
            page = response.get_data(as_text=True)
            # Every form of every page carries the session's token (the test client posts
            # the remembered one, so a form rendered without it would go unnoticed).
            tokens = set(_CSRF_RE.findall(page))
            assert "" not in tokens, "a form without the CSRF token"
            assert len(tokens) <= 1, tokens
            match = _CSRF_RE.search(page)
            if match:
                self.csrf = match.group(1)

    def unlock(self, journalist: str = "alice", passphrase: str = PASSPHRASE) -> TestResponse:
        self.get("/unlock")
        response = self.post("/unlock", {"journalist": journalist, "passphrase": passphrase})
        if response.status_code == 302:
            self.get("/")  # the unlocked session's CSRF token
        return response

    def state(self) -> StationState:
        return cast(StationState, self.app.extensions[STATE_KEY])

    def unlocked(self) -> Unlocked:
        sessions = self.state().sessions
        token = self.client.get_cookie("postern_station", domain="127.0.0.1")
        assert token is not None
        found = sessions.get(token.value).unlocked
        assert found is not None
        return cast(Unlocked, found)


def make_app(home: Path, clock: Clock, **settings: Any) -> Flask:
    return create_app(UISettings(home=home, port=8090, **settings), clock)
