"""The source interface's pages, through Flask's test client.

Argon2id runs at its real cost (64 MiB) in these tests, so each test makes as few codename
derivations (new codenames and logins) as it can.
"""

from __future__ import annotations

import base64
import logging
import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

import crypto
from crypto import Algorithm, Kind, derive_source_secrets, fingerprint, seal_bytes
from dropbox.app import create_app
from dropbox.db import Item, Reply, SessionRecord, Source
from dropbox.instance import install_keyring, load_instance
from dropbox.sources import find_source, store_reply
from dropbox.web import capacity
from dropbox.web.security import SECURITY_HEADERS
from dropbox.web.sessions import SESSION_COOKIE
from tests.dropbox.sitetools import (
    FakeClock,
    Site,
    csrf_token,
    generate,
    login,
    logout,
    make_site,
    post_form,
    token_for,
)
from tests.support.database import settings_for
from tests.support.server import make_data_dir
from tests.support.team import Team


@pytest.fixture(scope="module")
def team():
    return Team()


@pytest.fixture
def site(team, tmp_path) -> Site:
    return make_site(make_data_dir(tmp_path / "data", team))


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def session_cookie(client: FlaskClient) -> str | None:
    cookie = client.get_cookie(SESSION_COOKIE)
    return None if cookie is None else cookie.value


def count_sources(site: Site) -> int:
    with site.services.db() as db:
        return db.query(Source).count()


# -- landing -----------------------------------------------------------------------------------


def test_landing_shows_the_root_fingerprint_and_the_way_in(site, team):
    response = site.client.get("/")
    assert response.status_code == 200
    page = text(response)
    assert fingerprint(Algorithm.ED25519, team.root.public.key) in page
    assert 'href="/generate"' in page
    assert 'href="/login"' in page
    assert "Tor Browser" in page
    assert "Safest" in page
    assert "metadata" in page
    # Reading the landing page starts no session.
    assert response.headers.get("Set-Cookie") is None


def test_landing_without_a_keyring_says_submissions_are_not_open(team, tmp_path):
    site = make_site(make_data_dir(tmp_path / "data", team, keyring_serial=None))
    page = text(site.client.get("/"))
    assert "Submissions are not open yet" in page
    assert fingerprint(Algorithm.ED25519, team.root.public.key) not in page
    assert site.client.get("/keyring.json").status_code == 404


def test_a_keyring_installed_while_running_is_used_at_once(team, tmp_path):
    site = make_site(make_data_dir(tmp_path / "data", team, keyring_serial=None))
    assert "Submissions are not open yet" in text(site.client.get("/"))
    keyring = team.keyring(1)
    install_keyring(site.data_dir, keyring)
    page = text(site.client.get("/"))
    assert "Submissions are not open yet" not in page
    assert fingerprint(Algorithm.ED25519, team.root.public.key) in page
    assert site.client.get("/keyring.json").data == keyring


def test_keyring_json_is_the_installed_file_byte_for_byte(site):
    response = site.client.get("/keyring.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.data == (site.data_dir / "keyring.json").read_bytes()


# -- codenames ---------------------------------------------------------------------------------


def _all_bytes_under(directory) -> list[tuple[str, bytes]]:
    return [(str(p), p.read_bytes()) for p in sorted(directory.rglob("*")) if p.is_file()]


def test_generate_shows_the_codename_once_and_keeps_it_nowhere(site):
    before = dict(_all_bytes_under(site.data_dir))
    client = site.client
    token = token_for(client, "/generate")
    response = client.post("/generate", data={"csrf_token": token})
    assert response.status_code == 200
    page = text(response)
    match = re.search(r'id="codename">([a-z -]+)<', page)
    assert match is not None
    codename = match.group(1)
    words = codename.split()
    assert len(words) == 7
    assert page.count(codename) == 1
    assert "I have written down my codename" in page

    # Not in a cookie: the cookie is 32 random bytes, nothing else.
    set_cookies = response.headers.getlist("Set-Cookie")
    assert len(set_cookies) == 1
    for word in words:
        assert word not in set_cookies[0]
    cookie = session_cookie(client)
    assert cookie is not None
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", cookie)
    assert "HttpOnly" in set_cookies[0]
    assert "SameSite=Strict" in set_cookies[0]
    assert "Path=/" in set_cookies[0]
    assert "Secure" not in set_cookies[0]

    # Not shown again on any page.
    for path in ("/", "/submit", "/replies", "/generate", "/login"):
        assert codename not in text(client.get(path)), path

    # Not on disk: no file of the data directory (the database included) holds the codename
    # or any of its words, except words the files held before (table names in the schema).
    for name, data in _all_bytes_under(site.data_dir):
        assert codename.encode() not in data, name
        for word in words:
            assert word.encode() not in data or word.encode() in before.get(name, b""), (
                word,
                name,
            )
    assert count_sources(site) == 1


def test_submitting_is_refused_until_the_codename_is_acknowledged(site):
    client = site.client
    token = token_for(client, "/generate")
    response = client.post("/generate", data={"csrf_token": token})
    assert response.status_code == 200
    token = csrf_token(response)

    page = text(client.get("/submit"))
    assert "Confirm your codename" in page
    assert 'id="submit-form"' not in page
    refused = post_form(client, "/submit", {"csrf_token": token})
    assert refused.status_code == 403

    done = client.post("/acknowledge", data={"csrf_token": token})
    assert done.status_code == 303
    assert done.headers["Location"].endswith("/submit")
    page = text(client.get("/submit"))
    assert 'id="submit-form"' in page


def test_the_submit_page_has_the_form_the_script_and_the_keyring(site, team):
    generate(site.client)
    page = text(site.client.get("/submit"))
    form = page[page.index('<form id="submit-form"') :]
    form = form[: form.index("</form>")]
    assert 'method="post"' in form
    assert 'action="/submit"' in form
    assert 'enctype="multipart/form-data"' in form
    fields = re.findall(r"<(input|textarea)\b[^>]*>", form)
    assert fields[0] == "input"
    first = re.search(r"<(?:input|textarea)\b[^>]*>", form)
    assert first is not None
    assert 'name="csrf_token"' in first.group(0)
    assert 'type="hidden"' in first.group(0)
    assert re.search(r'<textarea id="message" name="message"[^>]* maxlength="100000"', form)
    assert re.search(r'<input type="file" id="files" name="files" multiple', form)
    assert '<label for="message">' in form
    assert '<label for="files">' in form
    assert re.search(r'<button type="submit">', form)

    head = page[: page.index("</head>")]
    meta = re.search(r'<meta name="postern-root" content="([^"]+)">', head)
    assert meta is not None
    assert base64.b64decode(meta.group(1)) == team.root.public.key
    assert '<meta name="postern-keyring-serial" content="1">' in head
    assert '<script type="module" src="/static/js/postern.js"></script>' in head
    assert "<noscript>" in page
    assert "100,000 characters" in page
    assert "500 MiB" in page
    assert "4 GiB" in page


def test_the_plain_form_seals_and_records_a_submission(site, team):
    generate(site.client)
    token = token_for(site.client, "/submit")
    response = post_form(
        site.client, "/submit", {"csrf_token": token, "message": "hello from the plain form"}
    )
    assert response.status_code == 303
    with site.services.db() as db:
        items = db.query(Item).all()
        assert [item.kind for item in items] == ["message"]
        blob_id = items[0].blob_id
    with site.services.blobs.open(blob_id) as handle:
        opened = crypto.open_envelope(handle, [team.journalist.secret])
        assert opened.read_all() == b"hello from the plain form"


def test_the_plain_form_refuses_a_wrong_token_and_stores_nothing(site):
    generate(site.client)
    response = post_form(site.client, "/submit", {"csrf_token": "wrong", "message": "hello"})
    assert response.status_code == 403
    with site.services.db() as db:
        assert db.query(Item).count() == 0
    assert list(site.services.blobs.ids()) == []


# -- login -------------------------------------------------------------------------------------


def test_login_with_the_codename_and_a_wrong_one(site):
    client = site.client
    codename = generate(client)
    logout(client)

    response = login(client, "  " + codename.upper().replace(" ", "   ") + "\n")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/replies")
    assert client.get("/replies").status_code == 200
    logout(client)

    words = codename.split()
    wrong = " ".join(words[1:] + words[:1])
    other = " ".join(words[2:] + words[:2])
    first = login(client, wrong)
    second = login(client, other)
    assert first.status_code == second.status_code == 403
    strip = re.compile(r'value="[^"]*"')
    assert strip.sub("", text(first)) == strip.sub("", text(second))
    assert "That codename was not recognized." in text(first)
    assert client.get("/replies").status_code == 303


def test_a_malformed_codename_gets_its_own_message_without_a_derivation(site):
    site.services.derivations.logins.per_minute = 0  # any login derivation is now refused
    for typed in ("", "one two three", "correct horse battery staple fish dog cat"):
        response = login(site.client, typed)
        assert response.status_code == 400
        assert "That is not a codename" in text(response)


# -- replies -----------------------------------------------------------------------------------


def test_replies_are_shown_after_login_and_really_deleted(site, team):
    client = site.client
    codename = generate(client)
    logout(client)
    instance = load_instance(site.data_dir)
    secrets = derive_source_secrets(
        codename,
        instance.instance_salt,
        opslimit=instance.codename_params.opslimit,
        memlimit=instance.codename_params.memlimit,
    )
    team_key = team.journalist.public.key
    store = site.services.blobs
    with site.services.db() as db:
        source = find_source(db, secrets.lookup_id)
        assert source is not None
        first = store_reply(
            db, store, source,
            seal_bytes(b"Thank you.\nCan you send more?", [secrets.reply_public, team_key],
                       Kind.REPLY),
            site.services.today(),
        )  # fmt: skip
        second = store_reply(
            db, store, source,
            seal_bytes(b"<b>not bold</b>", [secrets.reply_public, team_key], Kind.REPLY),
            site.services.today(),
        )  # fmt: skip
        # Sealed to the source, but not a reply: flagged, not shown.
        odd = store_reply(
            db, store, source,
            seal_bytes(b"odd message content", [secrets.reply_public, team_key], Kind.MESSAGE),
            site.services.today(),
        )  # fmt: skip
        first_id, first_blob, odd_id = first.id, first.blob_id, odd.id
        second_id = second.id

    assert login(client, codename).status_code == 303
    page = text(client.get("/replies"))
    assert "Thank you.\nCan you send more?" in page
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page
    assert "This reply could not be opened" in page
    assert "odd message content" not in page
    # Each reply shows its day (the server keeps no finer time), in the page's language.
    assert page.count('<time datetime="2026-11-24">Arrived on November 24, 2026</time>') == 3
    # Deleting asks first, on a page of its own (no script needed): [Delete] or [Keep].
    assert f'href="/replies/{odd_id}/delete"' in page
    assert "action=" not in page.split("<main")[1].split("</main>")[0]
    confirm = text(client.get(f"/replies/{first_id}/delete"))
    assert "Delete this reply?" in confirm
    assert "Thank you.\nCan you send more?" in confirm
    assert f'action="/replies/{first_id}/delete"' in confirm
    assert '<a href="/replies">Keep</a>' in confirm
    assert client.get("/replies/999/delete").status_code == 404
    with site.services.db() as db:
        assert db.get(Reply, first_id) is not None  # asking deleted nothing

    token = csrf_token(client.get("/replies"))
    response = client.post(f"/replies/{first_id}/delete", data={"csrf_token": token})
    assert response.status_code == 303
    assert not store.exists(first_blob)
    with site.services.db() as db:
        assert db.get(Reply, first_id) is None
        assert db.get(Reply, second_id) is not None
    page = text(client.get("/replies"))
    assert "Can you send more?" not in page
    assert "not bold" in page
    # Deleting it again, or a reply that is not this source's, finds nothing.
    assert client.post(f"/replies/{first_id}/delete", data={"csrf_token": token}).status_code == 404


def test_logout_ends_the_session_and_clears_the_cookie(site):
    client = site.client
    generate(client)
    old_cookie = session_cookie(client)
    response = logout(client)
    assert response.status_code == 200
    assert "You are logged out" in text(response)
    cleared = response.headers.getlist("Set-Cookie")
    assert len(cleared) == 1
    assert cleared[0].startswith(f"{SESSION_COOKIE}=;")
    assert "Max-Age=0" in cleared[0] or "Expires=Thu, 01 Jan 1970" in cleared[0]
    assert session_cookie(client) is None
    assert client.get("/replies").status_code == 303
    # The old cookie names no session any more.
    client.set_cookie(SESSION_COOKIE, old_cookie)
    assert client.get("/replies").status_code == 303
    assert len(site.services.sessions) == 0


# -- CSRF --------------------------------------------------------------------------------------


def test_a_missing_or_wrong_csrf_token_is_refused_and_changes_nothing(site):
    client = site.client
    token = token_for(client, "/generate")
    for data in ({}, {"csrf_token": "x" * len(token)}, {"csrf_token": ""}):
        response = client.post("/generate", data=data)
        assert response.status_code == 403
        assert "Traceback" not in text(response)
    assert count_sources(site) == 0

    generate(client)
    cookie = session_cookie(client)
    for data in ({}, {"csrf_token": token[:-1] + ("A" if token[-1] != "A" else "B")}):
        assert client.post("/logout", data=data).status_code == 403
    assert client.post("/logout", headers={"X-Postern-CSRF": "nope"}).status_code == 403
    # A multipart body is never parsed by the generic check: refused without a header token.
    right = token_for(client, "/replies")
    multipart = post_form(client, "/logout", {"csrf_token": right})
    assert multipart.status_code == 403
    assert session_cookie(client) == cookie
    assert client.get("/replies").status_code == 200

    # Another session's token does not work either.
    other = site.new_browser()
    other_token = token_for(other, "/login")
    assert client.post("/logout", data={"csrf_token": other_token}).status_code == 403
    assert client.get("/replies").status_code == 200

    # The header form works for scripts.
    assert client.post("/logout", headers={"X-Postern-CSRF": right}).status_code == 200


# -- headers and error pages -------------------------------------------------------------------


def _sample_responses(site: Site):
    client = site.client
    responses = {
        "landing": client.get("/"),
        "generate": client.get("/generate"),
        "login": client.get("/login"),
        "login-malformed": login(client, "not a codename"),
        "submit-anonymous": client.get("/submit"),
        "replies-anonymous": client.get("/replies"),
        "keyring": client.get("/keyring.json"),
        "css": client.get("/static/css/postern.css"),
        "404": client.get("/no/such/page"),
        "405": client.post("/"),
        "403": client.post("/logout"),
        "head": client.head("/"),
    }
    generate(client)
    responses["submit"] = client.get("/submit")
    responses["replies"] = client.get("/replies")
    responses["done"] = client.get("/submit/done")
    responses["logout"] = logout(client)
    for response in responses.values():
        response.get_data()  # buffer the body, then release the file behind a static response
        response.close()
    return responses


@pytest.fixture
def sample_responses(site):
    return _sample_responses(site)


@pytest.mark.parametrize("header", sorted(SECURITY_HEADERS))
def test_every_response_carries_each_security_header(sample_responses, header):
    for name, response in sample_responses.items():
        assert response.headers.get(header) == SECURITY_HEADERS[header], (name, header)


def test_the_header_set_is_the_one_in_the_format_document():
    assert SECURITY_HEADERS == {
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            "font-src 'self'; connect-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Cross-Origin-Embedder-Policy": "require-corp",
    }


def test_no_page_uses_inline_script_or_style(sample_responses):
    for name, response in sample_responses.items():
        if response.mimetype != "text/html":
            continue
        page = text(response)
        assert "style=" not in page, name
        assert "<style" not in page, name
        assert re.search(r"<script(?![^>]*\bsrc=)", page) is None, name
        assert re.search(r"<[^>]+\son[a-z]+=", page) is None, name


def test_error_pages_show_no_stack_trace(site):
    page_404 = site.client.get("/no/such/page")
    assert page_404.status_code == 404
    assert "Page not found" in text(page_404)
    page_405 = site.client.post("/")
    assert page_405.status_code == 405
    assert page_405.headers["Allow"] == "GET, HEAD, OPTIONS"
    token = token_for(site.client, "/login")
    page_413 = site.client.post("/login", data={"csrf_token": token, "codename": "x" * 70_000})
    assert page_413.status_code == 413
    assert "Too large" in text(page_413)
    for response in (page_404, page_405, page_413):
        page = text(response)
        assert "Traceback" not in page
        assert "werkzeug" not in page.lower()
        assert response.mimetype == "text/html"


def test_an_unhandled_exception_is_a_plain_500_and_logged_without_the_request(
    team, tmp_path, caplog
):
    site = make_site(make_data_dir(tmp_path / "data", team))

    @site.app.get("/boom/<secret>")
    def boom(secret: str) -> str:
        raise RuntimeError(f"secret detail {secret}")

    with caplog.at_level(logging.DEBUG):
        response = site.client.get("/boom/source-name-here")
    assert response.status_code == 500
    page = text(response)
    assert "Server error" in page
    assert "secret detail" not in page
    assert "RuntimeError" not in page
    assert "Traceback" not in page
    assert response.headers["Cache-Control"] == "no-store"
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "RuntimeError" in logged
    assert "source-name-here" not in logged
    assert "secret detail" not in logged
    assert all(r.exc_info is None for r in caplog.records)


def test_debug_is_never_on(team, tmp_path, monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    site = make_site(make_data_dir(tmp_path / "data", team))
    assert site.app.debug is False
    assert site.app.config["PROPAGATE_EXCEPTIONS"] is False


def test_access_log_records_are_dropped(site):
    from common.web import DropAccessLogs

    for name in ("werkzeug", "gunicorn.access"):
        logger = logging.getLogger(name)
        assert any(isinstance(f, DropAccessLogs) for f in logger.filters)
        record = logger.makeRecord(name, logging.INFO, __file__, 1, "GET /replies", (), None)
        assert not logger.filter(record)
    record = logging.LogRecord("gunicorn.error", logging.ERROR, __file__, 1, "x", (), None)
    assert DropAccessLogs().filter(record)


# -- sessions ----------------------------------------------------------------------------------


def test_a_session_ends_after_30_idle_minutes(site):
    client = site.client
    generate(client)
    for _ in range(3):
        site.clock.advance(minutes=29)
        assert client.get("/replies").status_code == 200
    site.clock.advance(minutes=30)
    response = client.get("/replies")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/login")
    assert len(site.services.sessions) == 0


def test_a_session_ends_2_hours_after_it_began(site):
    client = site.client
    generate(client)
    for _ in range(5):
        site.clock.advance(minutes=20)
        assert client.get("/replies").status_code == 200
    site.clock.advance(minutes=19, seconds=59)
    assert client.get("/replies").status_code == 200
    site.clock.advance(seconds=1)
    assert client.get("/replies").status_code == 303


def test_an_expired_sessions_token_no_longer_works(site):
    token = token_for(site.client, "/generate")
    site.clock.advance(minutes=31)
    assert site.client.post("/generate", data={"csrf_token": token}).status_code == 403
    assert count_sources(site) == 0


# -- throttling --------------------------------------------------------------------------------


def test_failed_logins_are_throttled_per_session(team, tmp_path):
    site = make_site(
        make_data_dir(tmp_path / "data", team),
        login_failures_per_session=2,
        login_failure_window_minutes=10,
    )
    client = site.client
    words = ["abacus"] * 7
    for _ in range(2):
        assert login(client, " ".join(words)).status_code == 403
    refused = login(client, " ".join(words))
    assert refused.status_code == 429
    assert "Wait 10 minutes" in text(refused)
    assert refused.headers["Retry-After"] == "600"
    # Another session has its own budget.
    assert login(site.new_browser(), " ".join(words)).status_code == 403
    # The window slides.
    site.clock.advance(minutes=9)
    assert "Wait 1 minute," in text(login(client, " ".join(words)))
    site.clock.advance(minutes=1)
    assert login(client, " ".join(words)).status_code == 403


def test_new_codenames_are_throttled_apart_from_logins(team, tmp_path):
    site = make_site(
        make_data_dir(tmp_path / "data", team),
        codename_derivations_per_minute=1,
        login_derivations_per_minute=1,
    )
    codename = generate(site.client, acknowledge=False)
    other = site.new_browser()
    token = token_for(other, "/generate")
    refused = other.post("/generate", data={"csrf_token": token})
    assert refused.status_code == 429
    assert "The server is busy" in text(refused)
    assert count_sources(site) == 1
    # The codename budget is used up; the login budget is not.
    assert login(site.new_browser(), codename).status_code == 303
    assert login(site.new_browser(), codename).status_code == 429
    site.clock.advance(minutes=1)
    assert other.post("/generate", data={"csrf_token": token}).status_code == 200


# -- sessions ----------------------------------------------------------------------------------


def test_static_files_leave_the_session_row_alone(site):
    generate(site.client)

    def sealed() -> list[bytes]:
        with site.services.db() as db:
            return list(db.scalars(select(SessionRecord.sealed)))

    before = sealed()
    site.clock.advance(minutes=1)
    response = site.client.get("/static/css/postern.css")
    assert response.status_code == 200
    response.close()
    assert sealed() == before
    assert site.client.get("/submit").status_code == 200
    assert sealed() != before  # a page marks the session as seen


def test_sessions_hold_nothing_derived_from_the_codename(site):
    client = site.client
    codename = generate(client)
    state = site.services.sessions.get(session_cookie(client))
    assert state is not None
    for value in vars(state).values():
        assert codename not in repr(value)
    assert state.source_row_id == 1
    assert state.codename_acknowledged is True
    assert isinstance(state.created - state.last_seen, timedelta)


def test_extensions_can_check_the_csrf_token_themselves(team, tmp_path):
    from flask import Blueprint, request

    from dropbox.web.context import check_csrf_token, csrf_token_matches
    from dropbox.web.security import csrf_checked_in_blueprint, csrf_checked_in_view

    site = make_site(make_data_dir(tmp_path / "data", team))
    uploads = Blueprint("uploads_test", __name__, url_prefix="/api/test-uploads")

    @uploads.post("")
    def create() -> tuple[str, int]:
        if request.headers.get("Tus-Resumable") != "1.0.0":
            return "version", 412
        check_csrf_token(request.headers.get("X-Postern-CSRF"))
        return "created", 201

    @site.app.post("/api/test-plain")
    @csrf_checked_in_view
    def plain() -> tuple[str, int]:
        return ("ok", 200) if csrf_token_matches(request.args.get("t")) else ("no", 400)

    @site.app.post("/api/test-json")
    def json_api() -> tuple[str, int]:
        return "done", 201

    site.app.register_blueprint(csrf_checked_in_blueprint(uploads))
    client = site.client
    token = token_for(client, "/login")
    assert client.post("/api/test-uploads").status_code == 412
    assert client.post("/api/test-uploads", headers={"Tus-Resumable": "1.0.0"}).status_code == 403
    created = client.post(
        "/api/test-uploads", headers={"Tus-Resumable": "1.0.0", "X-Postern-CSRF": token}
    )
    assert created.status_code == 201
    assert client.post("/api/test-plain?t=wrong").status_code == 400
    assert client.post(f"/api/test-plain?t={token}").status_code == 200
    # Everything else gets the generic check: the header is enough, no body is parsed.
    assert client.post("/api/test-json", json={"uploads": []}).status_code == 403
    done = client.post("/api/test-json", json={"uploads": []}, headers={"X-Postern-CSRF": token})
    assert done.status_code == 201


def test_session_eviction_spares_logged_in_sources(tmp_path):
    from dropbox.web.sessions import SessionStore
    from tests.dropbox.sitetools import migrated_database

    clock = FakeClock()
    store = SessionStore(migrated_database(tmp_path / "db"), clock, max_sessions=2)
    source_cookie, _ = store.create()
    store.update(source_cookie, lambda s: s.logged_in_as(1, acknowledged=True, reply_private=b"k"))
    clock.advance(seconds=1)
    anonymous_cookie, _ = store.create()
    clock.advance(seconds=1)
    store.create()
    assert len(store) == 2
    source = store.get(source_cookie)
    assert source is not None
    assert source.source_row_id == 1
    assert store.get(anonymous_cookie) is None
    assert store.get("not a cookie") is None
    assert store.get("A" * 43) is None


def test_uploads_beyond_the_slots_get_503_at_once_and_pages_still_load(team, tmp_path):
    clock = FakeClock()
    data_dir = make_data_dir(tmp_path / "data", team)
    app = create_app(settings_for(data_dir), clock=clock, upload_slots=1)
    slots = app.extensions[capacity.EXTENSION_KEY]
    site = Site(app, clock, data_dir)
    generate(site.client)
    token = token_for(site.client, "/submit")
    form = {"csrf_token": token, "message": "hello"}
    assert slots.try_acquire()  # another upload is streaming in
    try:
        busy = post_form(site.client, "/submit", form)
        assert busy.status_code == 503
        assert busy.headers["Retry-After"] == "30"
        assert site.client.get("/").status_code == 200
    finally:
        slots.release()
    done = post_form(site.client, "/submit", form)
    assert done.status_code == 303


def test_a_busy_database_is_503_with_retry_after_not_500(site, monkeypatch):
    """A write lock held past the busy timeout (here raised at once) is a moment that passes:
    503 with Retry-After, which the page's script waits out, and the next request works."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from dropbox.web.sessions import SessionStore

    real_create = SessionStore.create

    def locked(self, *args, **kwargs):
        error = sqlite3.OperationalError("database is locked")
        error.sqlite_errorcode = 5
        raise OperationalError("INSERT INTO sessions", {}, error)

    monkeypatch.setattr(SessionStore, "create", locked)
    refused = site.client.get("/generate")
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "15"
    assert "not available right now" in text(refused)
    monkeypatch.setattr(SessionStore, "create", real_create)
    assert site.client.get("/generate").status_code == 200
