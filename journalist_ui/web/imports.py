"""Importing a bundle from removable media, in a background thread, with a progress page.

The bundle is named by its path on the station's disk (the removable medium is mounted
locally); nothing is uploaded through the browser. The progress page reloads itself with a
meta refresh (no script) until the import is done.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from sqlalchemy import select
from werkzeug.exceptions import NotFound

from journalist_ui import importer
from journalist_ui.store.models import Import
from journalist_ui.web.context import notice, now, state, today, unlocked
from journalist_ui.web.jobs import describe_error
from journalist_ui.web.views import store_session

blueprint = Blueprint("imports", __name__)

MAX_PATH_CHARS = 4096


@blueprint.get("/imports")
def index() -> ResponseReturnValue:
    with store_session() as session:
        imports = list(session.scalars(select(Import).order_by(Import.id.desc())))
    running = [j for j in state().jobs.running("import") if j.journalist == unlocked().journalist]
    return render_template("imports.html", imports=imports, running=running)


@blueprint.post("/imports")
def start() -> ResponseReturnValue:
    text = request.form.get("path", "").strip()
    if not text or len(text) > MAX_PATH_CHARS or "\x00" in text or not Path(text).is_absolute():
        notice(
            gettext(
                "Give the bundle's absolute path on this station (for example on a USB stick)."
            ),
            "error",
        )
        return redirect(url_for("imports.index"), 303)
    bundle = Path(text)
    if state().jobs.running("rewrap"):  # both write the envelopes and the store
        notice(gettext("A rewrap is running: wait until it has finished."), "error")
        return redirect(url_for("imports.index"), 303)
    if not bundle.is_file():
        notice(gettext("There is no file %(path)s.", path=text), "error")
        return redirect(url_for("imports.index"), 303)
    current = unlocked()
    day, moment = today(), now()

    sessions = state().sessions

    def work(progress: Callable[[int, int], None]) -> importer.ImportResult:
        try:
            return importer.import_bundle(current, bundle, today=day, progress=progress, now=moment)
        finally:
            sessions.release(current)  # locks it now if its session locked meanwhile

    sessions.hold(current)

    job = state().jobs.start(current.journalist, bundle.name, work, describe_error)
    return redirect(url_for("imports.progress", job_id=job.id), 303)


@blueprint.get("/imports/<job_id>")
def progress(job_id: str) -> ResponseReturnValue:
    job = state().jobs.get(job_id, unlocked().journalist)
    if job is None or job.kind != "import":
        raise NotFound()
    return render_template("import_progress.html", job=job)
