"""The station UI's languages: which one a page is in, the picker, and each journalist's choice.

Journalists read evidence in Russian, Belarusian and Ukrainian, and the station speaks those
too (catalogues in journalist_ui/translations, refreshed by deploy/i18n.sh). The language of
a page is, in order: ``?lang=xx`` (used by the pages that follow a lock), the browser
session's choice, English. Before unlock, a choice made with the picker is kept in the browser
session only (memory, never disk: nobody is known yet). After unlock, the journalist's stored
choice (table ``preferences``) is applied, and a choice made with the picker is stored for
them, so it follows them to the next unlock. The command-line tools stay in English.
"""

from __future__ import annotations

from typing import Final

from flask import Blueprint, Flask, g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import Babel
from sqlalchemy.orm import Session
from werkzeug.exceptions import BadRequest

from journalist_ui.store.models import Preference
from journalist_ui.web.context import browser
from journalist_ui.web.sessions import BrowserSession
from journalist_ui.web.views import store_session

#: The interface languages, each named in itself (the picker's labels); English first.
LANGUAGES: Final = (
    ("en", "English"),
    ("ru", "Русский"),
    ("be", "Беларуская"),
    ("uk", "Українська"),
)
DEFAULT_LANGUAGE: Final = "en"
CODES: Final = frozenset(code for code, _ in LANGUAGES)
#: Where the language choice may send the browser back to: a path of this app only.
MAX_NEXT_CHARS = 2048

blueprint = Blueprint("language", __name__)


def install(app: Flask, translations: str) -> None:
    """Translate ``app``'s pages with the catalogues under the directory ``translations``."""
    Babel(
        app,
        locale_selector=current_language,
        default_locale=DEFAULT_LANGUAGE,
        default_translation_directories=translations,
    )
    app.before_request(_remember_choice_in_url)
    app.register_blueprint(blueprint)


def current_language() -> str:
    code = request.args.get("lang")
    if code in CODES:
        return code
    session: BrowserSession | None = g.get("browser")
    if session is not None and session.language in CODES:
        return session.language
    return DEFAULT_LANGUAGE


def _remember_choice_in_url() -> None:
    code = request.args.get("lang")
    if code in CODES:
        browser().language = code


def stored_language(session: Session, journalist: str) -> str | None:
    """The language ``journalist`` chose last (None: never chose one)."""
    row = session.get(Preference, journalist)
    return row.language if row is not None and row.language in CODES else None


def store_language(session: Session, journalist: str, code: str) -> None:
    row = session.get(Preference, journalist)
    if row is None:
        session.add(Preference(journalist=journalist, language=code))
    else:
        row.language = code


def _safe_next(text: str) -> str:
    # Only a path on this server: never a scheme, a host or "//host" (an open redirect).
    if (
        not text.startswith("/")
        or text.startswith("//")
        or "\\" in text
        or len(text) > MAX_NEXT_CHARS
        or not text.isprintable()
    ):
        return url_for("sources.index")
    return text


@blueprint.post("/language")
def choose() -> ResponseReturnValue:
    """The picker: every page has a form posting here (works locked and unlocked)."""
    code = request.form.get("lang", "")
    if code not in CODES:
        raise BadRequest("unknown language")
    current = browser()
    current.language = code
    if current.unlocked is not None:
        with store_session() as session:
            store_language(session, current.unlocked.journalist, code)
    return redirect(_safe_next(request.form.get("next", "")), 303)


def language_context() -> dict[str, object]:
    return {
        "languages": LANGUAGES,
        "current_language": current_language(),
        "here": request.full_path.rstrip("?") if request.method == "GET" else "",
    }
