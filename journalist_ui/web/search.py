"""Full-text search over decrypted messages and replies, and duplicate detection."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue

from journalist_ui import triage
from journalist_ui.errors import StationError
from journalist_ui.store.terms import Analyzer
from journalist_ui.web.views import store_session

blueprint = Blueprint("search", __name__)


def highlight(snippet: str) -> list[tuple[str, bool]]:
    """The snippet as (text, matched) parts; the template escapes and marks them."""
    parts: list[tuple[str, bool]] = []
    for number, piece in enumerate(snippet.split(triage.MATCH_START)):
        if number == 0:
            parts.append((piece, False))
            continue
        matched, _, rest = piece.partition(triage.MATCH_END)
        parts.append((matched, True))
        parts.append((rest, False))
    return [(text.replace(triage.MATCH_END, ""), m) for text, m in parts if text]


def _analyzer() -> Analyzer:
    """The app's one Analyzer (building one loads a dictionary: not once per search)."""
    analyzer = current_app.extensions.get("postern_search_analyzer")
    if not isinstance(analyzer, Analyzer):
        analyzer = current_app.extensions["postern_search_analyzer"] = Analyzer()
    return analyzer


@blueprint.get("/search")
def search() -> ResponseReturnValue:
    query = request.args.get("q", "")
    hits: list[triage.SearchHit] = []
    error = None
    if query.strip():
        try:
            with store_session() as session:
                hits = triage.search(session, query, analyzer=_analyzer())
        except StationError as exc:
            error = str(exc)
    return render_template("search.html", query=query, hits=hits, error=error, highlight=highlight)


@blueprint.get("/duplicates")
def duplicates() -> ResponseReturnValue:
    with store_session() as session:
        groups = triage.duplicates(session)
    return render_template("duplicates.html", groups=groups)
