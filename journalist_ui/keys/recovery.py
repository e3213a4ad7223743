"""The recovery kit: a printable HTML page of the station's fingerprints and key files.

The page comes from ``templates/recovery_kit.html``, rendered with autoescaping: labels,
names and paths in it are escaped, never trusted as markup.
"""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path

import jinja2

from journalist_ui import fs
from journalist_ui.errors import StationError
from journalist_ui.keys.keyfiles import peek_key_file
from journalist_ui.keys.listing import list_keys
from journalist_ui.station import Layout


@functools.cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("journalist_ui.keys", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def recovery_kit(home: Path, out: Path, *, now: datetime) -> Path:
    """A printable HTML page: fingerprints, every key file's text, restore instructions.

    The private key files in it are the station's own, still sealed under their passphrases;
    the page is as sensitive as the key files and no more. It is created, never replaced.
    """
    layout = Layout(home)
    rows = list_keys(home)
    # Public halves of transfer clients have no file on the station ("(public half only)").
    key_files = [
        (row, (home / row.where).read_text(encoding="utf-8"))
        for row in rows
        if not row.where.startswith("(")
    ]
    template = _templates().get_template("recovery_kit.html")
    page = template.render(
        made=now.strftime("%Y-%m-%d %H:%M UTC"),
        home=str(home),
        root_fingerprint=peek_key_file(layout.root_key).fingerprint,
        rows=rows,
        key_files=key_files,
    )
    if out.exists():
        raise StationError(f"{out} exists: the recovery kit never replaces a file")
    fs.create_private_file(out, page.encode("utf-8"))
    return out
