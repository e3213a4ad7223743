"""Real browsers for tests: a loopback static server, Chromium and Firefox ESR.

``../shared/notes/browsers.md`` describes what works on the test machines:

* Chromium is Debian's ``/usr/bin/chromium`` driven by Playwright (never ``playwright
  install``: no browser is downloaded).
* Firefox ESR, the engine Tor Browser is built on, is driven over its built-in Marionette
  server with Mozilla's ``marionette_driver``. Each instance gets a fresh profile whose
  ``user.js`` picks the Marionette port, approximates one of Tor Browser's security levels
  (:data:`SECURITY_LEVELS`) and turns off every background connection (:data:`QUIET_PREFS`).

Both browsers are wrapped in the small common interface :class:`BrowserPage`, so that a test
can run the same steps in each.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from playwright.sync_api import Page

from tests.support.ports import free_port, wait_for_port

with warnings.catch_warnings():
    # Importing marionette_driver warns twice, in code we do not own: mozinfo calls the
    # deprecated distro.linux_distribution() and mozrunner imports telnetlib (for Android
    # emulators). Only these two are silenced, and only during this import.
    for message in (r"distro\.linux_distribution\(\) is deprecated", r"'telnetlib' is deprecated"):
        warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
    from marionette_driver.by import By
    from marionette_driver.errors import (
        MarionetteException,
        NoSuchElementException,
        StaleElementException,
    )
    from marionette_driver.marionette import Marionette

REPO = Path(__file__).resolve().parents[2]

#: URL prefix -> directory served under it by :class:`StaticServer` by default.
DEFAULT_ROUTES: Mapping[str, Path] = {
    "/static/": REPO / "dropbox" / "static",
    "/vectors/": REPO / "tests" / "vectors",
    "/pages/": REPO / "tests" / "browser" / "pages",
}

#: The strict policy every response carries, so that pages are tested under a real CSP
#: (no inline script, no eval, no third-party origin).
TEST_CSP = "default-src 'none'; script-src 'self'; connect-src 'self'"

CONTENT_TYPES: Mapping[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}

#: Chromium flags (browsers.md): runs as root in a container and never talks to Google.
#: Measured (strace): a few requests still start, so anything that is not loopback goes to
#: a proxy that is not there (Chromium never proxies loopback) and no name resolves.
CHROMIUM_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--proxy-server=socks5://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)

#: Tor Browser's security levels, approximated with Firefox preferences (browsers.md).
SECURITY_LEVELS: Mapping[str, Mapping[str, bool]] = {
    "standard": {},
    "safer": {
        "javascript.options.wasm": False,
        "javascript.options.ion": False,
        "javascript.options.baselinejit": False,
        "javascript.options.native_regexp": False,
        "javascript.options.asmjs": False,
    },
    "safest": {"javascript.enabled": False},
}

#: Preferences that keep Firefox off the network: nothing may leave loopback. Every remote
#: service is disabled or pointed at a closed loopback port, and as a last line a SOCKS proxy
#: that does not exist catches anything else (Firefox never proxies loopback addresses).
QUIET_PREFS: Mapping[str, bool | int | str] = {
    # Updates of the browser, add-ons, system add-ons, plugins and search engines.
    "app.update.disabledForTesting": True,
    "app.update.auto": False,
    "app.update.checkInstallTime": False,
    "extensions.update.enabled": False,
    "extensions.systemAddon.update.enabled": False,
    "extensions.systemAddon.update.url": "",
    "extensions.getAddons.cache.enabled": False,
    "extensions.blocklist.enabled": False,
    "media.gmp-manager.url": "",
    "media.gmp-gmpopenh264.enabled": False,
    "browser.search.update": False,
    # Telemetry, studies and data reporting.
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.archive.enabled": False,
    "toolkit.telemetry.server": "",
    "toolkit.telemetry.shutdownPingSender.enabled": False,
    "toolkit.telemetry.newProfilePing.enabled": False,
    "toolkit.telemetry.firstShutdownPing.enabled": False,
    "toolkit.telemetry.updatePing.enabled": False,
    "toolkit.telemetry.bhrPing.enabled": False,
    "toolkit.coverage.endpoint.base": "",
    "datareporting.healthreport.uploadEnabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "app.normandy.enabled": False,
    "app.normandy.api_url": "",
    "app.shield.optoutstudies.enabled": False,
    "browser.discovery.enabled": False,
    # Captive portal and connectivity checks.
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "captivedetect.canonicalURL": "",
    # Safe Browsing lists and lookups.
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.downloads.remote.enabled": False,
    "browser.safebrowsing.provider.google.updateURL": "",
    "browser.safebrowsing.provider.google.gethashURL": "",
    "browser.safebrowsing.provider.google4.updateURL": "",
    "browser.safebrowsing.provider.google4.gethashURL": "",
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "browser.safebrowsing.provider.mozilla.gethashURL": "",
    # Remote settings (and what syncs through them), certificate revocation lists. Release
    # builds honour this server only with MOZ_REMOTE_SETTINGS_DEVTOOLS=1 (FIREFOX_ENV).
    "services.settings.server": "http://127.0.0.1:9/v1",
    "security.remote_settings.crlite_filters.enabled": False,
    "security.remote_settings.intermediates.enabled": False,
    "security.OCSP.enabled": 0,
    # Home page, new tab page, suggestions, geolocation, push, accounts, translations.
    "browser.startup.page": 0,
    "browser.startup.homepage": "about:blank",
    "browser.newtabpage.enabled": False,
    "browser.newtabpage.activity-stream.feeds.system.topstories": False,
    "browser.newtabpage.activity-stream.feeds.topsites": False,
    "browser.newtabpage.activity-stream.telemetry": False,
    "browser.topsites.contile.enabled": False,
    "browser.urlbar.quicksuggest.enabled": False,
    "browser.urlbar.speculativeConnect.enabled": False,
    "browser.places.speculativeConnect.enabled": False,
    "browser.region.update.enabled": False,
    "browser.region.network.url": "",
    "browser.shell.checkDefaultBrowser": False,
    "browser.translations.enable": False,
    "geo.enabled": False,
    "geo.provider.network.url": "",
    "dom.push.connection.enabled": False,
    "dom.push.serverURL": "",
    "identity.fxaccounts.enabled": False,
    # No name resolution at all (as in Tor Browser; tests use IP literals), no prefetching,
    # speculative connections or DNS over HTTPS.
    "network.dns.disabled": True,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.predictor.enabled": False,
    "network.http.speculative-parallel-limit": 0,
    "network.trr.mode": 5,
    # Last line: everything that is not loopback goes to a proxy that is not there.
    "network.proxy.type": 1,
    "network.proxy.socks": "127.0.0.1",
    "network.proxy.socks_port": 9,
    "network.proxy.socks_version": 5,
    "network.proxy.socks_remote_dns": True,
    "network.proxy.socks5_remote_dns": True,
    "network.proxy.no_proxies_on": "",
    "network.proxy.allow_hijacking_localhost": False,
}

#: Environment for Firefox: no crash reporter, and the remote settings server of QUIET_PREFS is
#: honoured (release builds otherwise ignore it and contact Mozilla's).
FIREFOX_ENV: Mapping[str, str] = {
    "MOZ_CRASHREPORTER_DISABLE": "1",
    "MOZ_REMOTE_SETTINGS_DEVTOOLS": "1",
}


# -- static server ---------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    timeout = 30  # seconds a connection may stay idle (so shutdown never waits forever)
    server_version = "postern-test"
    sys_version = ""

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _serve(self, *, body: bool) -> None:
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        self.server.requests.append(path)
        target = self._resolve(path)
        if target is None:
            data, status, ctype = b"not found\n", 404, "text/plain; charset=utf-8"
        else:
            data, status = target.read_bytes(), 200
            ctype = CONTENT_TYPES.get(target.suffix, "application/octet-stream")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Security-Policy", self.server.csp)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _resolve(self, path: str) -> Path | None:
        for prefix, root in self.server.routes.items():
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
                return None
            target = root.joinpath(*parts).resolve()
            if target.is_relative_to(root.resolve()) and target.is_file():
                return target
            return None
        return None

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are recorded in ``server.requests``, not logged."""


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: Mapping[str, Path], csp: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes = dict(routes)
        self.csp = csp
        self.requests: list[str] = []


class StaticServer:
    """Serves directories on 127.0.0.1 (a random port) from a thread, with a strict CSP.

    Use it as a context manager; every response carries ``csp``. ``requests`` lists the paths
    asked for, in order.
    """

    def __init__(self, routes: Mapping[str, Path] = DEFAULT_ROUTES, csp: str = TEST_CSP) -> None:
        self._server = _Server(routes, csp)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="static-server", daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[str]:
        return self._server.requests

    def url(self, path: str) -> str:
        return self.base_url + path

    def __enter__(self) -> StaticServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()


# -- a common page interface -----------------------------------------------------------------


class BrowserPage(Protocol):
    """What the tests need from a browser tab, in Chromium and in Firefox alike."""

    name: str

    def goto(self, url: str) -> None:
        """Load url and wait for the load event."""

    def text(self, element_id: str) -> str | None:
        """The text of the element with this id, or None when there is none."""

    def displayed(self, element_id: str) -> bool:
        """Whether the element with this id exists and is shown."""

    def evaluate(self, function: str, arg: object = None, timeout: float = 60) -> Any:
        """Call the JavaScript function expression (it may be async) with one JSON argument
        in the page's own context and return its JSON result."""


def wait_for_text(
    page: BrowserPage,
    element_id: str,
    done: Callable[[str | None], bool],
    timeout: float,
) -> str | None:
    """Poll an element's text until ``done(text)``; return the last text seen either way."""
    deadline = time.monotonic() + timeout
    while True:
        text = page.text(element_id)
        if done(text) or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


class ChromiumPage:
    """A Playwright page of Chromium."""

    name = "chromium"

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    def goto(self, url: str) -> None:
        self.page.goto(url, wait_until="load", timeout=30_000)

    def text(self, element_id: str) -> str | None:
        result: str | None = self.page.evaluate(
            "(id) => { const e = document.getElementById(id); return e && e.textContent; }",
            element_id,
        )
        return result

    def displayed(self, element_id: str) -> bool:
        return self.page.locator(f"#{element_id}").is_visible()

    def evaluate(self, function: str, arg: object = None, timeout: float = 60) -> Any:
        # page.evaluate has no timeout of its own: race the call against one in the page.
        bounded = (
            f"(arg) => Promise.race([({function})(arg), new Promise((_, reject) => setTimeout("
            f"() => reject(new Error('timed out after {timeout} s')), {int(timeout * 1000)}))])"
        )
        return self.page.evaluate(bounded, arg)


# -- Firefox ESR over Marionette -------------------------------------------------------------


def user_js(prefs: Mapping[str, bool | int | str]) -> str:
    return "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items())


class Firefox:
    """Firefox ESR with a fresh profile at one security level, driven over Marionette.

    ``start`` launches ``firefox-esr --headless --marionette --no-remote --profile DIR`` in a
    new process group and opens a session; ``close`` always kills the whole group and removes
    the profile. It is also a :class:`BrowserPage` for its one tab.
    """

    def __init__(
        self,
        binary: str,
        level: str = "standard",
        *,
        extra_prefs: Mapping[str, bool | int | str] | None = None,
        startup_timeout: float = 60,
    ) -> None:
        if level not in SECURITY_LEVELS:
            raise ValueError(f"unknown security level {level!r}")
        self.name = f"firefox-{level}"
        self.binary = binary
        self.level = level
        self.extra_prefs = dict(extra_prefs or {})
        self.startup_timeout = startup_timeout
        self.profile: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.client: Marionette | None = None
        self._log: Any = None

    def start(self) -> Firefox:
        self.profile = Path(tempfile.mkdtemp(prefix="postern-firefox-"))
        port = free_port()
        prefs: dict[str, bool | int | str] = {"marionette.port": port}
        prefs.update(QUIET_PREFS)
        prefs.update(SECURITY_LEVELS[self.level])
        prefs.update(self.extra_prefs)
        (self.profile / "user.js").write_text(user_js(prefs), encoding="utf-8")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self.process = subprocess.Popen(
            [self.binary, "--headless", "--marionette", "--no-remote", "--profile",
             str(self.profile)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **FIREFOX_ENV},
            start_new_session=True,  # its own process group: close() ends every process in it
        )  # fmt: skip
        wait_for_port(
            port, self.process, timeout=self.startup_timeout, log=self.log, what="firefox"
        )
        self.client = Marionette(host="127.0.0.1", port=port, socket_timeout=120)
        self.client.start_session(timeout=self.startup_timeout)
        self.client.timeout.script = 120
        self.client.timeout.page_load = 60
        return self

    def log(self, limit: int = 4000) -> str:
        """The end of the browser's own output (for failure messages)."""
        if self._log is None or self._log.closed:
            return ""
        self._log.seek(0)
        return str(self._log.read()[-limit:].decode("utf-8", "replace"))

    def close(self) -> None:
        try:
            if self.client is not None:
                with contextlib.suppress(OSError, MarionetteException):
                    self.client.delete_session()
                self.client.cleanup_ran = True  # nothing left for its __del__ to do
        finally:
            self.client = None
            if self.process is not None:
                # The group holds the browser, its content processes and its crash helper.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
                self.process = None
            if self._log is not None:
                self._log.close()
            if self.profile is not None:
                shutil.rmtree(self.profile, ignore_errors=True)
                self.profile = None

    def __enter__(self) -> Firefox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def marionette(self) -> Marionette:
        if self.client is None:
            raise RuntimeError("firefox is not started")
        return self.client

    # BrowserPage

    def goto(self, url: str) -> None:
        self.marionette.navigate(url)

    def text(self, element_id: str) -> str | None:
        try:
            element = self.marionette.find_element(By.ID, element_id)
            # textContent, not the rendered text: it works with JavaScript off (no page
            # script runs: Marionette reads the property from its own privileged code).
            value = element.get_property("textContent")
        except (NoSuchElementException, StaleElementException):
            # Not there, or the page navigated between finding the element and reading it.
            return None
        return None if value is None else str(value)

    def displayed(self, element_id: str) -> bool:
        try:
            return bool(self.marionette.find_element(By.ID, element_id).is_displayed())
        except (NoSuchElementException, StaleElementException):
            return False

    def evaluate(self, function: str, arg: object = None, timeout: float = 60) -> Any:
        # sandbox=None runs in the page's own global (no Xray wrappers), so the page's
        # objects are visible; a returned Promise is awaited by Marionette.
        return self.marionette.execute_script(
            f"return ({function})(arguments[0]);",
            script_args=[arg],
            new_sandbox=False,
            sandbox=None,
            script_timeout=int(timeout * 1000),
        )
