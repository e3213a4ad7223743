"""The submit page in Firefox ESR at Tor Browser's three security levels, against a real server.

At "standard" and "safer" the page's script encrypts in the browser and uploads with tus; at
"safest" no script runs and the plain form goes to the server, which seals it as it streams
in. Either way the submission must open, byte for byte, with the journalist's key. Which path
was taken is read from the relay's record of what the browser sent (test_submit_chromium.py
has the relay and the server): tus requests and no plaintext on the wire, or one multipart
``POST /submit`` that carries the plaintext.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from marionette_driver.by import By
from marionette_driver.errors import NoSuchElementException, StaleElementException

from crypto import Kind
from tests.browser.browsers import Firefox
from tests.browser.conftest import FirefoxFactory
from tests.browser.live import (
    ENCRYPTING,
    LiveServer,
    MiB,
    Relay,
    content_with,
    found_in,
    marker_forms,
    new_marker,
)

pytestmark = pytest.mark.timeout(120)


def wait_until(what: str, check: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.1)


def heading(browser: Firefox) -> str:
    try:
        return str(browser.marionette.find_element(By.TAG_NAME, "h1").get_property("textContent"))
    except (NoSuchElementException, StaleElementException):
        # Not there yet, or the page navigated between finding the heading and reading it.
        return ""


def form_path(browser: Firefox) -> str | None:
    form = browser.marionette.find_element(By.ID, "submit-form")
    value = form.get_attribute("data-postern")
    return None if value is None else str(value)


def click(browser: Firefox, selector: str) -> None:
    browser.marionette.find_element(By.CSS_SELECTOR, selector).click()


@pytest.mark.parametrize("level", ["standard", "safer", "safest"])
def test_a_submission_at_each_security_level(
    firefox: FirefoxFactory, server: LiveServer, relay: Relay, level: str
) -> None:
    browser = firefox(level)
    marker = new_marker()
    message = f"Sent from Firefox at {level}: {marker.decode()} — end"
    data = content_with(marker, 2 * MiB + 4321)

    browser.goto(relay.base_url + "/generate")
    click(browser, "main form button")
    wait_until("the codename is shown", lambda: browser.text("codename"))
    click(browser, "main form button")
    wait_until("the submit page is shown", lambda: browser.text("submit-form") is not None)
    if level == "safest":
        time.sleep(0.5)  # time for a script to start, were one allowed to
        assert form_path(browser) is None
        assert not browser.displayed("postern-notice")
    else:
        wait_until("the script is ready", lambda: form_path(browser) is not None)
        assert form_path(browser) == ENCRYPTING

    with tempfile.TemporaryDirectory(prefix="postern-firefox-files-") as files:
        evidence = Path(files) / "evidence.pdf"
        evidence.write_bytes(data)
        browser.marionette.find_element(By.ID, "message").send_keys(message)
        browser.marionette.find_element(By.ID, "files").send_keys(str(evidence))
        click(browser, "#submit-form button[type=submit]")
        wait_until("the submission is confirmed", lambda: "Thank you" in heading(browser), 60)

    items = server.items()
    assert [(i.kind, i.envelope_kind, i.filename, i.media_type) for i in items] == [
        ("message", Kind.MESSAGE, "", "text/plain; charset=utf-8"),
        ("file", Kind.FILE, "evidence.pdf", "application/pdf"),
    ]
    assert items[0].content == message.encode()
    assert items[1].content == data
    assert server.upload_files() == []

    forms = marker_forms(marker)
    plain = relay.matching("POST", "/submit")
    uploads = relay.matching("POST", "/api/uploads")
    if level == "safest":
        # The plain form: one multipart request carrying the plaintext, sealed on the server.
        assert uploads == []
        assert relay.matching("PATCH", "/api/uploads/") == []
        assert len(plain) == 1
        assert plain[0].headers["content-type"].startswith("multipart/form-data")
        assert found_in(forms, plain[0].body)
    else:
        # The script path: envelopes made in the browser, and no plaintext on the wire.
        assert plain == []
        assert len(uploads) == 2
        assert relay.matching("PATCH", "/api/uploads/")
        assert len(relay.matching("POST", "/api/submissions")) == 1
        assert not any(found_in(forms, sent) for sent in relay.raw)
