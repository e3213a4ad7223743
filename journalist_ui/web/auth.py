"""Unlock and lock: the only pages that work while the station is locked."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from crypto import CryptoError
from journalist_ui import station
from journalist_ui.errors import StationError
from journalist_ui.reopen import reopen_items
from journalist_ui.unlock import unlock as unlock_station
from journalist_ui.web.context import browser, notice, now, state

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
        error = "choose a journalist of this station"
    elif not passphrase or len(passphrase) > MAX_PASSPHRASE_CHARS:
        error = "type your passphrase"
    else:
        try:
            unlocked = unlock_station(state().settings.home, name, passphrase)
        except (StationError, CryptoError) as exc:
            error = str(exc)
        except OSError as exc:
            error = f"cannot read the station's files: {exc.strerror or exc}"
        else:
            g.browser = state().sessions.unlock(browser(), unlocked)
            notice(
                f"Unlocked for {name}. The station locks itself after "
                f"{int(state().settings.idle_timeout.total_seconds() // 60)} idle minutes."
            )
            reopened = reopen_items(unlocked, now=now())
            if reopened:
                notice(
                    f"{reopened} item(s) that could not be decrypted when they were imported "
                    "open with your keys: they are readable now."
                )
            return redirect(url_for("sources.index"))
    del passphrase
    page = render_template(
        "unlock.html", journalists=journalists, problem=problem, error=error, chosen=name
    )
    return page, 403


@blueprint.post("/lock")
def lock() -> ResponseReturnValue:
    if browser().unlocked is not None:
        state().sessions.lock(browser())
    return redirect(url_for("auth.locked"))


@blueprint.get("/locked")
def locked() -> ResponseReturnValue:
    journalists, problem = _journalists()
    return render_template(
        "unlock.html", journalists=journalists, problem=problem, error=None, was_locked=True
    )
