"""The chosen language lives in the address (``?lang=``), never in a cookie or the session:
every link, form action and redirect carries it, logging out and in keeps it, and an unknown
value falls back to the browser's Accept-Language, then English. Sizes are written in the
page's language (dropbox/web/formatting.py)."""

from __future__ import annotations

import json
import secrets
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from werkzeug.test import TestResponse

from crypto import Kind, seal_bytes
from dropbox.web.formatting import format_size
from tests.dropbox.sitetools import Site, codename_in, csrf_token, make_site, post_form, token_for
from tests.support.server import make_data_dir
from tests.support.team import Team


@pytest.fixture(scope="module")
def team() -> Team:
    return Team()


@pytest.fixture
def site(team: Team, tmp_path) -> Site:
    return make_site(make_data_dir(tmp_path / "data", team), max_nojs_request_bytes=3 << 19)


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def lang_of(response: TestResponse) -> str:
    page = text(response)
    start = page.index('<html lang="') + len('<html lang="')
    return page[start : page.index('"', start)]


class _Addresses(HTMLParser):
    """Every address a page leads to: links, form actions, and the script's data-* URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.pickers: list[str] = []
        self.assets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "a" and "hreflang" in values:
            self.pickers.append(values["href"])
        elif tag == "a" and values.get("href", "").startswith("/"):
            self.links.append(values["href"])
        elif tag == "form" and "action" in values:
            self.links.append(values["action"])
        elif tag in ("link", "script", "img"):
            self.assets.append(values.get("href") or values.get("src") or "")
        for name in ("data-uploads", "data-submissions", "data-login", "data-done"):
            if name in values:
                self.links.append(values[name])


def addresses(response: TestResponse) -> _Addresses:
    parser = _Addresses()
    parser.feed(text(response))
    parser.close()
    return parser


def language_in(url: str) -> str | None:
    values = parse_qs(urlsplit(url).query).get("lang")
    return values[0] if values else None


def assert_every_address_keeps(response: TestResponse, code: str) -> None:
    found = addresses(response)
    assert found.links, "the page has no links"
    assert [u for u in found.links if language_in(u) != code] == []
    assert sorted(str(language_in(u)) for u in found.pickers) == ["be", "en", "ru", "uk"]
    # Style sheets and scripts are the same in every language.
    assert [u for u in found.assets if language_in(u) is not None] == []


def test_every_link_form_and_redirect_keeps_the_chosen_language(site):
    browser = site.new_browser()
    landing = browser.get("/?lang=ru")
    assert lang_of(landing) == "ru"
    assert_every_address_keeps(landing, "ru")
    generate_page = browser.get("/generate?lang=ru")
    assert_every_address_keeps(generate_page, "ru")
    shown = browser.post("/generate?lang=ru", data={"csrf_token": csrf_token(generate_page)})
    assert lang_of(shown) == "ru"
    assert_every_address_keeps(shown, "ru")
    acknowledged = browser.post("/acknowledge?lang=ru", data={"csrf_token": csrf_token(shown)})
    assert acknowledged.status_code == 303
    assert acknowledged.headers["Location"] == "/submit?lang=ru"
    submit = browser.get(acknowledged.headers["Location"])
    assert lang_of(submit) == "ru"
    assert_every_address_keeps(submit, "ru")  # the script's addresses too
    sent = post_form(
        browser, "/submit?lang=ru", {"csrf_token": csrf_token(submit), "message": "привет"}
    )
    assert sent.status_code == 303
    assert sent.headers["Location"] == "/submit/done?lang=ru"
    assert_every_address_keeps(browser.get("/replies?lang=ru"), "ru")
    # A page for a source who is not logged in sends them to log in, in their language.
    assert site.new_browser().get("/replies?lang=be").headers["Location"] == "/login?lang=be"
    # Error pages too.
    missing = browser.get("/no/such/page?lang=uk")
    assert missing.status_code == 404
    assert lang_of(missing) == "uk"
    assert_every_address_keeps(missing, "uk")


def test_logging_out_and_in_keeps_the_language_and_the_session_does_not_hold_it(site):
    browser = site.new_browser()
    token = token_for(browser, "/generate?lang=uk")
    codename = codename_in(browser.post("/generate?lang=uk", data={"csrf_token": token}))
    page = browser.get("/replies?lang=uk")
    (logout_action,) = [u for u in addresses(page).links if u.startswith("/logout")]
    logged_out = browser.post(logout_action, data={"csrf_token": csrf_token(page)})
    assert logged_out.status_code == 200
    assert lang_of(logged_out) == "uk"
    assert_every_address_keeps(logged_out, "uk")
    (login_link,) = [u for u in addresses(logged_out).links if u.startswith("/login")]
    login_page = browser.get(login_link)
    assert lang_of(login_page) == "uk"
    (login_action,) = {u for u in addresses(login_page).links if u.startswith("/login")}
    done = browser.post(
        login_action, data={"csrf_token": csrf_token(login_page), "codename": codename}
    )
    assert done.status_code == 303
    assert done.headers["Location"] == "/replies?lang=uk"
    assert lang_of(browser.get(done.headers["Location"])) == "uk"
    # Without the address's choice the same browser reads English: no cookie remembered it.
    assert lang_of(browser.get("/replies")) == "en"
    assert all(cookie.key == "postern_session" for cookie in browser._cookies.values())


@pytest.mark.parametrize("value", ["xx", "", "RU", "ru-RU", "../en", "ru%00", "%ff"])
def test_an_unknown_language_falls_back_to_the_browser_then_english(site, value):
    browser = site.new_browser()
    plain = browser.get(f"/login?lang={value}")
    assert plain.status_code in (200, 400)  # 400: a query string that is not UTF-8
    if plain.status_code == 200:
        assert lang_of(plain) == "en"
        assert [u for u in addresses(plain).links if language_in(u) not in (None, "ru")] == []
    asked = browser.get(f"/login?lang={value}", headers={"Accept-Language": "be-BY, ru;q=0.5"})
    assert asked.status_code == plain.status_code
    assert lang_of(asked) == ("be" if asked.status_code == 200 else "en")


def test_the_browsers_language_is_used_without_a_choice_and_the_choice_wins(site):
    browser = site.new_browser()
    headers = {"Accept-Language": "uk-UA,uk;q=0.9,en;q=0.5"}
    page = browser.get("/", headers=headers)
    assert lang_of(page) == "uk"
    # Not chosen in the address: the links stay plain (the browser says it again each time).
    assert [u for u in addresses(page).links if language_in(u) is not None] == []
    assert lang_of(browser.get("/?lang=ru", headers=headers)) == "ru"
    assert lang_of(browser.get("/", headers={"Accept-Language": "de, fr"})) == "en"


def test_the_script_path_keeps_the_language(site, team):
    browser = site.new_browser()
    token = token_for(browser, "/generate?lang=be")
    shown = browser.post("/generate?lang=be", data={"csrf_token": token})
    browser.post("/acknowledge?lang=be", data={"csrf_token": csrf_token(shown)})
    submit = browser.get("/submit?lang=be")
    token = csrf_token(submit)
    found = {u.split("?")[0]: u for u in addresses(submit).links}
    uploads, submissions = found["/api/uploads"], found["/api/submissions"]
    envelope = seal_bytes(b"hello", [team.journalist.public.key], Kind.MESSAGE)
    tus = {"Tus-Resumable": "1.0.0", "X-Postern-CSRF": token}
    made = browser.post(uploads, headers={**tus, "Upload-Length": str(len(envelope))})
    assert made.status_code == 201
    location = made.headers["Location"]
    assert language_in(location) == "be"
    patched = browser.patch(
        location,
        data=envelope,
        headers={**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    assert patched.status_code == 204
    upload = urlsplit(location).path.rsplit("/", 1)[1].split(".")[0]
    body = {"key": secrets.token_urlsafe(16), "items": [{"upload": upload, "kind": "message"}]}
    answer = browser.post(
        submissions, data=json.dumps(body), content_type="application/json", headers=tus
    )
    assert answer.status_code == 201
    assert answer.get_json()["next"] == "/submit/done?lang=be"
    # A refusal's message on the script path is in the page's language too.
    refused = site.new_browser().post(submissions, data="{}", content_type="application/json")
    assert refused.status_code == 403
    assert refused.get_json()["message"] == "Калі ласка, увайдзіце зноў."


# -- sizes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "size", "expected"),
    [
        ("en", 500 << 20, "500 MiB"),
        ("en", 3 << 29, "1.5 GiB"),
        ("en", 1536, "1.5 KiB"),
        ("en", 999, "999 B"),
        ("ru", 3 << 19, "1,5 МиБ"),
        ("ru", 4 << 30, "4 ГиБ"),
        ("uk", 3 << 19, "1,5 МіБ"),
        ("be", 2560, "2,5 КіБ"),
        ("ru", 999, "999 Б"),
    ],
)
def test_sizes_are_written_in_the_pages_language(site, language, size, expected):
    with site.app.test_request_context(f"/?lang={language}"):
        assert format_size(size) == expected


def test_the_pages_give_sizes_and_their_units_in_their_language(site):
    browser = site.new_browser()
    token = token_for(browser, "/generate?lang=ru")
    shown = browser.post("/generate?lang=ru", data={"csrf_token": token})
    browser.post("/acknowledge?lang=ru", data={"csrf_token": csrf_token(shown)})
    page = text(browser.get("/submit?lang=ru"))
    assert "1,5 МиБ" in page  # the plain form's limit, set to 1.5 MiB by the fixture
    assert "MiB" not in page
    # The script's units and locale, for Intl.NumberFormat (no inline script: data attributes).
    for attribute in (
        'data-locale="ru"',
        'data-unit-gib="ГиБ"',
        'data-unit-mib="МиБ"',
        'data-unit-kib="КиБ"',
        'data-unit-b="Б"',
    ):
        assert attribute in page
