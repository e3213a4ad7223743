"""The station UI in Russian, Belarusian and Ukrainian: complete catalogues, no English left on
any page, the language kept per journalist, and a label on every form field.

As for the source interface (tests/dropbox/test_i18n.py, whose catalogue helpers are reused),
the catalogues are checked against a fresh extraction with journalist_ui/babel.cfg, then every
page a journalist can see is rendered in each language and searched for English. Text the
station shows as it is (names of sources and journalists, file names, statuses the team
named, decrypted content, the English ledger report) is in elements marked
``translate="no"`` (the HTML attribute for exactly that) and is not searched.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Final

import pytest
from flask import abort
from sqlalchemy import select
from werkzeug.test import TestResponse

from journalist_ui import keys
from journalist_ui.importer import ImportResult
from journalist_ui.store.models import Preference
from journalist_ui.web.language import DEFAULT_LANGUAGE, LANGUAGES
from journalist_ui.web.rewrap import RewrapSummary
from tests.journalist_ui.storekit import make_home
from tests.journalist_ui.webkit import Clock, WebClient, add_item, add_source, make_app
from tests.support.catalogues import Translations, ids, messages
from tests.support.cli import MEMLIMIT, PASSPHRASE

PACKAGE_DIR: Final = Path(__file__).resolve().parents[2] / "journalist_ui"
WEB_DIR: Final = PACKAGE_DIR / "web"
LOCALES: Final = tuple(code for code, _ in LANGUAGES if code != DEFAULT_LANGUAGE)
TRANSLATIONS: Final = Translations(PACKAGE_DIR, WEB_DIR, LOCALES)
NOW: Final = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
BOB: Final = "bob's very own passphrase"

#: Kept as they are in every language: names, formats, key names and units.
KEPT_AS_IS: Final = (
    "Postern", "SHA-256", "OpenPGP", "mat2", "USB", "ASCII", "Debian", "Alt+L", "Alt+S",
    "Alt+I", "Alt+K", "GiB", "MiB", "KiB", "B",
)  # fmt: skip
_KEPT = re.compile(
    "|".join(rf"(?<![\w-]){re.escape(word)}(?!\w)" for word in sorted(KEPT_AS_IS, key=len)[::-1])
)
_PLACEHOLDER = re.compile(
    r"%\((\w+)\)[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]|%[diouxXeEfFgGcrsa]|\{\w*\}"
)
#: Example values of fields (paths, an OpenPGP armor line): not words of the interface.
_EXAMPLE = re.compile(r"^(/[\w./-]*|-----BEGIN PGP PUBLIC KEY BLOCK-----)$")
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                   "source", "track", "wbr"})  # fmt: skip


# -- catalogues --------------------------------------------------------------------------------


def test_the_extraction_finds_templates_views_and_error_pages():
    extracted = TRANSLATIONS.extracted()
    found = {location[0].split("/")[0] for m in messages(extracted) for location in m.locations}
    assert {"templates", "auth.py", "security.py", "items.py"} <= found, found
    assert extracted.get("Unlock the station") is not None  # a template
    assert extracted.get("Type your passphrase.") is not None  # web/auth.py
    assert extracted.get("Not found") is not None  # web/security.py
    plural = extracted.get(("%(num)d new item", "%(num)d new items"))
    assert plural is not None
    assert plural.pluralizable


# -- the pages -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    name: str
    status: int
    html: str


class _Page(HTMLParser):
    """What a reader sees or hears, outside translate="no"; and the page's form fields."""

    _READ: Final = ("aria-label", "title", "alt", "placeholder")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang: str | None = None
        self.texts: list[str] = []
        self._hidden = 0
        self._kept = 0  # depth inside an element with translate="no"
        #: Form fields: (tag, attributes, inside a <label>).
        self.fields: list[tuple[str, dict[str, str], bool]] = []
        self.label_targets: set[str] = set()
        self._labels = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "html":
            self.lang = values.get("lang")
        if tag == "label":
            self._labels += 1
            if values.get("for"):
                self.label_targets.add(values["for"])
        if tag in ("input", "select", "textarea"):
            self.fields.append((tag, values, self._labels > 0))
        if tag in ("script", "style"):
            self._hidden += 1
        # Code (hashes, commands) is never translated, like what translate="no" marks.
        if tag not in _VOID and (self._kept or values.get("translate") == "no" or tag == "code"):
            self._kept += 1
        if self._kept or values.get("lang") not in (None, self.lang):
            return  # the picker names each language in itself
        for name, value in values.items():
            if name in self._READ or (
                name == "value" and tag == "input" and values.get("type") == "submit"
            ):
                self._add(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1
        if tag == "label" and self._labels:
            self._labels -= 1
        if tag not in _VOID and self._kept:
            self._kept -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden and not self._kept:
            self._add(data)

    def _add(self, text: str) -> None:
        text = " ".join(text.split())
        if text and not _EXAMPLE.match(text):
            self.texts.append(text)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


@functools.cache
def english_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    patterns = []
    for message in messages(TRANSLATIONS.extracted()):
        for text in ids(message):
            if not _KEPT.sub("", _PLACEHOLDER.sub("", text)).strip(" -·:.()…"):
                continue
            literal = [re.escape(piece) for piece in _PLACEHOLDER.split(text)[::2]]
            patterns.append((text, re.compile(".+?".join(literal), re.DOTALL)))
    return tuple(patterns)


#: Names the station shows as they are, also inside translated text (an aria-label, a title):
#: the tour's sources, journalists and the default statuses.
DATA: Final = ("amber otter", "brisk heron", "alice", "bob", "in review", "new", "verified",
               "published", "closed")  # fmt: skip


def english_left(html: str, locale: str) -> list[str]:
    page = parse(html)
    problems = [] if page.lang == locale else [f"<html lang={page.lang!r}>"]
    names = {name for _, name in LANGUAGES}
    data = re.compile("|".join(rf"(?<!\w){re.escape(name)}(?!\w)" for name in DATA))
    for text in page.texts:
        text = " ".join(data.sub("", text).split())
        if not text or text in names:
            continue
        for msgid, pattern in english_patterns():
            if pattern.fullmatch(text) or (len(msgid) >= 20 and pattern.search(text)):
                problems.append(f"English string: {text!r}")
                break
        if re.search(r"[A-Za-z]", _KEPT.sub("", text)):
            problems.append(f"Latin-script text: {text!r}")
    return problems


def _with_error_route(client: WebClient) -> None:
    @client.app.get("/test/abort/<int:code>")
    def abort_with(code: int) -> str:
        abort(code)


def _body(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def _finished(web: WebClient, url: str) -> TestResponse:
    for _ in range(1200):
        response = web.get(url)
        if 'http-equiv="refresh"' not in _body(response):
            return response
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


class Tour:
    def __init__(self) -> None:
        self.pages: dict[str, list[Page]] = {code: [] for code, _ in LANGUAGES}

    def add(self, locale: str, name: str, response: TestResponse, status: int = 200) -> str:
        assert response.status_code == status, (locale, name, response.status_code)
        html = _body(response)
        self.pages[locale].append(Page(name, response.status_code, html))
        return html


def _visit(tour: Tour, locale: str, alice: WebClient, bob: WebClient, ids: dict[str, int]) -> None:
    add = functools.partial(tour.add, locale)
    for client in (alice, bob):
        assert client.post("/language", {"lang": locale, "next": "/"}).status_code == 303
    add("sources", alice.get("/"))
    add("sources, filtered to nothing", alice.get("/?q=nothing-matches"))
    add("conversation", alice.get(f"/sources/{ids['source']}"))
    add("conversation, not sealed", bob.get(f"/sources/{ids['source']}"))
    add("file", alice.get(f"/files/{ids['file']}"))
    add("file, not sealed", bob.get(f"/files/{ids['file']}"))
    bob.get(f"/files/{ids['file']}/download")
    add("file, refused download", bob.get(f"/files/{ids['file']}"))
    add("search", alice.get("/search"))
    add("search, found", alice.get("/search?q=minutes"))
    add("search, nothing", alice.get("/search?q=absent"))
    add("duplicates", alice.get("/duplicates"))
    add("imports", alice.get("/imports"))
    alice.post("/imports", {"path": "relative"})
    add("imports, bad path", alice.get("/imports"))
    add("outbound", alice.get("/outbound"))
    add("statuses", alice.get("/statuses"))
    add("ledger", alice.get("/ledger"))
    add("rewrap", alice.get("/rewrap"))
    delete = f"/sources/{ids['source']}/delete?scope=item&item={ids['message']}"
    add("confirm delete", alice.get(delete))
    alice.post(f"/sources/{ids['source']}/reply", {"text": ""})
    add("reply refused", alice.get(f"/sources/{ids['source']}"))
    jobs = alice.state().jobs
    result = ImportResult(2, 1, 1, "0" * 64)
    running = jobs.start("alice", "in.bundle", lambda progress: result, lambda _e: None)
    add("import done", _finished(alice, f"/imports/{running.id}"))
    running.finished, running.done, running.total = False, 300, 1000
    add("import, reading", alice.get(f"/imports/{running.id}"))
    running.done = 700
    add("import, decrypting", alice.get(f"/imports/{running.id}"))
    failed = jobs.start("alice", "x.bundle", _fail, lambda _e: None)
    add("import failed", _finished(alice, f"/imports/{failed.id}"))
    summary = RewrapSummary(1, 2, [("0" * 32, "sealed to no key of this station")])
    rewrap = jobs.start("alice", "rewrap", lambda p: summary, lambda _e: None, kind="rewrap")
    add("rewrap done", _finished(alice, f"/rewrap/{rewrap.id}"))
    rewrap.finished, rewrap.done, rewrap.total = False, 3, 5
    add("rewrap running", alice.get(f"/rewrap/{rewrap.id}"))
    for code in (400, 404, 405, 413, 500, 503):
        add(f"error {code}", alice.get(f"/test/abort/{code}"), code)
    add("refused form", alice.client.post("/lock", base_url="http://127.0.0.1:8090"), 403)


def _fail(_progress: object) -> None:
    raise RuntimeError("a bug")


@pytest.fixture(scope="module")
def tour(tmp_path_factory) -> Tour:
    home = make_home(tmp_path_factory.mktemp("station") / "home")
    app = make_app(home, Clock(NOW))
    alice = WebClient(app)
    _with_error_route(alice)
    tour = Tour()
    for code, _ in LANGUAGES:
        locked = WebClient(app)
        locked.get("/unlock")
        locked.post("/language", {"lang": code, "next": "/unlock"})
        tour.add(code, "unlock", locked.get("/unlock"))
        refused = locked.post("/unlock", {"journalist": "alice", "passphrase": ""})
        tour.add(code, "unlock refused", refused, 403)
        tour.add(code, "locked", locked.get("/locked"))
    assert alice.unlock().status_code == 302
    unlocked = alice.unlocked()
    with unlocked.store.session() as session:
        source = add_source(session, "amber otter")
        other = add_source(session, "brisk heron")
        ids = {
            "source": source.id,
            "message": add_item(unlocked, session, source, "message", b"the minutes").id,
            "file": add_item(
                unlocked, session, source, "file", b"%PDF-1.7\n", filename="a.pdf",
                media_type="application/pdf",
            ).id,
        }  # fmt: skip
        add_item(unlocked, session, source, "reply", b"thank you")
        add_item(unlocked, session, other, "message", b"the minutes")
    keys.add_journalist(
        home, "bob", lambda w: BOB if "bob" in w else PASSPHRASE,
        lambda w: BOB if "bob" in w else PASSPHRASE, now=NOW, memlimit=MEMLIMIT,
    )  # fmt: skip
    bob = WebClient(app)
    assert bob.unlock("bob", BOB).status_code == 302
    for code, _ in LANGUAGES:
        _visit(tour, code, alice, bob, ids)
    return tour


@pytest.mark.parametrize("locale", LOCALES)
def test_every_page_is_entirely_in_the_chosen_language(tour, locale):
    pages = tour.pages[locale]
    assert len(pages) >= 30
    problems = [
        f"{page.name} ({page.status}): {problem}"
        for page in pages
        for problem in english_left(page.html, locale)
    ]
    assert not problems, f"{locale}:\n  " + "\n  ".join(problems)


def test_english_is_found_where_it_is_left(tour):
    """The check is not vacuous: the English pages fail it, and planted English is found."""
    english = next(p for p in tour.pages["en"] if p.name == "sources").html
    problems = english_left(english, "ru")
    assert "<html lang='en'>" in problems
    assert "English string: 'Sources'" in problems
    russian = next(p for p in tour.pages["ru"] if p.name == "sources").html
    assert english_left(russian, "ru") == []
    planted = russian.replace("</main>", "<p>Ошибка: Not found</p></main>")
    assert "Latin-script text: 'Ошибка: Not found'" in english_left(planted, "ru")
    kept = russian.replace("</main>", '<p translate="no">Not found</p></main>')
    assert english_left(kept, "ru") == []


def test_every_form_field_has_a_label(tour):
    """Each field a journalist fills in is named for screen readers: a <label> around it or
    pointing at it, or aria-label(ledby)."""
    problems = set()
    for pages in tour.pages.values():
        for page in pages:
            parsed = parse(page.html)
            for tag, attrs, in_label in parsed.fields:
                if attrs.get("type") in ("hidden", "submit", "button"):
                    continue
                named = (
                    in_label
                    or attrs.get("id") in parsed.label_targets
                    or attrs.get("aria-label")
                    or attrs.get("aria-labelledby")
                )
                if not named:
                    problems.add(f"{page.name}: <{tag} name={attrs.get('name')!r}>")
    assert not problems, sorted(problems)


# -- choosing a language -------------------------------------------------------------------------


def test_the_choice_before_unlock_stays_in_the_browser_and_the_journalists_is_stored(home):
    app = make_app(home, Clock(NOW))
    browser = WebClient(app)
    browser.get("/unlock")
    chosen = browser.post("/language", {"lang": "uk", "next": "/unlock"})
    assert chosen.status_code == 303
    assert chosen.headers["Location"] == "/unlock"
    assert '<html lang="uk">' in _body(browser.get("/unlock"))
    # Another browser is not affected; nothing is stored before unlock.
    assert '<html lang="en">' in _body(WebClient(app).get("/unlock"))
    # Unlocking applies and stores the choice made before it.
    assert browser.unlock().status_code == 302
    assert '<html lang="uk">' in _body(browser.get("/"))
    with browser.unlocked().store.session() as session:
        assert session.scalars(select(Preference.language)).all() == ["uk"]
    browser.post("/language", {"lang": "be", "next": "/search?q=x"})
    # Locking keeps the page in the language; a new browser unlocking gets alice's choice.
    locked = browser.post("/lock")
    assert '<html lang="be">' in _body(browser.get(locked.headers["Location"]))
    other = WebClient(app)
    assert '<html lang="en">' in _body(other.get("/unlock"))
    assert other.unlock().status_code == 302
    assert '<html lang="be">' in _body(other.get("/"))


def test_the_picker_refuses_unknown_languages_and_foreign_destinations(home):
    browser = WebClient(make_app(home, Clock(NOW)))
    assert browser.unlock().status_code == 302
    assert browser.post("/language", {"lang": "xx"}).status_code == 400
    for target in ("https://example.org/", "//example.org/", "/\\example.org"):
        answer = browser.post("/language", {"lang": "ru", "next": target})
        assert answer.headers["Location"] == "/", target
    page = _body(browser.get("/"))
    assert 'id="lang-ru"' in page
    assert "aria-current" in page
