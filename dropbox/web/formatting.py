"""Numbers as sources read them, in the page's language."""

from __future__ import annotations

from flask_babel import gettext


def format_size(size: int) -> str:
    """A byte count in binary units, as people read it (500 MiB, 4 GiB), in the page's language."""
    # Translators: symbols of the units of 2**30, 2**20 and 2**10 bytes (gibibyte, mebibyte...).
    units = ((gettext("GiB"), 1 << 30), (gettext("MiB"), 1 << 20), (gettext("KiB"), 1 << 10))
    for unit, factor in units:
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    # Translators: symbol of the byte.
    byte = gettext("B")
    return f"{size} {byte}"
