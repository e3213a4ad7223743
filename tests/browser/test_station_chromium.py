"""The station UI in Chromium, against the real ``journalist ui`` process on loopback.

One journey, as a journalist would take it: unlock, import a bundle, read a message (and
see that none of the hostile corpus runs), download a file byte-identical, search, star and
set a status, reply, restart the station (star and status are still there), write the
outbound bundle, and check that it verifies and carries the reply to the source.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page

from crypto import Kind, open_bytes
from crypto.bundle import OutboundReply, read_outbound_bundle
from tests.journalist_ui.storekit import (
    Entry,
    FakeSource,
    file,
    make_home,
    message,
    open_home,
    pin,
    server_key,
    write_bundle,
)
from tests.journalist_ui.test_web_xss import CORPUS
from tests.support.cli import JOURNALIST, PASSPHRASE
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(300)

SECRET_FILE = bytes(range(256)) * 1000 + b"the end"
MESSAGE = "The contracts were signed on the 3rd; the minutes are attached."
REPLY = "Thank you. Can you tell us who else was in the room?"


class StationUI:
    """``journalist ui`` running in a subprocess."""

    def __init__(self, home: Path, port: int) -> None:
        self.home, self.port = home, port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POSTERN_")}
        self.process = subprocess.Popen(
            [str(JOURNALIST), "ui", "--home", str(self.home), "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        self.output.append(line)
        assert f"The station UI is at {self.url}/" in line, line

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        rest, _ = self.process.communicate(timeout=30)
        self.output.append(rest)
        self.process = None


@pytest.fixture
def station(tmp_path: Path) -> Iterator[tuple[StationUI, Path, FakeSource]]:
    home = make_home(tmp_path / "home")
    key = server_key()
    pin(home, key)
    source = FakeSource()
    hostile_names = [text.replace("/", "")[:200] for text in CORPUS]
    entries = [
        Entry("1", source, "message", message(home, MESSAGE)),
        Entry("2", source, "file", file(home, SECRET_FILE, "minutes.pdf")),
    ]
    for number, text in enumerate(CORPUS):
        entries.append(Entry(str(10 + number), source, "message", message(home, text)))
    for number, name in enumerate(hostile_names):
        entries.append(Entry(str(30 + number), source, "file", file(home, b"x", name, "text/html")))
    bundle = write_bundle(tmp_path / "inbound.bundle", key, entries)
    ui = StationUI(home, free_port())
    try:
        yield ui, bundle, source
    finally:
        ui.stop()
        output = "".join(ui.output)
        assert "Traceback" not in output, output


@pytest.fixture
def page(chromium_browser: Browser) -> Iterator[Page]:
    context = chromium_browser.new_context(accept_downloads=True)
    try:
        page = context.new_page()
        dialogs: list[str] = []

        def on_dialog(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.dialogs = dialogs  # type: ignore[attr-defined]
        yield page
    finally:
        context.close()


def unlock(page: Page, ui: StationUI) -> None:
    page.goto(ui.url + "/")
    assert page.url == ui.url + "/unlock"
    page.select_option("#journalist", "alice")
    page.fill("#passphrase", PASSPHRASE)
    page.click("#unlock")
    page.wait_for_load_state()
    assert page.url == ui.url + "/", page.content()


def assert_no_script_ran(page: Page) -> None:
    assert page.evaluate("() => window.__xss") is None
    assert page.dialogs == []  # type: ignore[attr-defined]


def test_station_journey(page: Page, station, tmp_path: Path) -> None:
    ui, bundle, source = station
    ui.start()
    unlock(page, ui)
    assert "No sources yet" in page.content()

    # Import, with the progress page refreshing itself until done.
    page.goto(ui.url + "/imports")
    page.fill("#bundle-path", str(bundle))
    page.click("#import")
    page.wait_for_selector("#import-done, #import-error", timeout=120_000)
    assert page.locator("#import-done").count() == 1, page.text_content("main")
    assert "new source" in (page.text_content("#import-done") or "")

    # Read the message; the hostile corpus shows as text and runs nothing.
    page.goto(ui.url + "/")
    page.click("a.designation")
    messages = page.locator("pre.message").all_text_contents()
    assert MESSAGE in messages
    for text in CORPUS:
        assert any(text in shown for shown in messages), text
    assert page.locator(".filename", has_text="invoice").count() == 1
    assert_no_script_ran(page)
    source_url = page.url

    # Download the file: an attachment, byte for byte the original.
    with page.expect_download() as download_info:
        page.locator("article", has_text="minutes.pdf").locator("a[download]").click()
    download = download_info.value
    assert download.suggested_filename == "minutes.pdf"
    assert Path(download.path()).read_bytes() == SECRET_FILE

    # Search finds the message.
    page.goto(ui.url + "/search?q=contracts+minutes")
    assert page.locator("ol.hits li").count() == 1
    assert "contracts" in (page.locator("ol.hits mark").first.text_content() or "")
    assert_no_script_ran(page)

    # Star, status and a reply.
    page.goto(source_url)
    page.click("#star")
    page.wait_for_selector("text=Starred.")
    page.select_option("#status", "verified")
    page.click("#set-status")
    page.wait_for_selector("text=Status set to verified.")
    page.fill("#reply-text", REPLY)
    page.click("#send-reply")
    page.wait_for_selector("text=Reply sealed and queued")
    assert REPLY in page.locator("pre.message").all_text_contents()

    # A restart: a new process, a new unlock; the star and the status are kept.
    ui.stop()
    ui.start()
    unlock(page, ui)
    assert page.locator("tr", has_text="verified").locator(".star").count() == 1
    page.goto(source_url)
    assert (page.text_content("#star") or "").strip() == "Unstar"
    assert page.eval_on_selector("#status", "s => s.value") == "verified"

    # The language: chosen with the picker on any page, kept for alice across lock and unlock.
    page.click("#lang-ru")
    page.wait_for_load_state()
    assert page.url == source_url
    assert page.get_attribute("html", "lang") == "ru"
    # The reply box has a label a screen reader reads (its accessible name).
    reply_box = page.get_by_label(re.compile("^Ваш ответ для "))
    assert reply_box.get_attribute("id") == "reply-text"
    page.click("button[accesskey=k]")  # Lock
    page.wait_for_load_state()
    assert page.get_attribute("html", "lang") == "ru"
    assert "Станция заблокирована" in page.content()
    unlock(page, ui)
    assert page.get_attribute("html", "lang") == "ru"
    page.click("#lang-en")
    page.wait_for_load_state()
    assert page.get_attribute("html", "lang") == "en"

    # The reply goes out: the outbound bundle verifies and the source can read the reply.
    out = tmp_path / "usb"
    out.mkdir()
    page.goto(ui.url + "/outbound")
    assert "reply" in page.content()
    page.fill("#outbound-folder", str(out))
    page.click("#export-outbound")
    page.wait_for_selector("text=Outbound bundle written")
    assert_no_script_ran(page)
    ui.stop()

    (written,) = out.iterdir()
    unlocked = open_home(ui.home)
    signer = unlocked.signing_key.public
    unlocked.lock()
    envelopes: list[tuple[OutboundReply, bytearray]] = []

    class Sink:
        def __init__(self, data: bytearray) -> None:
            self.data = data

        def write(self, data: bytes, /) -> int:
            self.data += data
            return len(data)

        def commit(self) -> None:
            pass

        def abort(self) -> None:
            self.data.clear()

    def open_sink(reply: OutboundReply) -> Sink:
        envelopes.append((reply, bytearray()))
        return Sink(envelopes[-1][1])

    with written.open("rb") as src:
        manifest = read_outbound_bundle(src, {signer.key_id: signer.key}, open_sink)
    assert {"1", "2", "10", "30"} <= set(manifest.acknowledged)  # the import is acknowledged
    ((reply, envelope),) = envelopes
    assert reply.source_id == source.source_id
    metadata, plaintext = open_bytes(bytes(envelope), [source.reply.secret])
    assert (metadata.kind, plaintext.decode()) == (Kind.REPLY, REPLY)
