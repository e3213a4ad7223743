"""Hostile text from sources (filenames, media types, messages, notes) is escaped everywhere.

The corpus is shared with the Chromium test (tests/browser/test_station_chromium.py), which
checks in a real browser that none of it runs.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from journalist_ui.web.items import content_disposition
from tests.journalist_ui.storekit import make_home
from tests.journalist_ui.webkit import Clock, WebClient, add_item, add_source, make_app

#: Strings that would run script, inject markup or mislead if they reached the page raw.
#: Each sets ``window.__xss`` if it runs (the Chromium test checks it never is).
CORPUS: tuple[str, ...] = (
    "<script>window.__xss=1</script>",
    '"><img src=x onerror="window.__xss=2">',
    "'><svg onload=window.__xss=3>",
    '<a href="javascript:window.__xss=4">click</a>',
    "javascript:window.__xss=5",
    "</pre></textarea><script>window.__xss=6</script>",
    "{{ 7*7 }}{% raw %}<iframe srcdoc='<script>parent.__xss=8</script>'>",
    "invoice\u202egpj.exe",
    "<style>body{display:none}</style><b onmouseover=window.__xss=9>x</b>",
    "A" * 3000 + "<script>window.__xss=10</script>",
)
#: Markup that must never appear unescaped in a page.
DANGEROUS = ("<script", "<img", "<svg", "<iframe", "<style", "<b ", 'href="javascript:')

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def seed_corpus(web: WebClient) -> tuple[int, list[int]]:
    """One source whose messages, files (name and type) and notes are the corpus."""
    unlocked = web.unlocked()
    with unlocked.store.session() as session:
        source = add_source(session, "hostile heron")
        files = []
        for number, text in enumerate(CORPUS):
            add_item(unlocked, session, source, "message", f"{number}: {text}".encode())
            item = add_item(
                unlocked, session, source, "file", text.encode(),
                filename=text[:255], media_type=text[:127],
            )  # fmt: skip
            files.append(item.id)
        return source.id, files


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    home = make_home(tmp_path_factory.mktemp("xss") / "home")
    client = WebClient(make_app(home, Clock(NOW)))
    client.unlock()
    return client


@pytest.fixture(scope="module")
def corpus(web):
    return seed_corpus(web)


def assert_escaped(page: str) -> None:
    lowered = page.lower()
    for marker in DANGEROUS:
        assert marker not in lowered, marker
    assert "onerror=" not in lowered.replace("onerror=&#34;", "").replace("onerror=&quot;", "")


def test_corpus_is_escaped_in_every_page(web, corpus):
    source_pk, files = corpus
    for text in CORPUS[:4]:
        web.post(f"/sources/{source_pk}/notes", {"text": text})
        web.post(f"/sources/{source_pk}/reply", {"text": text})
    conversation = web.get(f"/sources/{source_pk}").get_data(as_text=True)
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in conversation
    assert "{{ 7*7 }}" in conversation  # templates are not evaluated twice
    assert_escaped(conversation)
    pages = [
        "/",
        "/search?q=script",
        "/search?q=" + "%3Cscript%3E",
        "/duplicates",
        "/outbound",
        "/ledger",
        f"/sources/{source_pk}/delete?scope=source",
        *(f"/files/{item}" for item in files),
        *(f"/sources/{source_pk}/delete?scope=item&item={item}" for item in files[:3]),
    ]
    for path in pages:
        response = web.get(path)
        assert response.status_code == 200, path
        assert_escaped(response.get_data(as_text=True))


def test_downloads_of_hostile_files_are_attachments_with_safe_names(web, corpus):
    _source_pk, files = corpus
    for item in files:
        response = web.client.get(f"/files/{item}/download", base_url="http://127.0.0.1:8090")
        response.get_data()
        response.close()
        assert response.mimetype == "application/octet-stream"
        disposition = response.headers["Content-Disposition"]
        assert disposition.startswith("attachment; ")
        assert "\u202e" not in disposition
        assert "<" not in disposition
        assert "\n" not in disposition
        assert web.get(f"/files/{item}/show").status_code == 404  # never inline


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"),
        (
            "résumé é.pdf",
            "attachment; filename=\"r_sum_ _.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%C3%A9.pdf",
        ),
        (
            'a"b;c\\d.txt',
            "attachment; filename=\"a_b_c_d.txt\"; filename*=UTF-8''a%22b%3Bc%5Cd.txt",
        ),
        ("\u202e", "attachment; filename=\"_\"; filename*=UTF-8''%E2%80%AE"),
    ],
)
def test_content_disposition_is_ascii_and_quoted(name, expected):
    header = content_disposition("attachment", name)
    assert header == expected
    assert header.isascii()
