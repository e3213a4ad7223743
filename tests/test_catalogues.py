"""The catalogues of both translated interfaces (the source interface's and the station's):
each is complete against a fresh extraction of its code, keeps its placeholders and its
language's plural forms, is compiled, and is shipped in the package.

What a page shows in each language is checked by each program's own tests
(tests/dropbox/test_i18n.py, tests/journalist_ui/test_i18n.py)."""

from __future__ import annotations

from configparser import ConfigParser
from pathlib import Path
from typing import Final

import pytest

from dropbox.app import DEFAULT_LANGUAGE as SOURCE_DEFAULT
from dropbox.app import LANGUAGES as SOURCE_LANGUAGES
from journalist_ui.web.language import DEFAULT_LANGUAGE as STATION_DEFAULT
from journalist_ui.web.language import LANGUAGES as STATION_LANGUAGES
from tests.support.catalogues import (
    Translations,
    compiled_differences,
    placeholder_problems,
    plural_problems,
    read_catalog,
    template_differences,
    untranslated,
)

REPOSITORY: Final = Path(__file__).resolve().parents[1]
PROGRAMS: Final = {
    "dropbox": Translations(
        REPOSITORY / "dropbox",
        REPOSITORY / "dropbox",
        tuple(code for code, _ in SOURCE_LANGUAGES if code != SOURCE_DEFAULT),
    ),
    "journalist_ui": Translations(
        REPOSITORY / "journalist_ui",
        REPOSITORY / "journalist_ui" / "web",
        tuple(code for code, _ in STATION_LANGUAGES if code != STATION_DEFAULT),
    ),
}
EACH_CATALOGUE: Final = [
    pytest.param(program, locale, id=f"{program}-{locale}")
    for program, translations in PROGRAMS.items()
    for locale in translations.locales
]


@pytest.mark.parametrize("program", PROGRAMS)
def test_every_interface_language_has_a_catalogue(program):
    translations = PROGRAMS[program]
    assert set(translations.locales) == {"ru", "be", "uk"}
    found = sorted(p.name for p in translations.directory.iterdir() if p.is_dir())
    assert found == sorted(translations.locales)
    for locale in translations.locales:
        for suffix in ("po", "mo"):
            assert translations.catalogue(locale, suffix).is_file()


@pytest.mark.parametrize("program", PROGRAMS)
def test_the_template_lists_every_extracted_string(program):
    translations = PROGRAMS[program]
    problems = template_differences(read_catalog(translations.template), translations.extracted())
    assert not problems, (
        f"{program}/translations/messages.pot is out of date: run deploy/i18n.sh\n"
        + "\n".join(problems)
    )


@pytest.mark.parametrize(("program", "locale"), EACH_CATALOGUE)
def test_every_extracted_string_is_translated(program, locale):
    translations = PROGRAMS[program]
    problems = untranslated(translations.extracted(), translations.po(locale))
    assert not problems, (
        f"{locale}: run deploy/i18n.sh, translate these in "
        f"{translations.catalogue(locale).relative_to(REPOSITORY)}, and run it again:\n  "
        + "\n  ".join(problems)
    )


@pytest.mark.parametrize(("program", "locale"), EACH_CATALOGUE)
def test_translations_keep_the_placeholders(program, locale):
    problems = placeholder_problems(PROGRAMS[program].po(locale))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("program", "locale"), EACH_CATALOGUE)
def test_plural_forms_are_the_languages_own(program, locale):
    problems = plural_problems(PROGRAMS[program].po(locale), locale)
    assert not problems, f"{locale}: {problems}"


@pytest.mark.parametrize(("program", "locale"), EACH_CATALOGUE)
def test_the_compiled_catalogue_is_up_to_date(program, locale):
    translations = PROGRAMS[program]
    problems = compiled_differences(translations.po(locale), translations.catalogue(locale, "mo"))
    assert not problems, (
        f"{locale}: messages.mo differs from messages.po; run deploy/i18n.sh compile: "
        f"{problems[:5]}"
    )


@pytest.mark.parametrize("program", PROGRAMS)
def test_the_catalogues_are_shipped_in_the_package(program):
    translations = PROGRAMS[program]
    config = ConfigParser()
    config.read(REPOSITORY / "setup.cfg", encoding="utf-8")
    patterns = [
        line.strip()
        for line in config["options.package_data"]["*"].splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    shipped = {path for pattern in patterns for path in translations.package_dir.glob(pattern)}
    for locale in translations.locales:
        assert translations.catalogue(locale, "mo") in shipped, locale
