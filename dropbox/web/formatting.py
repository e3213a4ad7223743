"""Numbers as sources read them, in the page's language."""

from __future__ import annotations

from flask_babel import format_decimal, gettext


def size_units() -> tuple[tuple[str, int], ...]:
    """The binary units, largest first, with their symbols in the page's language."""
    # Translators: symbols of the units of 2**30, 2**20 and 2**10 bytes (gibibyte, mebibyte,
    # kibibyte), as written in your language (Russian: ГиБ, МиБ, КиБ).
    return ((gettext("GiB"), 1 << 30), (gettext("MiB"), 1 << 20), (gettext("KiB"), 1 << 10))


def byte_unit() -> str:
    # Translators: symbol of the byte.
    return str(gettext("B"))


def format_size(size: int) -> str:
    """A byte count in binary units, as people read it (500 MiB, 1,5 ГиБ), in the page's
    language: its unit symbols and its decimal separator (Babel's ``format_decimal``)."""
    for unit, factor in size_units():
        if size >= factor:
            # At most one decimal, and none when it would be zero ("4 GiB", not "4.0 GiB").
            value = round(size / factor, 1)
            return f"{format_decimal(value, format='#,##0.#')} {unit}"
    return f"{format_decimal(size, format='#,##0')} {byte_unit()}"
