"""The source list (filters, sorting, bulk actions) and a source's conversation."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext, ngettext
from werkzeug.exceptions import BadRequest, NotFound

from journalist_ui import content, station, triage
from journalist_ui.errors import StationError
from journalist_ui.web.context import notice, state, today, unlocked
from journalist_ui.web.views import form_ids, record, store_session

blueprint = Blueprint("sources", __name__)


def _journalists() -> list[str]:
    return list(station.load_station(state().settings.home).journalists)


def _filters() -> tuple[triage.SourceFilter, triage.Sort, int]:
    args = request.args
    assigned = args.get("assigned")
    try:
        sort = triage.Sort(args.get("sort", "last"))
    except ValueError:
        raise BadRequest("unknown sort") from None
    page = args.get("page", "1")
    if not page.isascii() or not page.isdigit() or len(page) > 6:
        raise BadRequest("bad page")
    filters = triage.SourceFilter(
        status=args.get("status") or None,
        starred=args.get("starred") == "1",
        unread=args.get("unread") == "1",
        assigned_to=None if assigned is None or assigned == "any" else assigned,
        designation=args.get("q", "")[:64],
    )
    return filters, sort, int(page)


@blueprint.get("/")
def index() -> ResponseReturnValue:
    filters, sort, page = _filters()
    me = unlocked().journalist
    with store_session() as session:
        listing = triage.list_sources(
            session,
            me,
            filters=filters,
            sort=sort,
            page=page,
            page_size=state().settings.page_size,
        )
        statuses = triage.statuses(session)
        unread = triage.journalists_unread(session, me, triage.UNREAD_COUNT_CAP)
    return render_template(
        "sources.html",
        listing=listing,
        filters=filters,
        sort=sort.value,
        statuses=statuses,
        journalists=_journalists(),
        unread_total=unread,
        # The count stops at the cap (a million-message store is not counted per page).
        unread_cap=triage.UNREAD_COUNT_CAP,
        today=today(),
        args=request.args,
    )


@blueprint.post("/bulk")
def bulk() -> ResponseReturnValue:
    try:
        action = triage.BulkAction(request.form.get("action", ""))
    except ValueError:
        raise BadRequest("unknown action") from None
    pks = form_ids("source")
    value = request.form.get("value", "")
    if action is triage.BulkAction.STATUS:
        value = request.form.get("status", "")
    elif action is triage.BulkAction.ASSIGN:
        value = request.form.get("assignee", "")
    try:
        with store_session() as session:
            count = triage.bulk(session, unlocked().journalist, pks, action, value, _journalists())
    except StationError as exc:
        notice(str(exc), "error")
    else:
        notice(ngettext("Done: %(num)d source changed.", "Done: %(num)d sources changed.", count))
    back = request.form.get("back", "")
    if not back.startswith("/") or back.startswith(("//", "/\\")):
        back = url_for("sources.index")
    return redirect(back, 303)


@blueprint.get("/sources/<int:source_pk>")
def source(source_pk: int) -> ResponseReturnValue:
    me = unlocked().journalist
    try:
        with store_session() as session:
            convo = triage.conversation(session, me, source_pk)
            statuses = triage.statuses(session)
    except StationError:
        raise NotFound() from None
    texts: dict[int, str] = {}
    problems: dict[int, str] = {}
    # Items the journalist's keys cannot open: the page says so, with the way out (rewrap),
    # and offers nothing that would need their plaintext.
    unsealed = {
        item.id
        for item in convo.items
        if item.decryptable and not content.sealed_to(unlocked(), item.key_ids)
    }
    for item in convo.items:
        if item.kind == "file" or not item.decryptable or item.id in unsealed:
            continue
        try:
            texts[item.id] = content.read_message(unlocked(), item.id, log_view=False)
        except StationError as exc:
            problems[item.id] = str(exc)
    if texts:
        # Every message shown is a "view" of the evidence ledger: one transaction for all
        # (and one update of HOME/ledger.head), with the read marks.
        with store_session() as session:
            for item in convo.items:
                if item.id in texts:
                    record(
                        session,
                        "view",
                        item_ref=str(item.id),
                        sha256=item.sha256,
                        detail={"kind": item.kind, "source": convo.source.designation},
                    )
            triage.mark_read(
                session, me, [i.id for i in convo.items if i.id in texts and i.direction == "in"]
            )
    return render_template(
        "source.html",
        convo=convo,
        texts=texts,
        problems=problems,
        unsealed=unsealed,
        statuses=statuses,
        journalists=_journalists(),
        today=today(),
    )


def _back(source_pk: int) -> ResponseReturnValue:
    return redirect(url_for("sources.source", source_pk=source_pk), 303)


def _apply(source_pk: int, action: triage.BulkAction, value: str = "", done: str = "") -> None:
    try:
        with store_session() as session:
            triage.bulk(session, unlocked().journalist, [source_pk], action, value, _journalists())
    except StationError as exc:
        notice(str(exc), "error")
    else:
        if done:
            notice(done)


@blueprint.post("/sources/<int:source_pk>/star")
def star(source_pk: int) -> ResponseReturnValue:
    starred = request.form.get("starred") == "1"
    action = triage.BulkAction.STAR if starred else triage.BulkAction.UNSTAR
    _apply(source_pk, action, done=gettext("Starred.") if starred else gettext("Star removed."))
    return _back(source_pk)


@blueprint.post("/sources/<int:source_pk>/status")
def status(source_pk: int) -> ResponseReturnValue:
    value = request.form.get("status", "")
    _apply(
        source_pk, triage.BulkAction.STATUS, value, gettext("Status set to %(name)s.", name=value)
    )
    return _back(source_pk)


@blueprint.post("/sources/<int:source_pk>/assign")
def assign(source_pk: int) -> ResponseReturnValue:
    value = request.form.get("assignee", "")
    _apply(
        source_pk,
        triage.BulkAction.ASSIGN,
        value,
        gettext("Assigned to %(name)s.", name=value) if value else gettext("Assignment removed."),
    )
    return _back(source_pk)


@blueprint.post("/sources/<int:source_pk>/unread")
def unread(source_pk: int) -> ResponseReturnValue:
    _apply(source_pk, triage.BulkAction.UNREAD, done=gettext("Marked unread."))
    return redirect(url_for("sources.index"), 303)


@blueprint.post("/items/<int:item_id>/read")
def item_read(item_id: int) -> ResponseReturnValue:
    read = request.form.get("read") == "1"
    with store_session() as session:
        try:
            item = triage.get_item(session, item_id)
        except StationError:
            raise NotFound() from None
        triage.mark_read(session, unlocked().journalist, [item_id], read)
        source_pk = item.source_pk
    return _back(source_pk)


@blueprint.post("/sources/<int:source_pk>/notes")
def add_note(source_pk: int) -> ResponseReturnValue:
    try:
        with store_session() as session:
            triage.add_note(
                session, source_pk, unlocked().journalist, request.form.get("text", ""), today()
            )
    except StationError as exc:
        notice(str(exc), "error")
    else:
        notice(gettext("Note added."))
    return _back(source_pk)


@blueprint.post("/notes/<int:note_id>/delete")
def delete_note(note_id: int) -> ResponseReturnValue:
    source_pk = form_ids("source")
    try:
        with store_session() as session:
            triage.delete_note(session, note_id, unlocked().journalist)
    except StationError as exc:
        notice(str(exc), "error")
    else:
        notice(gettext("Note deleted."))
    if not source_pk:
        return redirect(url_for("sources.index"), 303)
    return _back(source_pk[0])


@blueprint.get("/statuses")
def statuses() -> ResponseReturnValue:
    with store_session() as session:
        rows = triage.status_counts(session)
    return render_template("statuses.html", rows=rows)


@blueprint.post("/statuses")
def change_statuses() -> ResponseReturnValue:
    action = request.form.get("action", "")
    name = request.form.get("name", "")
    try:
        with store_session() as session:
            if action == "add":
                added = triage.add_status(session, name)
                notice(gettext("Status “%(name)s” added.", name=added))
            elif action == "remove":
                triage.remove_status(session, name)
                notice(gettext("Status “%(name)s” removed.", name=name))
            elif action in ("up", "down"):
                triage.move_status(session, name, -1 if action == "up" else 1)
            else:
                raise BadRequest("unknown action")
    except StationError as exc:
        notice(str(exc), "error")
    return redirect(url_for("sources.statuses"), 303)
