# ruff: noqa: RUF001  (Russian text on the pages is the subject here)
"""The newsroom's branding: ``dropbox brand`` sets it in the data directory, the source pages
show it (escaped), and ``GET /logo`` serves the checked logo with a strict media type."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dropbox.branding import BRAND_FILE, LOGO_FILE, MAX_INTRO_CHARS, MAX_NAME_CHARS
from dropbox.web.security import SECURITY_HEADERS
from tests.dropbox.logo_samples import SECRET, jpeg_with_metadata, png, png_with_metadata, webp
from tests.dropbox.sitetools import Site, make_site
from tests.support.cli import DROPBOX, assert_one_line_error, run_tool
from tests.support.server import make_data_dir
from tests.support.team import Team


@pytest.fixture(scope="module")
def team() -> Team:
    return Team()


@pytest.fixture
def site(team: Team, tmp_path: Path) -> Site:
    return make_site(make_data_dir(tmp_path / "data", team))


def brand(site: Site, *args: str | Path, stdin: bytes | None = None):
    command, *rest = args
    return run_tool(DROPBOX, "brand", command, "--data-dir", site.data_dir, *rest, stdin=stdin)


def page(site: Site, path: str = "/") -> str:
    return site.new_browser().get(path).get_data(as_text=True)


def test_unbranded_pages_say_postern_and_have_no_logo(site):
    landing = page(site)
    assert '<p class="site-name"><a href="/">Postern</a></p>' in landing
    assert "– Postern</title>" in landing
    assert 'class="intro"' not in landing
    assert site.new_browser().get("/logo").status_code == 404
    shown = brand(site, "show")
    assert shown.returncode == 0
    assert "name:  (not set: the pages say Postern)" in shown.stdout
    assert "logo:  (not set)" in shown.stdout


def test_the_name_introductions_and_logo_are_set_shown_and_cleared(site, tmp_path):
    assert brand(site, "set-name", "Северный вестник <b>&").returncode == 0
    intro_ru, intro_en = tmp_path / "ru.txt", tmp_path / "en.txt"
    intro_ru.write_text("Мы пишем о закупках.\nАнонимно.\n\nВторой абзац <script>.", "utf-8")
    intro_en.write_text("We report on procurement.", "utf-8")
    assert brand(site, "set-intro", "--lang", "ru", intro_ru).returncode == 0
    assert (
        brand(site, "set-intro", "--lang", "en", "-", stdin=intro_en.read_bytes()).returncode == 0
    )
    logo = tmp_path / "logo.png"
    logo.write_bytes(png_with_metadata())
    done = brand(site, "set-logo", logo)
    assert done.returncode == 0, done.stderr
    assert "image/png" in done.stdout

    russian = page(site, "/?lang=ru")
    assert "Северный вестник &lt;b&gt;&amp;</a>" in russian  # escaped, never markup
    assert "– Северный вестник &lt;b&gt;&amp;</title>" in russian
    assert '<img class="logo" src="/logo" alt="">' in russian
    assert "<p>Мы пишем о закупках.\nАнонимно.</p>" in russian
    assert "<p>Второй абзац &lt;script&gt;.</p>" in russian
    assert "We report on procurement." in page(site, "/?lang=en")
    # A language without its own introduction shows the English one.
    assert "We report on procurement." in page(site, "/?lang=uk")

    served = site.new_browser().get("/logo?lang=ru")
    assert served.status_code == 200
    assert served.mimetype == "image/png"
    assert served.data == png()  # checked, and stripped of its metadata
    assert SECRET not in (site.data_dir / LOGO_FILE).read_bytes()
    for name, value in SECURITY_HEADERS.items():
        assert served.headers[name] == value
    assert served.headers["X-Content-Type-Options"] == "nosniff"

    shown = brand(site, "show").stdout
    assert "name:  Северный вестник <b>&" in shown
    assert "intro ru: Мы пишем о закупках. Анонимно. Второй абзац <script>." in shown
    assert "intro be: (not set)" in shown
    assert "logo:  image/png" in shown
    assert (site.data_dir / BRAND_FILE).stat().st_mode & 0o777 == 0o600

    assert brand(site, "clear", "intro", "--lang", "en").returncode == 0
    assert "We report on procurement." not in page(site, "/?lang=uk")
    assert brand(site, "clear", "logo").returncode == 0
    assert site.new_browser().get("/logo").status_code == 404
    assert not (site.data_dir / LOGO_FILE).exists()
    assert 'class="logo"' not in page(site)
    assert brand(site, "clear", "all").returncode == 0
    assert not (site.data_dir / BRAND_FILE).exists()
    assert '<a href="/">Postern</a>' in page(site)


def test_a_new_logo_replaces_the_old_one_at_once(site, tmp_path):
    for name, data, media_type in (
        ("a.jpg", jpeg_with_metadata(), "image/jpeg"),
        ("b.webp", webp(), "image/webp"),
    ):
        (tmp_path / name).write_bytes(data)
        assert brand(site, "set-logo", tmp_path / name).returncode == 0
        served = site.new_browser().get("/logo")
        assert served.mimetype == media_type
        assert SECRET[:16] not in served.data


def test_bad_input_is_refused_with_one_line_and_keeps_what_was_set(site, tmp_path):
    assert brand(site, "set-name", "The Ledger").returncode == 0
    (tmp_path / "logo.png").write_bytes(png())
    assert brand(site, "set-logo", tmp_path / "logo.png").returncode == 0
    before = {
        p.name: p.read_bytes() for p in (site.data_dir / BRAND_FILE, site.data_dir / LOGO_FILE)
    }

    not_image = tmp_path / "evil.svg"
    not_image.write_text("<svg onload='alert(1)'/>")
    huge = tmp_path / "huge.png"
    huge.write_bytes(png() + b"\0" * (600 * 1024))
    long_intro = tmp_path / "long.txt"
    long_intro.write_text("x" * (MAX_INTRO_CHARS + 1))
    not_utf8 = tmp_path / "latin1.txt"
    not_utf8.write_bytes("Привет".encode("cp1251"))
    cases = [
        (("set-logo", not_image), "not a PNG, JPEG or WebP"),
        (("set-logo", huge), "too large"),
        (("set-logo", tmp_path / "missing.png"), "cannot read"),
        (("set-name", "x" * (MAX_NAME_CHARS + 1)), "at most 80"),
        (("set-name", "   "), "empty"),
        (("set-name", "Ledger\u202eregdeL"), "invisible character"),
        (("set-name", "two\nlines"), "control"),
        (("set-intro", "--lang", "de", long_intro), "unknown language 'de'"),
        (("set-intro", "--lang", "ru", long_intro), "at most 1000"),
        (("set-intro", "--lang", "ru", not_utf8), "not UTF-8"),
        (("clear", "name", "--lang", "ru"), "--lang goes with 'clear intro' only"),
    ]
    for args, words in cases:
        assert_one_line_error(brand(site, *args), 1, words)
    after = {
        p.name: p.read_bytes() for p in (site.data_dir / BRAND_FILE, site.data_dir / LOGO_FILE)
    }
    assert after == before
    # Not a data directory.
    outside = run_tool(DROPBOX, "brand", "set-name", "--data-dir", tmp_path, "X")
    assert_one_line_error(outside, 1, "is not a Postern data directory")


def test_a_damaged_brand_file_leaves_the_pages_working(site, caplog):
    (site.data_dir / BRAND_FILE).write_text(json.dumps({"type": "something else"}))
    landing = site.new_browser().get("/")
    assert landing.status_code == 200
    assert '<a href="/">Postern</a>' in landing.get_data(as_text=True)
    assert "branding not shown" in caplog.text
    assert_one_line_error(brand(site, "show"), 1, "not a Postern brand document")


def test_a_logo_file_that_does_not_match_its_record_is_not_served(site, tmp_path):
    (tmp_path / "logo.png").write_bytes(png())
    assert brand(site, "set-logo", tmp_path / "logo.png").returncode == 0
    (site.data_dir / LOGO_FILE).write_bytes(png_with_metadata())  # swapped behind our back
    assert site.new_browser().get("/logo").status_code == 404
    os.unlink(site.data_dir / LOGO_FILE)
    assert site.new_browser().get("/logo").status_code == 404
