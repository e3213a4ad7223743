"""Translations of the source interface: complete catalogues, and no English left on any page.

The catalogues are checked against a fresh extraction (the same dropbox/babel.cfg that
deploy/i18n.sh uses), so a string added to a template or a view without a translation fails
here. Then every page a source can see is rendered in each language and searched for text
that is still English.

Argon2id runs at its real cost (64 MiB, the minimum), so the pages are all collected once, by
one module-scoped fixture that makes as few codename derivations as it can (nine).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Final

import pytest
from flask import abort
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from crypto import Algorithm, Kind, derive_source_secrets, fingerprint, seal_bytes
from dropbox.app import DEFAULT_LANGUAGE, LANGUAGES, PACKAGE_DIR
from dropbox.instance import load_instance
from dropbox.sources import find_source, list_replies, store_reply
from tests.dropbox.sitetools import (
    Site,
    codename_in,
    csrf_token,
    login,
    make_site,
    post_form,
    token_for,
)
from tests.support.catalogues import Translations, ids, messages
from tests.support.server import make_data_dir
from tests.support.team import Team

LOCALES: Final = tuple(code for code, _ in LANGUAGES if code != DEFAULT_LANGUAGE)
TRANSLATIONS: Final = Translations(PACKAGE_DIR, PACKAGE_DIR, LOCALES)
#: Every interface language, English included: the tour visits each.
ALL_LANGUAGES: Final = tuple(code for code, _ in LANGUAGES)

#: Words that stay as they are in every language: product names, Tor Browser's own English
#: names (kept next to their translation) and technical abbreviations. The binary size units
#: are not among them: dropbox.web.formatting.format_size writes them in the page's language.
KEPT_AS_IS: Final = (
    "Postern",
    "Tor Browser",
    "Tor",
    "JavaScript",
    "Safest",
    "Safer",
    "Standard",
    "New Identity",
    "onion",
    "IP",
    "VPN",
    "Wi-Fi",
)
_KEPT = re.compile(
    "|".join(rf"(?<![\w-]){re.escape(word)}(?!\w)" for word in sorted(KEPT_AS_IS, key=len)[::-1])
)
#: printf-style (``%(name)s``, ``%d``) and brace (``{name}``) placeholders.
_PLACEHOLDER = re.compile(
    r"%\((\w+)\)[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]|%[diouxXeEfFgGcrsa]|\{\w*\}"
)
EN_DASH: Final = "\N{EN DASH}"
_URL = re.compile(r"\b(?:https?://|[a-z2-7]{56}\.onion\b)\S*")


# -- catalogues --------------------------------------------------------------------------------


def test_the_extraction_finds_templates_and_python_code():
    extracted = TRANSLATIONS.extracted()
    found = {location[0].split("/")[0] for m in messages(extracted) for location in m.locations}
    assert {"templates", "web"} <= found, found
    assert TRANSLATIONS.extracted().get("Send us information safely") is not None  # a template
    assert (
        TRANSLATIONS.extracted().get("That codename was not recognized.") is not None
    )  # dropbox/web/pages.py
    plural = TRANSLATIONS.extracted().get(
        "The server is busy. Wait %(num)s minute, then try again."
    )
    assert plural is not None
    assert plural.pluralizable  # ngettext in a template


# -- the pages, in each language ---------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    name: str
    status: int
    html: str


class _Visible(HTMLParser):
    """Text a reader sees or hears: text nodes and the attributes read out or shown."""

    _READ_ATTRIBUTES: Final = ("aria-label", "title", "alt", "placeholder")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang: str | None = None
        self.texts: list[str] = []
        #: data-* attribute values with a space in them (strings for the page's script).
        self.script_texts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "html":
            self.lang = values.get("lang")
        if tag in ("script", "style"):
            self._hidden += 1
        for name, value in values.items():
            if name in self._READ_ATTRIBUTES or (
                name == "value" and tag == "input" and values.get("type") in ("submit", "button")
            ):
                self._add(self.texts, value)
            elif name.startswith("data-") and " " in value.strip():
                self._add(self.script_texts, value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self._add(self.texts, data)

    @staticmethod
    def _add(texts: list[str], text: str) -> None:
        # The title is "<page> <en dash> Postern": its parts are separate strings.
        for part in " ".join(text.split()).split(f" {EN_DASH} "):
            if part:
                texts.append(part)


@functools.cache
def english_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Each English msgid (and plural) as a pattern in which placeholders match anything."""
    patterns = []
    for message in messages(TRANSLATIONS.extracted()):
        for text in ids(message):
            if not _KEPT.sub("", text).strip(f" -{EN_DASH}"):
                continue  # only names kept as they are ("Postern", "GiB")
            pieces = _PLACEHOLDER.split(text)
            # split() also returns the capture group: keep the literal pieces only.
            literal = [re.escape(piece) for piece in pieces[::2]]
            patterns.append((text, re.compile(".+?".join(literal), re.DOTALL)))
    return tuple(patterns)


def english_left(html: str, locale: str, ignored: Iterable[str] = ()) -> list[str]:
    """What is still English on a page meant to be in ``locale`` (empty if nothing)."""
    page = _Visible()
    page.feed(html)
    page.close()
    problems = []
    if page.lang != locale:
        problems.append(f"<html lang={page.lang!r}>")
    skip = {*ignored, *(name for _, name in LANGUAGES)}
    for text in (*page.texts, *page.script_texts):
        if text in skip:
            continue
        for msgid, pattern in english_patterns():
            if pattern.fullmatch(text) or (len(msgid) >= 20 and pattern.search(text)):
                problems.append(f"English string: {text!r}")
                break
    for text in page.texts:
        if text in skip:
            continue
        rest = _PLACEHOLDER.sub("", _KEPT.sub("", _URL.sub("", text)))
        if re.search(r"[A-Za-z]", rest):
            problems.append(f"Latin-script text: {text!r}")
    return problems


@pytest.fixture(scope="module")
def team() -> Team:
    return Team()


def _with_error_route(site: Site) -> Site:
    """Any error page on demand: ``GET /test/abort/<code>`` (added before the first request)."""

    @site.app.get("/test/abort/<int:code>")
    def abort_with(code: int) -> str:
        abort(code)

    return site


class Tour:
    """Pages collected per language, each with the status it was expected to have."""

    def __init__(self) -> None:
        self.pages: dict[str, list[Page]] = {locale: [] for locale in ALL_LANGUAGES}
        self.ignored: set[str] = set()

    def add(
        self, locale: str, name: str, response: TestResponse, status: int | set[int]
    ) -> TestResponse:
        allowed = status if isinstance(status, set) else {status}
        assert response.status_code in allowed, (locale, name, response.status_code)
        assert response.mimetype == "text/html", (locale, name, response.mimetype)
        self.pages[locale].append(Page(name, response.status_code, response.get_data(as_text=True)))
        return response


def _plain_form(client: FlaskClient, token: str, message: str, query: str = "") -> TestResponse:
    return post_form(client, f"/submit{query}", {"csrf_token": token, "message": message})


def _visit_as_new_source(tour: Tour, site: Site, locale: str) -> str:
    """A new source's visit in ``locale`` (two derivations); returns its codename."""
    browser = site.new_browser()
    add = functools.partial(tour.add, locale)
    # Every address carries the language, as the pages' own links and forms do.
    q = f"?lang={locale}"
    add("landing", browser.get(f"/{q}"), 200)
    add("generate form", browser.get(f"/generate{q}"), 200)
    token = token_for(browser, f"/generate{q}")
    shown = add("codename", browser.post(f"/generate{q}", data={"csrf_token": token}), 200)
    codename = codename_in(shown)
    tour.ignored.add(codename)
    add("acknowledge", browser.get(f"/submit{q}"), 200)
    acknowledged = browser.post(f"/acknowledge{q}", data={"csrf_token": csrf_token(shown)})
    assert acknowledged.status_code == 303
    token = csrf_token(add("submit form", browser.get(f"/submit{q}"), 200))
    # The plain form: a handler may not be connected yet (501).
    add("plain form, nothing in it", _plain_form(browser, token, "", q), {400, 501})
    add("plain form, too large", _plain_form(browser, token, "x" * 20_000, q), {413, 501})
    sent = _plain_form(browser, token, "hello", q)
    # The page says why, if it is refused (seen once in a while under load: not understood yet).
    assert sent.status_code == 303, sent.get_data(as_text=True)[-2000:]
    add("submitted", browser.get(f"/submit/done{q}"), 200)
    add("replies, none yet", browser.get(f"/replies{q}"), 200)
    add("stale form", browser.post(f"/acknowledge{q}", data={"csrf_token": "stale"}), 403)
    add("no such page", browser.get(f"/no/such/page{q}"), 404)
    add("wrong method", browser.post(f"/{q}"), 405)
    too_large = {"csrf_token": token, "codename": "x" * 70_000}
    add("form too large", browser.post(f"/login{q}", data=too_large), 413)
    for code in (400, 418, 429, 500, 501, 503):
        add(f"error {code}", browser.get(f"/test/abort/{code}{q}"), code)
    add("logged out", browser.post(f"/logout{q}", data={"csrf_token": token}), 200)

    token = csrf_token(add("login form", browser.get(f"/login{q}"), 200))
    malformed = {"csrf_token": token, "codename": "not a codename"}
    add("login, not a codename", browser.post(f"/login{q}", data=malformed), 400)
    words = codename.split()
    unknown = {"csrf_token": token, "codename": " ".join(words[1:] + words[:1])}
    add("login, unknown codename", browser.post(f"/login{q}", data=unknown), 403)
    add("login, too many failures", browser.post(f"/login{q}", data=unknown), 429)
    return codename


def _read_replies(tour: Tour, site: Site, team: Team, codename: str) -> None:
    """A source with a reply and an unreadable one reads them in each language."""
    instance = load_instance(site.data_dir)
    secrets = derive_source_secrets(
        codename,
        instance.instance_salt,
        opslimit=instance.codename_params.opslimit,
        memlimit=instance.codename_params.memlimit,
    )
    recipients = [secrets.reply_public, team.journalist.public.key]
    text = "Спасибо. Дякуємо. Дзякуй."  # the journalist's own words, not the interface's
    tour.ignored.add(text)
    with site.services.db() as db:
        source = find_source(db, secrets.lookup_id)
        assert source is not None
        for data, kind in ((text.encode(), Kind.REPLY), (b"not a reply", Kind.MESSAGE)):
            sealed = seal_bytes(data, recipients, kind)
            store_reply(db, site.services.blobs, source, sealed, site.services.today())
    browser = site.new_browser()
    assert login(browser, codename).status_code == 303
    for locale in ALL_LANGUAGES:
        page = tour.add(locale, "replies", browser.get(f"/replies?lang={locale}"), 200)
        assert text in page.get_data(as_text=True)
        with site.services.db() as db:
            source = find_source(db, secrets.lookup_id)
            assert source is not None
            reply_id = list_replies(db, source)[0].id
        confirm = browser.get(f"/replies/{reply_id}/delete?lang={locale}")
        tour.add(locale, "delete a reply?", confirm, 200)


def _when_the_server_is_busy(tour: Tour, site: Site) -> None:
    site.services.derivations.codenames.per_minute = 0  # every new codename is now refused
    for locale in ALL_LANGUAGES:
        browser = site.new_browser()
        token = token_for(browser, f"/generate?lang={locale}")
        busy = browser.post(f"/generate?lang={locale}", data={"csrf_token": token})
        tour.add(locale, "server busy", busy, 429)


def _before_submissions_open(tour: Tour, site: Site) -> None:
    """No keyring installed yet (one derivation)."""
    browser = site.new_browser()
    for locale in ALL_LANGUAGES:
        tour.add(locale, "landing, not open yet", browser.get(f"/?lang={locale}"), 200)
    shown = browser.post("/generate", data={"csrf_token": token_for(browser, "/generate")})
    assert shown.status_code == 200
    tour.ignored.add(codename_in(shown))
    assert browser.post("/acknowledge", data={"csrf_token": csrf_token(shown)}).status_code == 303
    for locale in ALL_LANGUAGES:
        page = tour.add(locale, "submit, not open yet", browser.get(f"/submit?lang={locale}"), 200)
        refused = _plain_form(browser, csrf_token(page), "hello", f"?lang={locale}")
        tour.add(locale, "plain form, not open yet", refused, 503)


@pytest.fixture(scope="module")
def tour(team, tmp_path_factory) -> Tour:
    open_site = _with_error_route(
        make_site(
            make_data_dir(tmp_path_factory.mktemp("open") / "data", team),
            login_failures_per_session=1,
            max_nojs_request_bytes=16 * 1024,
        )
    )
    closed_site = make_site(
        make_data_dir(tmp_path_factory.mktemp("closed") / "data", team, keyring_serial=None)
    )
    tour = Tour()
    tour.ignored.add(fingerprint(Algorithm.ED25519, team.root.public.key))
    codenames = [_visit_as_new_source(tour, open_site, locale) for locale in ALL_LANGUAGES]
    _read_replies(tour, open_site, team, codenames[0])
    _when_the_server_is_busy(tour, open_site)
    _before_submissions_open(tour, closed_site)
    return tour


@pytest.mark.parametrize("locale", LOCALES)
def test_every_page_is_entirely_in_the_chosen_language(tour, locale):
    pages = tour.pages[locale]
    assert len(pages) >= 29
    problems = [
        f"{page.name} ({page.status}): {problem}"
        for page in pages
        for problem in english_left(page.html, locale, tour.ignored)
    ]
    assert not problems, f"{locale}:\n  " + "\n  ".join(problems)


def test_english_is_found_where_it_is_left(team, tmp_path):
    """The check above is not vacuous: an English page fails it, for the right reasons."""
    site = make_site(make_data_dir(tmp_path / "data", team))
    client = site.client
    english = client.get("/?lang=en").get_data(as_text=True)
    problems = english_left(english, "ru")
    assert "<html lang='en'>" in problems
    assert "English string: 'Send us information safely'" in problems
    assert "Latin-script text: 'Home'" in problems
    # English inside translated text is found too, and a translated page passes.
    russian = client.get("/login?lang=ru").get_data(as_text=True)
    assert english_left(russian, "ru") == []
    planted = "<p>Ошибка 404: There is no page at this address.</p><p>Ответ 2</p></main>"
    assert english_left(russian.replace("</main>", planted), "ru") == [
        "English string: 'Ошибка 404: There is no page at this address.'",
        "Latin-script text: 'Ошибка 404: There is no page at this address.'",
    ]
    assert english_left(russian.replace("</main>", "<p>Error 404</p></main>"), "ru") == [
        "English string: 'Error 404'",
        "Latin-script text: 'Error 404'",
    ]


# -- labels ------------------------------------------------------------------------------------


class _Fields(HTMLParser):
    """The form fields of a page and whether each has a label a screen reader announces."""

    _UNLABELLED_TYPES: Final = ("hidden", "submit", "button", "reset", "image")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: list[tuple[str, dict[str, str], bool]] = []
        self.label_for: set[str] = set()
        self._in_label = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "label":
            self._in_label += 1
            if values.get("for"):
                self.label_for.add(values["for"])
        is_field = tag in ("textarea", "select") or (
            tag == "input" and values.get("type", "text") not in self._UNLABELLED_TYPES
        )
        if is_field:
            named = bool(values.get("aria-label", "").strip() or values.get("aria-labelledby"))
            self.fields.append((tag, values, named or self._in_label > 0))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self._in_label:
            self._in_label -= 1


def unlabelled_fields(html: str) -> list[str]:
    """The fields of ``html`` that have no <label>, aria-label or aria-labelledby."""
    page = _Fields()
    page.feed(html)
    page.close()
    return [
        f"<{tag} {' '.join(f'{k}={v!r}' for k, v in values.items())}>"
        for tag, values, labelled in page.fields
        if not labelled and values.get("id", "") not in page.label_for
    ]


@pytest.mark.parametrize("locale", ALL_LANGUAGES)
def test_every_field_of_every_page_has_a_label(tour, locale):
    pages = tour.pages[locale]
    assert {"login form", "submit form", "delete a reply?"} <= {page.name for page in pages}
    problems = [f"{page.name}: {field}" for page in pages for field in unlabelled_fields(page.html)]
    assert not problems, f"{locale}:\n  " + "\n  ".join(problems)


def test_an_unlabelled_field_is_found():
    """The check above is not vacuous."""
    assert unlabelled_fields('<input type="text" id="a"><label for="b">B</label>') == [
        "<input type='text' id='a'>"
    ]
    assert unlabelled_fields('<textarea name="m"></textarea><select id="s"></select>') == [
        "<textarea name='m'>",
        "<select id='s'>",
    ]
    labelled = (
        '<label for="a">A</label><input id="a"><input aria-label="B">'
        '<label>C <textarea></textarea></label><input type="hidden"><input type="submit">'
    )
    assert unlabelled_fields(labelled) == []
