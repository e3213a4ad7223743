"""The submit page's script (dropbox/static/js/postern.js) in Chromium, against a real server.

Each test starts ``dropbox serve`` (gunicorn) on a fresh data directory with a keyring made
here, and puts a :class:`Relay` between the browser and the server: it reads every byte the
browser sends, records each request, and can cut one off half-way or hold it back. What was
stored is opened with the journalist's private key and compared with what was chosen in the
page, byte for byte.

:class:`LiveServer`, :class:`Relay` and the helpers are in live.py, shared with
test_submit_firefox.py; the ``team``, ``server`` and ``relay`` fixtures in conftest.py.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, Route

from crypto import Kind
from crypto.envelope import CT_CHUNK, header_length
from tests.browser.browsers import ChromiumPage
from tests.browser.live import (
    ENCRYPTING,
    PLAIN,
    MiB,
    Relay,
    content_with,
    found_in,
    marker_forms,
    new_marker,
    nth,
    other_keyring,
)
from tests.support.database import execute

pytestmark = pytest.mark.timeout(90)


@dataclass
class Browser:
    """A Chromium page that records every request it makes, with its body."""

    page: Page
    base: str
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)

    def record(self, request: Request) -> None:
        self.seen.append((request.method, request.url, request.post_data_buffer or b""))

    def strings(self) -> dict[str, str]:
        found: dict[str, str] = self.page.evaluate(
            "() => ({ ...document.getElementById('postern-strings').dataset })"
        )
        return found

    def log_in(self) -> str:
        """Get a codename, acknowledge it and wait on the submit page until the script decided;
        return the codename."""
        page = self.page
        page.goto(self.base + "/generate")
        page.click("main form button")
        codename = page.inner_text("#codename")
        page.click("main form button")
        page.wait_for_url("**/submit")
        page.wait_for_selector("#submit-form[data-postern]")
        return codename

    def path(self) -> str | None:
        value: str | None = self.page.get_attribute("#submit-form", "data-postern")
        return value

    def fill(self, message: str, files: list[tuple[str, str, bytes]]) -> None:
        self.page.fill("#message", message)
        payloads = [{"name": n, "mimeType": t, "buffer": data} for n, t, data in files]
        self.page.set_input_files("#files", payloads)  # type: ignore[arg-type]

    def send(self) -> None:
        self.page.click("#submit-form button[type=submit]")

    def status(self) -> str:
        return self.page.inner_text("#postern-status")


@pytest.fixture
def browser(chromium_page: ChromiumPage, relay: Relay) -> Browser:
    page = chromium_page.page
    page.set_default_timeout(30_000)
    browser = Browser(page, relay.base_url)
    page.on("request", browser.record)
    return browser


def assert_no_marker(browser: Browser, relay: Relay, marker: bytes) -> None:
    forms = marker_forms(marker)
    for method, url, body in browser.seen:
        assert not found_in(forms, url.encode()), f"marker in the URL of {method} {url}"
        assert not found_in(forms, body), f"marker in the body of {method} {url}"
    for connection in relay.raw:
        assert not found_in(forms, connection), "marker in what the browser sent"


# -- tests ----------------------------------------------------------------------------------------


def test_message_and_files_are_encrypted_in_the_browser(browser, relay, server):
    marker = new_marker()
    message = "Meet me at the usual place. " + marker.decode() + " Привет, ünïcödé ✓"
    notes = content_with(marker, 200_000)
    video = content_with(marker, 3 * MiB + 12_345)
    browser.log_in()
    assert browser.path() == ENCRYPTING
    strings = browser.strings()
    assert browser.page.inner_text("#postern-notice") == strings["ready"]
    browser.fill(
        message, [("notes.txt", "text/plain", notes), ("body cam.mp4", "video/mp4", video)]
    )
    browser.send()
    browser.page.wait_for_url("**/submit/done", timeout=60_000)

    items = server.items()
    assert [(i.kind, i.envelope_kind, i.filename, i.media_type) for i in items] == [
        ("message", Kind.MESSAGE, "", "text/plain; charset=utf-8"),
        ("file", Kind.FILE, "notes.txt", "text/plain"),
        ("file", Kind.FILE, "body cam.mp4", "video/mp4"),
    ]
    assert items[0].content == message.encode()
    assert items[1].content == notes
    assert items[2].content == video
    assert len({i.submission for i in items}) == 1
    assert server.upload_files() == []

    # Only ciphertext left the browser, all of it through tus; the plain form was not used.
    assert_no_marker(browser, relay, marker)
    assert relay.matching("POST", "/submit") == []
    assert len(relay.matching("POST", "/api/uploads")) == 3
    patched = sum(len(r.body) for r in relay.matching("PATCH", "/api/uploads/"))
    assert patched > len(video) + len(notes)
    # Several chunks per PATCH: the 3 MiB file took a few requests, not one per chunk.
    assert 4 <= len(relay.matching("PATCH", "/api/uploads/")) <= 8
    # The browser's own record agrees with the relay's (bodies included).
    seen_patch = [body for method, _, body in browser.seen if method == "PATCH"]
    assert sum(map(len, seen_patch)) == patched


def _send_one_file(browser: Browser, data: bytes) -> None:
    browser.log_in()
    assert browser.path() == ENCRYPTING
    browser.fill("", [("dump.bin", "application/octet-stream", data)])
    browser.send()


def test_an_upload_cut_off_half_way_resumes_where_the_server_stopped(browser, relay, server):
    data = os.urandom(3 * MiB + 777)
    relay.rule = nth("PATCH", "/api/uploads/", 2, "cut")
    _send_one_file(browser, data)
    # The page waits 1, 2, 4, 8... seconds between tries while the server still holds the cut
    # upload's lock: on a loaded machine that can pass a minute.
    browser.page.wait_for_url("**/submit/done", timeout=180_000)

    [item] = server.items()
    assert (item.kind, item.filename, item.content) == ("file", "dump.bin", data)
    [(cut, arrived)] = relay.cut
    # The script asked the server how much had arrived and went on from there, in the middle
    # of a chunk: it re-sealed that one chunk (chunks are deterministic) instead of starting
    # the envelope again. (Chromium may first resend the cut request on its own; the server
    # refuses that with 409, which the script also recovers from.)
    assert relay.matching("HEAD", "/api/uploads/")
    resumed = cut.offset + arrived
    assert (resumed - header_length(1)) % CT_CHUNK != 0
    following = [p for p in relay.matching("PATCH", "/api/uploads/") if p.offset == resumed]
    assert len(following) == 1
    assert following[0].complete


def test_an_aborted_patch_is_sent_again(browser, relay, server):
    data = os.urandom(2 * MiB + 5)
    count = 0

    def abort_second_patch(route: Route) -> None:
        nonlocal count
        if route.request.method == "PATCH":
            count += 1
            if count == 2:
                route.abort("connectionreset")
                return
        route.continue_()

    browser.page.route("**/api/uploads/*", abort_second_patch)
    _send_one_file(browser, data)
    browser.page.wait_for_url("**/submit/done", timeout=60_000)
    [item] = server.items()
    assert item.content == data
    assert count >= 3
    assert relay.matching("HEAD", "/api/uploads/")


def test_cancel_deletes_the_upload(browser, relay, server):
    relay.rule = nth("PATCH", "/api/uploads/", 2, "hold")
    _send_one_file(browser, os.urandom(3 * MiB))
    assert relay.held.wait(30), "the second PATCH never came"
    assert len(server.upload_files()) == 1  # the upload's bytes (its state is a row)
    strings = browser.strings()
    browser.page.click(f"#postern-status button:text-is('{strings['cancel']}')")
    browser.page.wait_for_function(
        "(text) => document.getElementById('postern-status').textContent === text",
        arg=strings["cancelled"],
    )
    assert relay.matching("DELETE", "/api/uploads/")
    deadline = time.monotonic() + 10
    while server.upload_files() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.upload_files() == []
    assert server.blob_files() == []
    assert server.items() == []
    # The form is usable again.
    assert browser.page.is_enabled("#submit-form button[type=submit]")


def test_a_keyring_replaced_while_the_page_is_open_stops_the_upload(browser, relay, server, team):
    browser.log_in()
    assert browser.path() == ENCRYPTING
    server.install(other_keyring(team, 2)[0])  # the page still announces serial 1
    browser.fill("a message for the old keys", [("a.txt", "text/plain", b"x" * 5000)])
    browser.send()
    strings = browser.strings()
    browser.page.wait_for_selector("#postern-status .error")
    assert browser.status() == strings["stale"]
    assert server.items() == []
    assert server.upload_files() == []
    assert server.blob_files() == []


#: Every text postern.js shows, as the page gives it (data-* of #postern-strings).
STRINGS = {
    "ready", "noCrypto", "whySupport", "whyKeyring", "whySerial", "serverSeals",
    "messageName", "sending", "progress", "retrying", "cancel", "cancelled", "empty",
    "tooMany", "tooLarge", "stale", "expired", "network", "failed", "full", "loggingIn",
    "loginFailed",
    # The page's locale and size units, for the script's sizes in the page's language.
    "locale", "unitGib", "unitMib", "unitKib", "unitB",
}  # fmt: skip


def test_nothing_to_send_is_said_and_nothing_is_sent(browser, relay, server):
    browser.log_in()
    strings = browser.strings()
    assert set(strings) == STRINGS
    assert all(strings.values())
    before = len(relay.requests)
    browser.send()
    browser.page.wait_for_selector("#postern-status .error")
    assert browser.status() == strings["empty"]
    assert [r.path for r in relay.requests[before:]] == []
    assert browser.path() == ENCRYPTING


def _tampered(keyring: bytes) -> bytes:
    """The keyring with one bit of its signature flipped."""
    outer = json.loads(keyring)
    signature = bytearray(base64.b64decode(outer["signature"]))
    signature[0] ^= 1
    outer["signature"] = base64.b64encode(signature).decode()
    return json.dumps(outer).encode()


@pytest.mark.parametrize("served", ["newer serial", "bad signature"])
def test_a_keyring_that_does_not_match_the_page_fails_closed(browser, relay, server, team, served):
    """The script encrypts nothing; the notice says why; the plain form (sealed on the
    server, to the installed keyring) still works."""
    newer, _ = other_keyring(team, 2)
    body = newer if served == "newer serial" else _tampered(team.keyring(1))
    browser.page.route(
        "**/keyring.json",
        lambda route: route.fulfill(status=200, body=body, content_type="application/json"),
    )
    browser.log_in()
    assert browser.path() == PLAIN
    strings = browser.strings()
    reason = strings["whySerial"] if served == "newer serial" else strings["whyKeyring"]
    notice = browser.page.inner_text("#postern-notice")
    assert notice == f"{strings['noCrypto']} {reason} {strings['serverSeals']}"

    data = os.urandom(100_000)
    browser.fill("sent through the plain form", [("plain.bin", "application/x-test", data)])
    browser.send()
    browser.page.wait_for_selector("text=Thank you")
    assert relay.matching("POST", "/api/uploads") == []
    assert len(relay.matching("POST", "/submit")) == 1
    items = server.items()  # opened with the installed keyring's key, not the stranger's
    assert [(i.kind, i.filename, i.content) for i in items] == [
        ("message", "", b"sent through the plain form"),
        ("file", "plain.bin", data),
    ]


def test_the_script_is_small():
    """All the page's JavaScript together stays under 42 KB (40 KB until the page learnt to
    log in again and retry a completion: the login form itself is in the HTML)."""
    js = Path(__file__).resolve().parents[2] / "dropbox" / "static" / "js"
    assert sum(p.stat().st_size for p in js.glob("*.js")) < 42_000


def _completion_keys(relay: Relay) -> list[str]:
    return [json.loads(r.body)["key"] for r in relay.matching("POST", "/api/submissions")]


def test_a_lost_answer_to_creation_is_asked_again_for_the_same_upload(browser, relay, server):
    """The server makes the upload, its answer is lost: the page asks again with the
    capability it chose and gets the same upload, so nothing is left that nobody can resume."""
    data = os.urandom(200_000)
    relay.rule = nth("POST", "/api/uploads", 1, "mute")
    _send_one_file(browser, data)
    browser.page.wait_for_url("**/submit/done", timeout=180_000)
    created = relay.matching("POST", "/api/uploads")
    assert len(created) == 2
    assert [(i.filename, i.content) for i in server.items()] == [("dump.bin", data)]
    assert server.upload_files() == []


def test_a_lost_answer_to_completion_is_asked_again_with_the_same_key(browser, relay, server):
    """The server commits the submission, the answer is lost on its way: the page asks again
    with the same key and is told the same submission, not a 404 and not a second one."""
    data = os.urandom(200_000)
    relay.rule = nth("POST", "/api/submissions", 1, "mute")
    _send_one_file(browser, data)
    browser.page.wait_for_url("**/submit/done", timeout=60_000)
    keys = _completion_keys(relay)
    assert len(keys) == 2
    assert keys[0] == keys[1]
    assert len(keys[0]) >= 22
    items = server.items()
    assert [(i.filename, i.content) for i in items] == [("dump.bin", data)]
    assert server.upload_files() == []


def test_a_server_restart_mid_upload_keeps_the_session_and_resumes(browser, relay, server):
    """Sessions are in the database: after a kill and a restart the upload goes on from where
    the server stopped and completes in the same session, with no new login."""
    data = os.urandom(4 * MiB + 4321)
    relay.rule = nth("PATCH", "/api/uploads/", 2, "hold")
    browser.log_in()
    browser.fill("", [("dump.bin", "application/octet-stream", data)])
    browser.send()
    assert relay.held.wait(30)
    server.kill()
    server.start(timeout=30)
    browser.page.wait_for_url("**/submit/done", timeout=60_000)
    assert relay.matching("HEAD", "/api/uploads/")
    patches = relay.matching("PATCH", "/api/uploads/")
    assert all(p.offset > 0 for p in patches[2:])
    items = server.items()
    assert [(i.filename, i.content) for i in items] == [("dump.bin", data)]
    assert len(relay.matching("POST", "/api/uploads")) == 1


def test_an_upload_whose_session_ended_resumes_and_asks_to_log_in_again(browser, relay, server):
    """A session that ended while the upload ran (here: the server was killed and its
    sessions removed, as their lifetime would): the upload goes on with its capability from
    where the server stopped, and completing asks for the codename in the page, then
    finishes."""
    data = os.urandom(4 * MiB + 4321)
    relay.rule = nth("PATCH", "/api/uploads/", 2, "hold")
    codename = browser.log_in()
    strings = browser.strings()
    browser.fill("", [("dump.bin", "application/octet-stream", data)])
    browser.send()
    assert relay.held.wait(30)
    server.kill()
    execute(server.data_dir, "DELETE FROM source_sessions")
    server.start(timeout=30)
    browser.page.wait_for_selector("#postern-login:not([hidden])", timeout=60_000)
    assert browser.page.is_visible("#postern-codename")
    # The first PATCH's bytes were kept: the page resumed from HEAD, not from zero.
    heads = relay.matching("HEAD", "/api/uploads/")
    assert heads
    patches = relay.matching("PATCH", "/api/uploads/")
    assert all(p.offset > 0 for p in patches[2:])
    assert server.items() == []
    # A wrong codename is said in the page; the right one finishes the submission.
    browser.page.fill("#postern-codename", "not a codename")
    browser.page.click("#postern-login button")
    browser.page.wait_for_function(
        "() => !document.querySelector('#postern-login button').disabled"
    )
    assert browser.page.inner_text("#postern-login-note") == strings["loginFailed"]
    assert browser.page.is_visible("#postern-login")
    browser.page.fill("#postern-codename", codename)
    browser.page.click("#postern-login button")
    browser.page.wait_for_url("**/submit/done", timeout=60_000)
    items = server.items()
    assert [(i.filename, i.content) for i in items] == [("dump.bin", data)]
    assert server.upload_files() == []
    assert len(relay.matching("POST", "/api/uploads")) == 1
