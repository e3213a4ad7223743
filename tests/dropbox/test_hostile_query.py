"""A query string that is not UTF-8: both apps answer 400, never a 500.

WSGI hands the target over as latin-1 text, so the byte 0xFF on the wire is the character
U+00FF in ``QUERY_STRING``; werkzeug decodes the query string as UTF-8 when ``args`` is read.
gunicorn refuses such targets today, so these tests set the environment directly.
"""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from crypto.request_signing import signed_message
from tests.dropbox.sitetools import make_site
from tests.dropbox.sync.synctools import SyncSite, make_sync_site
from tests.support.server import make_data_dir
from tests.support.team import Team

RAW_QUERIES = ["lang=\xff", "after=\xff\xfe", "lang=%ff&x=\xc3", "\xff"]


@pytest.fixture(scope="module")
def team() -> Team:
    return Team()


@pytest.mark.parametrize("query", RAW_QUERIES)
@pytest.mark.parametrize("path", ["/", "/login", "/generate", "/no/such/page"])
def test_the_source_interface_answers_400_with_its_error_page(team, tmp_path, path, query):
    site = make_site(make_data_dir(tmp_path / "data", team))
    response = site.client.get(
        path, environ_overrides={"QUERY_STRING": query, "RAW_URI": f"{path}?{query}"}
    )
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "Bad request" in page
    assert "Traceback" not in page
    # The page is still in a language the source reads: the default one.
    assert '<html lang="en"' in page


def _signed_raw(site: SyncSite, method: str, target: str) -> dict[str, str]:
    """Signature headers over a target with bytes that are not ASCII (latin-1, as in WSGI)."""
    key = site.team.transfer
    timestamp, nonce = str(site.now()), os.urandom(16).hex()
    message = signed_message(method, target, hashlib.sha256(b"").digest(), timestamp, nonce)
    return {
        "X-Postern-Client": key.key_id.hex(),
        "X-Postern-Timestamp": timestamp,
        "X-Postern-Nonce": nonce,
        "X-Postern-Signature": base64.b64encode(key.sign(message)).decode("ascii"),
    }


@pytest.mark.parametrize("query", RAW_QUERIES)
@pytest.mark.parametrize("path", ["/v1/items", "/v1/status"])
def test_a_signed_sync_request_answers_400_with_its_json_error(team, tmp_path, path, query):
    site = make_sync_site(make_data_dir(tmp_path / "data", team), team)
    target = f"{path}?{query}"
    response = site.client.get(
        path,
        headers=_signed_raw(site, "GET", target),
        environ_overrides={"QUERY_STRING": query, "RAW_URI": target},
    )
    if path == "/v1/status":  # reads no query: a signed request is answered
        assert response.status_code == 200
        return
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "bad_request",
        "message": "The address's query string is not UTF-8.",
    }


def test_an_unsigned_sync_request_with_such_a_query_is_still_a_401(team, tmp_path):
    site = make_sync_site(make_data_dir(tmp_path / "data", team), team)
    target = "/v1/items?after=\xff"
    response = site.client.get(
        "/v1/items", environ_overrides={"QUERY_STRING": "after=\xff", "RAW_URI": target}
    )
    assert response.status_code == 401
