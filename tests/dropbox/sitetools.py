"""Helpers for the source interface tests: a clock, the app with its data directory, and a
browser (Flask's test client) that makes codenames and logs in."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from dropbox.app import create_app
from dropbox.web.context import EXTENSION_KEY, Services
from tests.support.database import settings_for

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
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
