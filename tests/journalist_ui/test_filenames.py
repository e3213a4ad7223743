"""Names for decrypted files: hostile metadata never reaches the file system as given."""

from __future__ import annotations

import unicodedata
from itertools import islice

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto import Kind
from journalist_ui.filenames import (
    MAX_NAME_BYTES,
    candidates,
    output_name,
    printable,
    safe_filename,
)

DIGEST = "ab12cd34" + "0" * 56


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("..", ""),
        (".", ""),
        (".bashrc", "bashrc"),
        ("...hidden.txt", "hidden.txt"),
        ("  spaced out  ", "spaced out"),
        ("-rf", "_rf"),
        ("evil\u202egpj.exe", "evilgpj.exe"),
        ("zero\u200bwidth\ufeff.txt", "zerowidth.txt"),
        ("line\u2028break\u2029.txt", "linebreak.txt"),
        ("bell\x07\x1b[31mred.txt", "bell[31mred.txt"),
        ("c1\x85\x9bcontrol.txt", "c1control.txt"),
        ("non\u00a0breaking.txt", "non breaking.txt"),
        ("private\ue000use.txt", "privateuse.txt"),
        ("trailing dots...", "trailing dots"),
        ("Ünïcödé ✓.txt", "Ünïcödé ✓.txt"),
        ("", ""),
    ],
)
def test_safe_filename(raw, expected):
    assert safe_filename(raw) == expected


def test_long_names_are_shortened_keeping_the_extension():
    name = safe_filename("é" * 120 + ".pdf")  # 244 bytes: a name the metadata can carry
    assert name.endswith(".pdf")
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    numbered = list(islice(candidates(name), 3))[2]
    assert numbered.endswith(" (2).pdf")
    assert len(numbered.encode("utf-8")) <= 255


@given(st.text(max_size=300))
def test_safe_filename_is_always_a_plain_name(raw):
    name = safe_filename(raw)
    assert "/" not in name
    assert "\\" not in name
    assert name not in (".", "..")
    assert not name.startswith((".", "-", " "))
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert all(unicodedata.category(c)[0] != "C" for c in name)
    assert all(unicodedata.category(c) not in ("Zl", "Zp") for c in name)


def test_output_name_fallbacks():
    assert output_name(Kind.FILE, "a.txt", DIGEST) == "a.txt"
    assert output_name(Kind.FILE, "..", DIGEST) == "file-ab12cd34"
    assert output_name(Kind.FILE, "", DIGEST) == "file-ab12cd34"
    assert output_name(Kind.MESSAGE, "", DIGEST) == "message-ab12cd34.txt"
    assert output_name(Kind.REPLY, "", DIGEST) == "reply-ab12cd34.txt"


def test_candidates_number_before_the_extension():
    assert list(islice(candidates("report.pdf"), 3)) == [
        "report.pdf",
        "report (1).pdf",
        "report (2).pdf",
    ]
    assert list(islice(candidates("README"), 2)) == ["README", "README (1)"]


def test_printable_escapes_invisible_characters():
    assert printable("a\u202eb\\c") == "a\\u202eb\\u005cc"
    assert printable("plain name.txt") == "plain name.txt"
