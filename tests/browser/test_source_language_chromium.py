# ruff: noqa: RUF001  (Russian text on the pages is the subject here)
"""The source pages in Chromium against a real server, in the source's own language and with
the newsroom's branding: the chosen language survives the script path, logging out and in;
the script writes sizes in the page's language; the logo loads under the pages' CSP."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser.browsers import ChromiumPage
from tests.browser.live import LiveServer
from tests.dropbox import logo_samples
from tests.support.cli import DROPBOX, run_tool
from tests.support.team import Team

pytestmark = pytest.mark.timeout(120)

#: The largest file the script path takes here: 1.5 MiB ("1,5 МиБ" in Russian).
LARGEST = 3 << 19


@pytest.fixture
def server(team: Team) -> Iterator[LiveServer]:
    with tempfile.TemporaryDirectory(prefix="postern-live-") as base:
        live = LiveServer(Path(base), team, max_resumable_file_bytes=LARGEST)
        try:
            yield live
        finally:
            live.stop()
        assert "Traceback" not in live.output()


@pytest.fixture
def page(chromium_page: ChromiumPage) -> Page:
    chromium_page.page.set_default_timeout(30_000)
    return chromium_page.page


def html_lang(page: Page) -> str | None:
    return page.get_attribute("html", "lang")


def test_the_language_stays_chosen_through_sending_logging_out_and_in(page, server):
    page.goto(server.url + "/")
    page.click("nav.languages a[hreflang=ru]")
    assert page.url.endswith("/?lang=ru")
    page.click("main a[href^='/generate']")
    page.click("main form button")
    codename = page.inner_text("#codename")
    page.click("main form button")
    page.wait_for_url("**/submit?lang=ru")
    page.wait_for_selector("#submit-form[data-postern=encrypt]")
    assert html_lang(page) == "ru"

    # Too large for the script path: the refusal gives the limit in Russian.
    page.set_input_files(
        "#files", {"name": "big.bin", "mimeType": "video/mp4", "buffer": b"x" * (2 << 20)}
    )
    page.click("#submit-form button[type=submit]")
    status = page.inner_text("#postern-status")
    assert "1,5 МиБ" in status, status
    assert "MiB" not in status

    # Sent through the script path: its last page is still in Russian.
    page.set_input_files("#files", [])
    page.fill("#message", "Привет")
    page.click("#submit-form button[type=submit]")
    page.wait_for_url("**/submit/done?lang=ru")
    assert html_lang(page) == "ru"

    page.click("header form button")  # log out
    page.wait_for_selector("text=Вы вышли")
    assert html_lang(page) == "ru"
    page.click("header nav a[href^='/login']")
    page.fill("#codename", codename)
    page.click("main form button")
    page.wait_for_url("**/replies?lang=ru")
    assert html_lang(page) == "ru"
    # No cookie holds the choice: the session cookie is the only one.
    assert [c["name"] for c in page.context.cookies()] == ["postern_session"]


def test_the_newsrooms_name_introduction_and_logo_are_shown(page, server, chromium_page):
    data_dir = str(server.data_dir)
    logo = Path(server.data_dir).parent / "logo.jpg"
    logo.write_bytes(logo_samples.jpeg_with_metadata())
    intro = Path(server.data_dir).parent / "intro.txt"
    intro.write_text("Мы — редакция «Север».\n\nПишите нам.", encoding="utf-8")
    for args in (
        ("set-name", "--data-dir", data_dir, "Редакция «Север»"),
        ("set-intro", "--data-dir", data_dir, "--lang", "ru", str(intro)),
        ("set-logo", "--data-dir", data_dir, str(logo)),
    ):
        done = run_tool(DROPBOX, "brand", *args)
        assert done.returncode == 0, done.stderr
    page.goto(server.url + "/?lang=ru")
    assert page.inner_text(".site-name").strip() == "Редакция «Север»"
    assert page.title().endswith("– Редакция «Север»")
    assert page.inner_text(".intro") == "Мы — редакция «Север».\n\nПишите нам."
    size = page.evaluate(
        "() => { const i = document.querySelector('.site-name img');"
        " return i.complete && [i.naturalWidth, i.naturalHeight]; }"
    )
    assert size == [12, 7]
    assert not [line for line in chromium_page.console if "Content Security Policy" in line]
