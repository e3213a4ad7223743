"""The submission paths wired into the app (dropbox/web/api.py), through Flask's test client.

* ``POST /api/submissions``: completed tus uploads become one submission, and every refusal
  answers JSON ``{"error", "message"}`` and stores nothing.
* tus at ``/api/uploads`` through the app: creation needs the session and the
  ``X-Postern-CSRF`` header, later requests the upload's capability (its URL) and nothing
  else, and a missing ``Tus-Resumable`` is 412 before anything else.
* the plain form (``POST /submit``): every refusal is a clear page, never a 500, and nothing
  of it is stored.

Argon2id runs at its real cost (64 MiB) here: each new source costs one derivation.
"""

from __future__ import annotations

import io
import json
import os
import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from crypto import (
    KeyEntry,
    KeyKind,
    Kind,
    Manifest,
    PrivateKey,
    open_bytes,
    seal_bytes,
    sign_keyring,
)
from dropbox.db import Item, Submission
from dropbox.filetimes import DISCARDED_PREFIX as DISCARDED
from dropbox.instance import install_keyring
from tests.dropbox.sitetools import Site, generate, make_site, post_form
from tests.dropbox.sitetools import token_for as page_token
from tests.support.server import make_data_dir
from tests.support.team import ISSUED, Team

OCTETS = "application/offset+octet-stream"
MAX_FILES = 3


@pytest.fixture(scope="module")
def team() -> Team:
    return Team()


@pytest.fixture
def site(team: Team, tmp_path) -> Site:
    return make_site(make_data_dir(tmp_path / "data", team), max_files_per_submission=MAX_FILES)


@dataclass
class Source:
    """A browser whose source is logged in and has acknowledged the codename."""

    client: FlaskClient
    token: str

    def tus(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> TestResponse:
        sent = {"Tus-Resumable": "1.0.0", "X-Postern-CSRF": self.token, **(headers or {})}
        return self.client.open(path, method=method, headers=sent, **kw)

    def create(self, length: int) -> str:
        response = self.tus("POST", "/api/uploads", {"Upload-Length": str(length)})
        assert response.status_code == 201, response.get_data()
        return str(response.headers["Location"])

    def patch(self, path: str, offset: int, data: bytes) -> TestResponse:
        headers = {"Upload-Offset": str(offset), "Content-Type": OCTETS}
        return self.tus("PATCH", path, headers, data=data)

    def upload(self, envelope: bytes) -> str:
        """A completed upload of ``envelope``; its id."""
        path = self.create(len(envelope))
        response = self.patch(path, 0, envelope)
        assert response.status_code == 204, response.get_data()
        return upload_id(path)

    def submit(self, body: object, *, content_type: str = "application/json") -> TestResponse:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.client.post(
            "/api/submissions",
            data=data,
            content_type=content_type,
            headers={"X-Postern-CSRF": self.token},
        )


def new_source(site: Site) -> Source:
    client = site.new_browser()
    generate(client)
    return Source(client, page_token(client, "/submit"))


def sealed(team: Team, content: bytes, kind: Kind = Kind.FILE) -> bytes:
    name, media = ("evidence.bin", "application/octet-stream") if kind is Kind.FILE else ("", "")
    return seal_bytes(content, [team.journalist.public.key], kind, name, media)


def upload_id(path: str) -> str:
    """The id in an upload's URL ``/api/uploads/<id>.<capability>``."""
    return path.rsplit("/", 1)[1].split(".")[0]


def new_key() -> str:
    return secrets.token_urlsafe(16)


def items_of(body: list[tuple[str, str]], key: str | None = None) -> dict[str, object]:
    """A completion request; a new key unless one is given."""
    items = [{"upload": upload, "kind": kind} for upload, kind in body]
    return {"key": key or new_key(), "items": items}


def error_of(response: TestResponse) -> str:
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert isinstance(body, dict)
    assert set(body) == {"error", "message"}
    assert isinstance(body["message"], str)
    assert body["message"]
    return str(body["error"])


@dataclass(frozen=True)
class Stored:
    submissions: int
    items: int
    blobs: tuple[str, ...]
    uploads: tuple[str, ...]


def stored(site: Site) -> Stored:
    instance = site.services.instance()
    with site.services.db() as db:
        counts = db.query(Submission).count(), db.query(Item).count()
    return Stored(
        *counts,
        tuple(sorted(n for n in os.listdir(instance.blobs_dir) if not n.startswith(DISCARDED))),
        tuple(sorted(n for n in os.listdir(instance.uploads_dir) if not n.startswith(DISCARDED))),
    )


def nothing_stored(site: Site) -> None:
    now = stored(site)
    assert (now.submissions, now.items, now.blobs) == (0, 0, ())


# -- POST /api/submissions -------------------------------------------------------------------


def test_completed_uploads_become_one_submission(site, team):
    source = new_source(site)
    message, data = b"a message", os.urandom(70_000)
    ids = [source.upload(sealed(team, message, Kind.MESSAGE)), source.upload(sealed(team, data))]
    response = source.submit(items_of([(ids[0], "message"), (ids[1], "file")]))
    assert response.status_code == 201
    assert response.get_json() == {"ok": True, "items": 2, "next": "/submit/done"}
    assert source.client.get("/submit/done").status_code == 200

    now = stored(site)
    assert (now.submissions, now.items, len(now.blobs), now.uploads) == (1, 2, 2, ())
    with site.services.db() as db:
        rows = [(i.kind, i.blob_id, i.position) for i in db.query(Item).order_by(Item.position)]
    contents = []
    for kind, blob_id, _ in rows:
        with site.services.blobs.open(blob_id) as handle:
            contents.append((kind, open_bytes(handle.read(), [team.journalist.secret])[1]))
    assert contents == [("message", message), ("file", data)]
    # The uploads are used up: a second submission of them finds nothing.
    again = source.submit(items_of([(ids[0], "message")]))
    assert (again.status_code, error_of(again)) == (404, "unknown_upload")


def test_a_source_who_is_not_logged_in_is_refused(site, team):
    anonymous = site.new_browser()
    token = page_token(anonymous, "/login")  # a session, and its token, but no source
    response = Source(anonymous, token).submit(items_of([(secrets.token_hex(16), "file")]))
    assert (response.status_code, error_of(response)) == (403, "not_logged_in")

    unacknowledged = site.new_browser()
    generate(unacknowledged, acknowledge=False)
    token = page_token(unacknowledged, "/login")
    response = Source(unacknowledged, token).submit(items_of([(secrets.token_hex(16), "file")]))
    assert (response.status_code, error_of(response)) == (403, "not_logged_in")
    nothing_stored(site)


def test_the_csrf_header_is_required(site, team):
    source = new_source(site)
    upload = source.upload(sealed(team, b"x"))
    for headers in ({}, {"X-Postern-CSRF": "wrong"}):
        response = source.client.post(
            "/api/submissions",
            data=json.dumps(items_of([(upload, "file")])),
            content_type="application/json",
            headers=headers,
        )
        assert response.status_code == 403
    nothing_stored(site)
    assert len(stored(site).uploads) == 1  # the upload waits, untouched


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"not json", "application/json"),
        (b"", "application/json"),
        (b'{"items": [', "application/json"),
        (b"[]", "application/json"),
        (None, "text/plain"),  # a good body of the wrong type
        ({"items": []}, "application/json"),
        ({"uploads": ["UPLOAD"]}, "application/json"),  # the shape in docs/format.md 8.4
        ({"items": [{"upload": "UPLOAD", "kind": "file"}], "more": 1}, "application/json"),
        ({"items": [{"upload": "UPLOAD"}]}, "application/json"),
        ({"items": [{"upload": "UPLOAD", "kind": "reply"}]}, "application/json"),
        ({"items": [{"upload": "UPLOAD", "kind": "file", "name": "x"}]}, "application/json"),
        ({"items": [{"upload": "UPPER", "kind": "file"}]}, "application/json"),
        ({"items": [{"upload": "../../etc/passwd", "kind": "file"}]}, "application/json"),
        ({"items": [{"upload": 7, "kind": "file"}]}, "application/json"),
        ({"items": ["UPLOAD"]}, "application/json"),
        ({"items": {"upload": "UPLOAD", "kind": "file"}}, "application/json"),
        (
            {"items": [{"upload": "UPLOAD", "kind": "file"}], "pad": "x" * 17_000},
            "application/json",
        ),
        (b"[" * 16_000, "application/json"),  # once a RecursionError and a 500
        (b'{"key": "KEY", "items": ' + b"[" * 9 + b"]" * 9 + b"}", "application/json"),
        ({"key": None, "items": [{"upload": "UPLOAD", "kind": "file"}]}, "application/json"),
        ({"key": "short", "items": [{"upload": "UPLOAD", "kind": "file"}]}, "application/json"),
        ({"key": "x" * 87, "items": [{"upload": "UPLOAD", "kind": "file"}]}, "application/json"),
        ({"key": "a+b/" * 8, "items": [{"upload": "UPLOAD", "kind": "file"}]}, "application/json"),
        ({"key": 7, "items": [{"upload": "UPLOAD", "kind": "file"}]}, "application/json"),
    ],
)
def test_a_request_that_is_not_understood_is_bad_request(site, team, body, content_type):
    source = new_source(site)
    upload = source.upload(sealed(team, b"content"))
    if body is None:
        body = items_of([(upload, "file")])
    if isinstance(body, dict) and "key" not in body:
        body = {"key": new_key(), **body}  # only what the case is about is wrong
    if isinstance(body, bytes):
        body = body.replace(b"KEY", new_key().encode())
    else:
        text = json.dumps(body).replace("UPLOAD", upload).replace("UPPER", upload.upper())
        body = text.encode()
    response = source.submit(body, content_type=content_type)
    assert (response.status_code, error_of(response)) == (400, "bad_request")
    nothing_stored(site)
    assert len(stored(site).uploads) == 1


def test_duplicate_ids_are_bad_request(site, team):
    source = new_source(site)
    upload = source.upload(sealed(team, b"content"))
    response = source.submit(items_of([(upload, "file"), (upload, "file")]))
    assert (response.status_code, error_of(response)) == (400, "bad_request")
    nothing_stored(site)


def test_an_unknown_upload_is_refused_and_the_others_are_kept(site, team):
    source = new_source(site)
    good = source.upload(sealed(team, b"content"))
    response = source.submit(items_of([(good, "file"), (secrets.token_hex(16), "file")]))
    assert (response.status_code, error_of(response)) == (404, "unknown_upload")
    nothing_stored(site)
    # Nothing was moved: the good upload can still be submitted.
    assert source.submit(items_of([(good, "file")])).status_code == 201


def test_another_sources_upload_is_unknown(site, team):
    alice, bob = new_source(site), new_source(site)
    bobs = bob.upload(sealed(team, b"bob's"))
    response = alice.submit(items_of([(bobs, "file")]))
    assert (response.status_code, error_of(response)) == (404, "unknown_upload")
    nothing_stored(site)
    assert bob.submit(items_of([(bobs, "file")])).status_code == 201


def test_an_incomplete_upload_is_refused(site, team):
    source = new_source(site)
    envelope = sealed(team, os.urandom(100_000))
    path = source.create(len(envelope))
    assert source.patch(path, 0, envelope[:50_000]).status_code == 204
    upload = upload_id(path)
    response = source.submit(items_of([(upload, "file")]))
    assert (response.status_code, error_of(response)) == (409, "incomplete_upload")
    nothing_stored(site)
    # It can still be finished and sent.
    assert source.patch(path, 50_000, envelope[50_000:]).status_code == 204
    assert source.submit(items_of([(upload, "file")])).status_code == 201


def test_too_many_items(site, team):
    source = new_source(site)
    ids = [source.upload(sealed(team, bytes([n]))) for n in range(MAX_FILES + 1)]
    response = source.submit(items_of([(i, "file") for i in ids]))
    assert (response.status_code, error_of(response)) == (400, "too_many_files")
    nothing_stored(site)
    assert source.submit(items_of([(i, "file") for i in ids[:MAX_FILES]])).status_code == 201


def test_uploads_sealed_to_a_replaced_keyring_are_refused(site, team):
    source = new_source(site)
    upload = source.upload(sealed(team, b"for the old keys"))
    newcomer = PrivateKey.generate(KeyKind.ENCRYPTION, "Bob")
    manifest = Manifest(
        serial=2,
        issued=ISSUED,
        root=team.root.public.key,
        recipients=(KeyEntry(newcomer.public.key, "Bob", "bob"),),
    )
    install_keyring(site.data_dir, sign_keyring(manifest, team.root))
    response = source.submit(items_of([(upload, "file")]))
    assert (response.status_code, error_of(response)) == (409, "stale_keyring")
    nothing_stored(site)


def test_no_keyring_no_submissions(team, tmp_path):
    site = make_site(make_data_dir(tmp_path / "data", team, keyring_serial=None))
    source = new_source(site)
    response = source.submit(items_of([(secrets.token_hex(16), "file")]))
    assert (response.status_code, error_of(response)) == (503, "no_keyring")


# -- tus through the app ---------------------------------------------------------------------


def test_tus_needs_the_csrf_header(site, team):
    source = new_source(site)
    length = len(sealed(team, b"x"))
    for token in (None, "wrong", ""):
        headers = {"Tus-Resumable": "1.0.0", "Upload-Length": str(length)}
        if token is not None:
            headers["X-Postern-CSRF"] = token
        response = source.client.post("/api/uploads", headers=headers)
        assert response.status_code == 403
        assert response.headers["Tus-Resumable"] == "1.0.0"
    assert stored(site).uploads == ()
    # An upload that exists needs its capability, not the token: without the capability
    # (the id alone) it is not found, with it (and nothing else) it answers.
    path = source.create(length)
    bare = path.split(".")[0]
    stranger = site.new_browser()
    for method in ("HEAD", "PATCH", "DELETE"):
        response = source.client.open(bare, method=method, headers={"Tus-Resumable": "1.0.0"})
        assert response.status_code == 404, method
    assert stranger.head(path, headers={"Tus-Resumable": "1.0.0"}).status_code == 200
    assert len(stored(site).uploads) == 1


def test_tus_answers_412_before_403(site, team):
    stranger = site.new_browser()  # no session, no token
    for method, path, status in (
        ("POST", "/api/uploads", 403),
        ("HEAD", f"/api/uploads/{'0' * 32}.{'A' * 43}", 404),
    ):
        response = stranger.open(path, method=method, headers={"Upload-Length": "2000"})
        assert response.status_code == 412
        assert response.headers["Tus-Version"] == "1.0.0"
        response = stranger.open(path, method=method, headers={"Tus-Resumable": "1.0.0"})
        assert response.status_code == status
    assert stranger.options("/api/uploads").status_code == 204


def test_tus_refuses_a_session_without_a_source(site, team):
    anonymous = site.new_browser()
    token = page_token(anonymous, "/login")
    response = Source(anonymous, token).tus("POST", "/api/uploads", {"Upload-Length": "2000"})
    assert response.status_code == 403
    assert stored(site).uploads == ()


def test_tus_hides_another_sources_upload(site, team):
    alice, bob = new_source(site), new_source(site)
    envelope = sealed(team, b"alice's")
    path = alice.create(len(envelope))
    bobs = bob.create(len(envelope))
    # Bob's capability does not open Alice's upload, nor does its bare id.
    wrong = f"{path.split('.')[0]}.{bobs.split('.')[1]}"
    for target in (wrong, path.split(".")[0]):
        assert bob.tus("HEAD", target).status_code == 404
        assert bob.patch(target, 0, envelope).status_code == 404
        assert bob.tus("DELETE", target).status_code == 404
    assert alice.tus("HEAD", path).headers["Upload-Offset"] == "0"
    # Even knowing Alice's URL, Bob cannot make her upload his submission.
    assert alice.patch(path, 0, envelope).status_code == 204
    response = bob.submit(items_of([(upload_id(path), "file")]))
    assert (response.status_code, error_of(response)) == (404, "unknown_upload")
    assert alice.submit(items_of([(upload_id(path), "file")])).status_code == 201


# -- the plain form through the app ----------------------------------------------------------

BOUNDARY = "----PosternApiTestBoundary"


def plain_form(source: Source, fields: dict[str, Any]) -> TestResponse:
    return post_form(source.client, "/submit", fields)


def assert_refused_page(response: TestResponse, status: int, text: str) -> None:
    assert response.status_code == status
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert text in page
    assert "Traceback" not in page


@pytest.mark.parametrize(
    ("settings", "status", "text"),
    [
        ({"max_nojs_request_bytes": 64 * 1024}, 413, "larger than this form accepts (64 KiB)"),
        ({"max_message_chars": 10}, 413, "longer than 10 characters"),
        ({"max_files_per_submission": 1}, 400, "At most 1 files can be sent"),
    ],
    ids=["oversize", "message-too-long", "too-many-files"],
)
def test_plain_form_limits(team, tmp_path, settings, status, text):
    site = make_site(make_data_dir(tmp_path / "data", team), **settings)
    source = new_source(site)
    response = plain_form(
        source,
        {
            "csrf_token": source.token,
            "message": "a message longer than ten characters",
            "files": [(io.BytesIO(os.urandom(100_000)), "a.bin"), (io.BytesIO(b"b"), "b.bin")],
        },
    )
    assert_refused_page(response, status, text)
    nothing_stored(site)


def test_plain_form_empty(site):
    source = new_source(site)
    response = plain_form(
        source,
        {"csrf_token": source.token, "message": "", "files": (io.BytesIO(b""), "")},
    )
    assert_refused_page(response, 400, "Write a message or choose a file.")
    nothing_stored(site)


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
TRUNCATED = (
    b'--BOUNDARY\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\nTOKEN\r\n'
    b"--BOUNDARY\r\nbroken"
)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"this is not multipart at all", MULTIPART),
        (TRUNCATED, MULTIPART),
        (b"csrf_token=TOKEN&message=y", "multipart/form-data"),  # no boundary
        (b"csrf_token=TOKEN&message=y", "application/x-www-form-urlencoded"),
    ],
    ids=["garbage", "truncated", "no-boundary", "not-multipart"],
)
def test_plain_form_malformed(site, body, content_type):
    source = new_source(site)
    body = body.replace(b"BOUNDARY", BOUNDARY.encode()).replace(b"TOKEN", source.token.encode())
    response = source.client.post("/submit", data=body, content_type=content_type)
    assert_refused_page(response, 400, "The form could not be read.")
    nothing_stored(site)


def test_plain_form_wrong_csrf(site):
    source = new_source(site)
    for token in ("wrong", ""):
        response = plain_form(source, {"csrf_token": token, "message": "hello"})
        assert_refused_page(response, 403, "The form has expired.")
    nothing_stored(site)


def test_plain_form_is_sealed_and_recorded(site, team):
    source = new_source(site)
    data = os.urandom(50_000)
    response = plain_form(
        source,
        {"csrf_token": source.token, "message": "hi", "files": (io.BytesIO(data), "c.bin")},
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/submit/done")
    now = stored(site)
    assert (now.submissions, now.items, len(now.blobs)) == (1, 2, 2)
