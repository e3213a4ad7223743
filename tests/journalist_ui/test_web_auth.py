"""The station UI's policy: headers, Host/Origin checks, CSRF, unlock, lock, idle lock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from werkzeug.test import TestResponse

from journalist_ui.web import security
from journalist_ui.web.sessions import SessionTable
from tests.journalist_ui.storekit import make_home
from tests.journalist_ui.webkit import BASE_URL, Clock, WebClient, make_app

START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return make_home(tmp_path_factory.mktemp("web-auth") / "home")


@pytest.fixture
def clock():
    return Clock(START)


@pytest.fixture
def web(home, clock):
    return WebClient(make_app(home, clock, idle_timeout=timedelta(minutes=5)))


def assert_strict_headers(response: TestResponse) -> None:
    for name, value in security.SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]


def test_every_response_has_the_strict_headers(web):
    assert_strict_headers(web.get("/unlock"))
    assert_strict_headers(web.get("/static/station.css"))
    assert_strict_headers(web.get("/no/such/page"))
    assert_strict_headers(web.post("/unlock", {"journalist": "alice", "passphrase": "no"}))


def test_locked_station_sends_every_page_to_unlock(web):
    for path in ("/", "/search?q=x", "/sources/1", "/files/1/download", "/ledger", "/imports"):
        response = web.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].endswith("/unlock")
    assert web.post("/bulk", {"action": "star", "source": "1"}).status_code == 403


@pytest.mark.parametrize(
    "host", ["evil.example:8090", "127.0.0.1:8091", "127.0.0.1", "localhost.evil:8090"]
)
def test_a_foreign_host_is_refused(web, host):
    response = web.client.get("/unlock", headers={"Host": host})
    assert response.status_code == 400
    assert_strict_headers(response)


def test_localhost_with_the_port_is_accepted(web):
    assert web.client.get("/unlock", headers={"Host": "localhost:8090"}).status_code == 200


def test_a_cross_origin_post_is_refused(web):
    web.get("/unlock")
    response = web.client.post(
        "/unlock",
        base_url=BASE_URL,
        data={"csrf_token": web.csrf, "journalist": "alice", "passphrase": "x"},
        headers={"Origin": "http://evil.example"},
    )
    assert response.status_code == 403


def test_a_post_without_the_csrf_token_is_refused(web):
    web.get("/unlock")
    response = web.client.post(
        "/unlock", base_url=BASE_URL, data={"journalist": "alice", "passphrase": "x"}
    )
    assert response.status_code == 403
    response = web.client.post(
        "/unlock",
        base_url=BASE_URL,
        data={"csrf_token": "forged", "journalist": "alice", "passphrase": "x"},
    )
    assert response.status_code == 403


def test_wrong_passphrase_and_unknown_journalist(web):
    response = web.unlock(passphrase="not the passphrase")  # noqa: S106 - a wrong one
    assert response.status_code == 403
    assert "wrong passphrase for journalist alice" in response.get_data(as_text=True)
    response = web.post("/unlock", {"journalist": "mallory", "passphrase": "x"})
    assert "Choose a journalist of this station." in response.get_data(as_text=True)
    assert web.state().sessions.unlocked_count() == 0


def test_unlock_sets_a_new_strict_cookie_and_lock_drops_the_keys(web):
    web.get("/unlock")
    before = web.client.get_cookie("postern_station", domain="127.0.0.1")
    assert before is not None
    response = web.unlock()
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    after = web.client.get_cookie("postern_station", domain="127.0.0.1")
    assert after is not None
    assert after.value != before.value
    assert len(after.value) >= 43
    unlocked = web.unlocked()
    page = web.get("/")
    assert page.status_code == 200
    assert "alice" in page.get_data(as_text=True)
    assert web.post("/lock").status_code == 302
    assert unlocked.encryption_keys == []
    assert not hasattr(unlocked, "signing_key")
    assert web.state().sessions.unlocked_count() == 0
    assert web.get("/").status_code == 302
    # The old cookie is worthless now.
    web.client.set_cookie("postern_station", after.value, domain="127.0.0.1")
    assert web.get("/").status_code == 302


def test_idle_sessions_lock_themselves(web, clock):
    web.unlock()
    unlocked = web.unlocked()
    clock.now += timedelta(minutes=4)
    assert web.get("/").status_code == 200
    clock.now += timedelta(minutes=4)  # 4 minutes since the last request: still open
    assert web.get("/").status_code == 200
    clock.now += timedelta(minutes=6)
    assert web.state().sessions.expire() == 1  # the server's reaper, without any request
    assert unlocked.encryption_keys == []
    response = web.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/unlock")


def test_errors_show_no_internals(web):
    web.unlock()
    response = web.get("/sources/999999")
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "Traceback" not in body
    assert "no source" not in body


def test_two_browsers_have_separate_sessions(home, clock):
    app = make_app(home, clock)
    first, second = WebClient(app), WebClient(app)
    first.unlock()
    assert second.get("/").status_code == 302  # unlocking one browser unlocks only it
    second.unlock()
    assert first.unlocked() is not second.unlocked()
    assert first.post("/lock").status_code == 302
    assert first.get("/").status_code == 302
    assert second.get("/").status_code == 200
    assert second.unlocked().encryption_keys


class FakeUnlocked:
    journalist = "alice"

    def __init__(self) -> None:
        self.locked = 0

    def lock(self) -> None:
        self.locked += 1


def test_a_held_unlocked_locks_when_released(clock):
    table = SessionTable(timedelta(minutes=5), clock)
    held = FakeUnlocked()
    session = table.unlock(table.get(None), held)
    table.hold(held)
    table.hold(held)
    table.lock(session)
    assert table.unlocked_count() == 0  # the browser is locked out at once
    assert held.locked == 0
    table.release(held)
    assert held.locked == 0
    table.release(held)
    assert held.locked == 1
    free = FakeUnlocked()
    table.lock(table.unlock(table.get(None), free))
    assert free.locked == 1
