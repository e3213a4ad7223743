"""Unlock and lock: the only pages that work while the station is locked."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext, ngettext, refresh

from crypto import CryptoError
from journalist_ui import station
from journalist_ui.errors import StationError
from journalist_ui.reopen import reopen_items
from journalist_ui.unlock import unlock as unlock_station
from journalist_ui.web import language
from journalist_ui.web.context import browser, notice, now, state
from journalist_ui.web.views import store_session

blueprint = Blueprint("auth", __name__)

MAX_PASSPHRASE_CHARS = 1024


def _journalists() -> tuple[list[str], str | None]:
    try:
        return list(station.load_station(state().settings.home).journalists), None
    except StationError as exc:
        return [], str(exc)


@blueprint.get("/unlock")
def unlock() -> ResponseReturnValue:
    if browser().unlocked is not None:
        return redirect(url_for("sources.index"))
    journalists, problem = _journalists()
    return render_template("unlock.html", journalists=journalists, problem=problem, error=None)


@blueprint.post("/unlock")
def unlock_post() -> ResponseReturnValue:
    journalists, problem = _journalists()
    name = request.form.get("journalist", "")
    passphrase = request.form.get("passphrase", "")
    error = None
    if name not in journalists:
        error = gettext("Choose a journalist of this station.")
    elif not passphrase or len(passphrase) > MAX_PASSPHRASE_CHARS:
        error = gettext("Type your passphrase.")
    else:
        try:
            unlocked = unlock_station(state().settings.home, name, passphrase)
        except (StationError, CryptoError) as exc:
            error = str(exc)
        except OSError as exc:
            error = gettext(
                "Cannot read the station's files: %(reason)s", reason=exc.strerror or str(exc)
            )
        else:
            g.browser = state().sessions.unlock(browser(), unlocked)
            _apply_language(name)
            minutes = int(state().settings.idle_timeout.total_seconds() // 60)
            notice(
                ngettext(
                    "Unlocked for %(name)s. The station locks itself after %(num)d idle minute.",
                    "Unlocked for %(name)s. The station locks itself after %(num)d idle minutes.",
                    minutes,
                    name=name,
                )
            )
            reopened = reopen_items(unlocked, now=now())
            if reopened:
                notice(
                    ngettext(
                        "%(num)d item that could not be decrypted when it was imported opens "
                        "with your keys: it is readable now.",
                        "%(num)d items that could not be decrypted when they were imported "
                        "open with your keys: they are readable now.",
                        reopened,
                    )
                )
            return redirect(url_for("sources.index"))
    del passphrase
    page = render_template(
        "unlock.html", journalists=journalists, problem=problem, error=error, chosen=name
    )
    return page, 403


def _apply_language(journalist: str) -> None:
    """The journalist's stored language; else the one chosen before unlock, stored now."""
    with store_session() as session:
        stored = language.stored_language(session, journalist)
        chosen = browser().language
        if stored is not None:
            browser().language = stored
        elif chosen in language.CODES:
            language.store_language(session, journalist, chosen)
    refresh()  # this request may have picked its language before the unlock


@blueprint.post("/lock")
def lock() -> ResponseReturnValue:
    if browser().unlocked is not None:
        state().sessions.lock(browser())
    # The locked page keeps the language (the session that held it is gone).
    return redirect(url_for("auth.locked", lang=language.current_language()))


@blueprint.get("/locked")
def locked() -> ResponseReturnValue:
    journalists, problem = _journalists()
    return render_template(
        "unlock.html", journalists=journalists, problem=problem, error=None, was_locked=True
    )
