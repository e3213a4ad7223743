"""Replies, deletions (with confirmation) and the outbound bundle."""

from __future__ import annotations

from typing import cast

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext, lazy_gettext
from sqlalchemy import select
from werkzeug.exceptions import BadRequest, NotFound

from journalist_ui import files, outbound, triage
from journalist_ui.errors import StationError
from journalist_ui.store.models import Item, Outgoing, Source
from journalist_ui.web.context import notice, now, today, unlocked
from journalist_ui.web.views import store_session

blueprint = Blueprint("outgoing", __name__)

MAX_REPLY_CHARS = 100_000
#: What each deletion scope deletes, in the page's language when shown (lazy: no request yet).
SCOPES = {
    "item": lazy_gettext("this item"),
    "source_data": lazy_gettext("everything this source sent and every reply (the source stays)"),
    "source": lazy_gettext("the source and everything about it"),
}


@blueprint.post("/sources/<int:source_pk>/reply")
def reply(source_pk: int) -> ResponseReturnValue:
    text = request.form.get("text", "").replace("\r\n", "\n")
    if not text.strip():
        notice(gettext("The reply is empty."), "error")
    elif len(text) > MAX_REPLY_CHARS:
        notice(gettext("A reply is at most %(num)d characters.", num=MAX_REPLY_CHARS), "error")
    else:
        try:
            outbound.queue_reply(unlocked(), source_pk, text, today=today(), now=now())
        except StationError as exc:
            notice(str(exc), "error")
        else:
            notice(gettext("Reply sealed and queued: it goes out with the next outbound bundle."))
    return redirect(url_for("sources.source", source_pk=source_pk), 303)


def _target(scope: str, source_pk: int, item_id: int | None) -> tuple[Source, Item | None]:
    if scope not in SCOPES or (scope == "item") != (item_id is not None):
        raise BadRequest("bad deletion scope")
    with store_session() as session:
        source = session.get(Source, source_pk)
        item = session.get(Item, item_id) if item_id is not None else None
    if (
        source is None
        or source.deleted
        or (item_id is not None and (item is None or item.source_pk != source_pk))
    ):
        raise NotFound()
    return source, item


def _scope_args() -> tuple[str, int | None]:
    scope = request.values.get("scope", "")
    item = request.values.get("item", "")
    if item and (not item.isascii() or not item.isdigit() or len(item) > 12):
        raise BadRequest("bad item")
    return scope, int(item) if item else None


@blueprint.get("/sources/<int:source_pk>/delete")
def confirm_delete(source_pk: int) -> ResponseReturnValue:
    scope, item_id = _scope_args()
    source, item = _target(scope, source_pk, item_id)
    return render_template(
        "confirm_delete.html", source=source, item=item, scope=scope, what=SCOPES[scope]
    )


@blueprint.post("/sources/<int:source_pk>/delete")
def delete(source_pk: int) -> ResponseReturnValue:
    scope, item_id = _scope_args()
    source, _ = _target(scope, source_pk, item_id)
    if request.form.get("confirm") != source.designation:
        notice(
            gettext(
                "Type the designation “%(name)s” to confirm the deletion.",
                name=source.designation,
            ),
            "error",
        )
        return redirect(
            url_for(
                "outgoing.confirm_delete", source_pk=source_pk, scope=scope, item=item_id or ""
            ),
            303,
        )
    try:
        outbound.queue_deletion(
            unlocked(),
            scope=cast(outbound.Scope, scope),
            source_pk=source_pk,
            item_id=item_id,
            today=today(),
            now=now(),
        )
    except StationError as exc:
        notice(str(exc), "error")
        return redirect(url_for("sources.source", source_pk=source_pk), 303)
    notice(
        gettext(
            "Deleted %(what)s on this station; the server deletion is queued.",
            what=str(SCOPES[scope]),
        )
    )
    if scope == "source":
        return redirect(url_for("sources.index"), 303)
    return redirect(url_for("sources.source", source_pk=source_pk), 303)


@blueprint.get("/outbound")
def pending() -> ResponseReturnValue:
    with store_session() as session:
        rows = session.execute(
            select(Outgoing, Source.designation)
            .outerjoin(Source, Source.id == Outgoing.source_pk)
            .where(Outgoing.bundle_id.is_(None))
            .order_by(Outgoing.id)
        ).all()
        sent = session.execute(
            select(Outgoing.bundle_id, Outgoing.created_day)
            .where(Outgoing.bundle_id.is_not(None))
            .group_by(Outgoing.bundle_id)
            .order_by(Outgoing.id.desc())
            .limit(20)
        ).all()
        unacknowledged = triage.unacknowledged_imports(session)
    return render_template("outbound.html", rows=rows, sent=sent, unacknowledged=unacknowledged)


@blueprint.post("/outbound")
def export() -> ResponseReturnValue:
    try:
        folder = files.check_folder(request.form.get("folder", "").strip())
        result = outbound.export_outbound(unlocked(), folder, today=today(), now=now())
    except StationError as exc:
        notice(str(exc), "error")
    else:
        if result is None:
            notice(gettext("Nothing to send: no pending reply, deletion or acknowledgement."))
        else:
            notice(
                gettext(
                    "Outbound bundle written: %(path)s. Carry it to the transfer machine.",
                    path=str(result.path),
                )
            )
    return redirect(url_for("outgoing.pending"), 303)
