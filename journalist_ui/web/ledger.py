"""The evidence ledger: verify the hash chain and read the report."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from journalist_ui import ledger
from journalist_ui.web.context import unlocked
from journalist_ui.web.views import store_session

blueprint = Blueprint("ledger", __name__)


@blueprint.get("/ledger")
def index() -> ResponseReturnValue:
    with store_session() as session:
        verdict = ledger.verify(session, unlocked().layout.home / "ledger.head")
        report = ledger.report(session)
    return render_template("ledger.html", verdict=verdict, report=report)
