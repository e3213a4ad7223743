"""The source interface's language: chosen in the address, carried by every link.

The chosen language travels in the query string (``?lang=ru``) of every page, link, form
action and redirect, never in a cookie or in the server's session: Tor Browser's New Identity
(or closing it) must leave nothing behind that says which language a source reads, and the
choice must survive logging out and in again, which ends the session. Flask's ``url_defaults``
adds the parameter to every ``url_for`` of a request that carries it, so templates and views
need not think about it.

Without a valid ``lang`` (none, an unknown code, or a query string that is not UTF-8), the
page follows the browser's Accept-Language (Tor Browser sends ``en-US`` unless the source
changed it), then English. An unknown value is never an error.
"""

from __future__ import annotations

from typing import Any, Final

from flask import Flask, has_request_context, request, url_for
from flask_babel import Babel
from werkzeug.exceptions import BadRequest

from dropbox.languages import DEFAULT_LANGUAGE, LANGUAGE_CODES

#: The query parameter that carries the chosen language.
LANGUAGE_PARAM: Final = "lang"
#: Endpoints whose addresses never carry the language (they are not pages).
_NOT_PAGES: Final = frozenset({"static", "pages.keyring_json", "brand.logo"})


def chosen_language() -> str | None:
    """The language named in this request's address, if it is one of ours."""
    if not has_request_context():
        return None
    try:
        code = request.args.get(LANGUAGE_PARAM)
    except BadRequest:
        # A query string that is not UTF-8 (dropbox.app.PosternRequest): its 400 page is
        # rendered through here too, and must not fail the same way.
        return None
    return code if code in LANGUAGE_CODES else None


def select_language() -> str:
    """Flask-Babel's locale selector: the address's choice, else the browser's, else English."""
    chosen = chosen_language()
    if chosen is not None:
        return chosen
    if has_request_context():
        # In the browser's order of preference; "be-BY" is Belarusian. (werkzeug's best_match
        # would prefer any exact match, even one the browser ranks lower.)
        for value, quality in request.accept_languages:
            primary = value.split("-")[0].lower()
            if quality > 0 and primary in LANGUAGE_CODES:
                return primary
    return DEFAULT_LANGUAGE


def carry_language(endpoint: str, values: dict[str, Any]) -> None:
    """``url_defaults``: every address made while serving a chosen language keeps it."""
    if endpoint in _NOT_PAGES or LANGUAGE_PARAM in values:
        return
    chosen = chosen_language()
    if chosen is not None:
        values[LANGUAGE_PARAM] = chosen


def language_url(code: str) -> str:
    """This page in language ``code`` (the language picker's links)."""
    values: dict[str, Any] = {LANGUAGE_PARAM: code}
    if request.method == "GET" and request.endpoint and request.endpoint not in _NOT_PAGES:
        return url_for(request.endpoint, **(request.view_args or {}), **values)
    return url_for("pages.index", **values)


def read_query() -> None:
    """``before_request``: a query string that is not UTF-8 is refused here (400), before any
    view runs, rather than wherever it is first read (dropbox.app.PosternRequest)."""
    request.args  # noqa: B018 - read for its check


def install(app: Flask, translations: str) -> None:
    """Flask-Babel with :func:`select_language`, and :func:`carry_language` on every URL.
    (The app installs :func:`read_query` itself, in its order of ``before_request`` hooks.)"""
    Babel(
        app,
        locale_selector=select_language,
        default_locale=DEFAULT_LANGUAGE,
        default_translation_directories=translations,
    )
    app.url_defaults(carry_language)
