"""Rewrap from the station UI: reseal the stored envelopes to every current journalist.

A journalist added after material arrived cannot open it: it is sealed to the keys of the
team as it was. Any journalist whose keys open it starts ``journalist keys rewrap`` here,
with the keys of their unlocked session (no passphrase again), as a background job with a
progress page, like an import. Only one job (import or rewrap) runs at a time: both write the
envelopes and the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from werkzeug.exceptions import NotFound

from journalist_ui import keys
from journalist_ui.web.context import notice, now, state, unlocked
from journalist_ui.web.jobs import ITEMS, describe_error

blueprint = Blueprint("rewrap", __name__)


@dataclass(frozen=True)
class RewrapSummary:
    """What a finished rewrap did, for its page."""

    rewrapped: int
    unchanged: int
    #: Envelopes left as they were, each with the reason (file names only, no content).
    failed: list[tuple[str, str]]


@blueprint.get("/rewrap")
def index() -> ResponseReturnValue:
    return render_template("rewrap.html", running=state().jobs.running("rewrap"))


@blueprint.post("/rewrap")
def start() -> ResponseReturnValue:
    if state().jobs.running():
        notice(gettext("An import or a rewrap is running: wait until it has finished."), "error")
        return redirect(url_for("rewrap.index"), 303)
    current = unlocked()
    home, moment, sessions = state().settings.home, now(), state().sessions

    def work(progress: Callable[[int, int], None]) -> RewrapSummary:
        try:
            done, failed = keys.rewrap_store_with_keys(
                home, current.secrets, current.journalist, now=moment, progress=progress
            )
        finally:
            sessions.release(current)  # locks it now if its session locked meanwhile
        changed = sum(1 for result in done if result.changed)
        return RewrapSummary(
            changed, len(done) - changed, [(path.name, why) for path, why in failed]
        )

    sessions.hold(current)
    job = state().jobs.start(
        current.journalist, "rewrap", work, describe_error, kind="rewrap", unit=ITEMS
    )
    return redirect(url_for("rewrap.progress", job_id=job.id), 303)


@blueprint.get("/rewrap/<job_id>")
def progress(job_id: str) -> ResponseReturnValue:
    job = state().jobs.get(job_id, unlocked().journalist)
    if job is None or job.kind != "rewrap":
        raise NotFound()
    return render_template("rewrap_progress.html", job=job)
