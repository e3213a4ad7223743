"""Fixtures that start real browsers against a loopback static server (see browsers.py).

* ``static_server``: serves dropbox/static at /static/, tests/vectors at /vectors/ and
  tests/browser/pages at /pages/, every response with a strict CSP.
* ``chromium_page``: a Playwright page of /usr/bin/chromium in a fresh browser context.
* ``firefox``: ``firefox(level)`` gives Firefox ESR at a Tor Browser security level
  ("standard", "safer" or "safest"), started once per test session and level.
* ``browser_page``: parametrized over Chromium and Firefox at "standard" and "safer", the
  levels at which pages run scripts.

A missing browser fails the test (tests.conftest.require_tool): they are never skipped.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.browser.browsers import CHROMIUM_ARGS, BrowserPage, ChromiumPage, Firefox, StaticServer
from tests.browser.live import LiveServer, Relay
from tests.conftest import require_tool
from tests.support.team import Team

FirefoxFactory = Callable[[str], Firefox]


@pytest.fixture(scope="session")
def static_server() -> Iterator[StaticServer]:
    with StaticServer() as server:
        yield server


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def chromium_browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=require_tool("chromium"),
        headless=True,
        args=list(CHROMIUM_ARGS),
        timeout=60_000,
    )
    yield browser
    browser.close()


@pytest.fixture
def chromium_page(chromium_browser: Browser) -> Iterator[ChromiumPage]:
    """A page in a new browser context: fresh storage, cookies and cache for every test."""
    context = chromium_browser.new_context()
    try:
        yield ChromiumPage(context.new_page())
    finally:
        context.close()


@pytest.fixture(scope="session")
def firefox() -> Iterator[FirefoxFactory]:
    binary = require_tool("firefox-esr")
    running: dict[str, Firefox] = {}

    def get(level: str) -> Firefox:
        if level not in running:
            browser = Firefox(binary, level)
            running[level] = browser
            browser.start()
        return running[level]

    try:
        yield get
    finally:
        for browser in running.values():
            browser.close()


@pytest.fixture(params=["chromium", "firefox-standard", "firefox-safer"])
def browser_page(request: pytest.FixtureRequest) -> BrowserPage:
    if request.param == "chromium":
        page: BrowserPage = request.getfixturevalue("chromium_page")
        return page
    factory: FirefoxFactory = request.getfixturevalue("firefox")
    return factory(request.param.removeprefix("firefox-"))


# -- a live source interface with a relay (tests/browser/live.py) -------------------------------


@pytest.fixture(scope="module")
def team() -> Team:
    return Team()


@pytest.fixture
def server(team: Team) -> Iterator[LiveServer]:
    with tempfile.TemporaryDirectory(prefix="postern-live-") as base:
        live = LiveServer(Path(base), team)
        try:
            yield live
        finally:
            live.stop()
        output = live.output()
        assert "Traceback" not in output
        assert "unhandled" not in output


@pytest.fixture
def relay(server: LiveServer) -> Iterator[Relay]:
    relay = Relay(server.port)
    try:
        yield relay
    finally:
        relay.close()
