"""Helpers for the source interface tests: a clock, the app with its data directory, and a
browser (Flask's test client) that makes codenames and logs in."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import TestResponse, encode_multipart

from dropbox import db
from dropbox.app import create_app
from dropbox.web.context import EXTENSION_KEY, Services
from tests.support.database import server_url, settings_for

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
#: The boundary of every multipart body the tests post through the test client.
FORM_BOUNDARY = "----PosternTestFormBoundary7d1f"
_CODENAME = re.compile(r'<p class="codename" id="codename">([a-z -]+)</p>')


@dataclass
class FakeClock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Site:
    """An app with its clock and data directory, and a browser (test client) for it."""

    app: Flask
    clock: FakeClock
    data_dir: Path
    client: FlaskClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = self.app.test_client()

    @property
    def services(self) -> Services:
        services: Services = self.app.extensions[EXTENSION_KEY]
        return services

    def new_browser(self) -> FlaskClient:
        return self.app.test_client()


def make_site(data_dir: Path, **settings: int | bool) -> Site:
    clock = FakeClock()
    app = create_app(settings_for(data_dir, **settings), clock=clock)
    return Site(app, clock, data_dir)


def csrf_token(response: TestResponse) -> str:
    match = _CSRF.search(response.get_data(as_text=True))
    assert match is not None, "no CSRF token in the page"
    return match.group(1)


def token_for(client: FlaskClient, path: str = "/login") -> str:
    return csrf_token(client.get(path))


FormValue = str | tuple[BinaryIO, str]


def post_form(
    client: FlaskClient, path: str, fields: Mapping[str, FormValue | list[FormValue]]
) -> TestResponse:
    """POST ``fields`` as ``multipart/form-data``, as a browser's form does.

    A value is a string or a ``(file object, filename)`` pair, or a list of them. The body
    is encoded here with a fixed boundary because the test client's own boundaries are 61 to
    72 characters long (``WerkzeugFormPart_`` plus two float reprs): RFC 2046 allows 70, the
    plain form refuses longer ones as malformed, and about one post in 400 failed with 400.
    """
    values: MultiDict[str, str | FileStorage] = MultiDict()
    for name, given in fields.items():
        for value in given if isinstance(given, list) else [given]:
            if isinstance(value, tuple):
                stream, filename = value
                values.add(name, FileStorage(stream, filename, name, "application/octet-stream"))
            else:
                values.add(name, value)
    boundary, body = encode_multipart(values, boundary=FORM_BOUNDARY)
    return client.post(path, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def codename_in(response: TestResponse) -> str:
    match = _CODENAME.search(response.get_data(as_text=True))
    assert match is not None, "no codename in the page"
    return match.group(1)


def generate(client: FlaskClient, *, acknowledge: bool = True) -> str:
    """Get a new codename in this browser (one Argon2id derivation); return it."""
    token = token_for(client, "/generate")
    response = client.post("/generate", data={"csrf_token": token})
    assert response.status_code == 200, response.status_code
    codename = codename_in(response)
    if acknowledge:
        done = client.post("/acknowledge", data={"csrf_token": csrf_token(response)})
        assert done.status_code == 303
    return codename


def login(client: FlaskClient, codename: str) -> TestResponse:
    token = token_for(client, "/login")
    return client.post("/login", data={"csrf_token": token, "codename": codename})


def logout(client: FlaskClient) -> TestResponse:
    token = token_for(client, "/replies")
    return client.post("/logout", data={"csrf_token": token})


def migrated_database(directory: Path) -> sessionmaker[Session]:
    """A database of the newest schema for ``directory`` (SQLite in it, or a fresh PostgreSQL
    database on the PostgreSQL pass), for the stores of server state (sessions, budgets,
    nonces) tested without an app."""
    directory.mkdir(parents=True, exist_ok=True)
    engine = db.make_engine(server_url(directory))
    db.upgrade(engine)
    return db.make_sessionmaker(engine)
