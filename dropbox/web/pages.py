"""The pages of the source interface: landing, codenames, login, submit, replies, logout.

Every page works without JavaScript. Views stay thin: they read the form, call a use case and
render a template. The plain-form ``POST /submit`` is delegated to the app's submit handler
(by default :func:`dropbox.web.plain_form.plain_form_handler`, which seals the form as it
streams in).
"""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Final

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from crypto import FormatError, generate_codename, normalize_codename
from dropbox.sources import (
    OpenedReply,
    SourceError,
    create_source,
    delete_reply,
    find_source,
    get_source,
    list_replies,
    open_replies,
)
from dropbox.storage import is_out_of_space
from dropbox.web.context import (
    end_session,
    ensure_session,
    logged_in_source,
    rotate_session,
    services,
    update_session,
)
from dropbox.web.out_of_space import out_of_space_page
from dropbox.web.security import csrf_checked_in_view, render_error
from dropbox.web.sessions import SourceSession
from dropbox.web.throttle import Throttled

blueprint = Blueprint("pages", __name__)

#: Longest codename field read (seven words of at most nine letters, with generous spacing).
_MAX_CODENAME_FIELD: Final = 512
_SEE_OTHER: Final = 303


def _throttled(error: Throttled) -> ResponseReturnValue:
    body = render_template("throttled.html", minutes=error.minutes, per_session=error.per_session)
    return body, 429, {"Retry-After": str(error.seconds)}


def _to_login() -> ResponseReturnValue:
    return redirect(url_for("pages.login"), _SEE_OTHER)


@blueprint.get("/")
def index() -> ResponseReturnValue:
    instance = services().instance()
    return render_template(
        "landing.html",
        open=instance.keyring is not None,
        fingerprint=instance.root_fingerprint,
    )


# -- codenames ---------------------------------------------------------------------------------


@blueprint.get("/generate")
def generate() -> ResponseReturnValue:
    ensure_session()
    return render_template("generate.html")


@blueprint.post("/generate")
def generate_post() -> ResponseReturnValue:
    """Make a new source: the codename appears in this response and nowhere else."""
    svc = services()
    instance = svc.instance()
    for _ in range(3):
        codename = generate_codename()
        try:
            with svc.derivations.codename_slot():
                secrets = instance.derive_source_secrets(codename)
        except Throttled as error:
            return _throttled(error)
        try:
            with svc.db() as db:
                row_id = create_source(db, secrets, svc.today()).id
            reply_private = secrets.reply_private
            break
        except SourceError:
            continue  # a codename already in use: draw another
        except Exception as error:
            if not is_out_of_space(error):
                raise
            return out_of_space_page(
                gettext(
                    "The server is out of storage space, so no codename could be made. "
                    "Please try again later."
                )
            )
        finally:
            del secrets
    else:
        return render_error(500)
    rotate_session(
        lambda state: state.logged_in_as(row_id, acknowledged=False, reply_private=reply_private)
    )
    return render_template("codename.html", codename=codename)


@blueprint.post("/acknowledge")
def acknowledge() -> ResponseReturnValue:
    if logged_in_source() is None:
        return _to_login()
    update_session(lambda state: replace(state, codename_acknowledged=True))
    return redirect(url_for("pages.submit"), _SEE_OTHER)


# -- login -------------------------------------------------------------------------------------


@blueprint.get("/login")
def login() -> ResponseReturnValue:
    ensure_session()
    return render_template("login.html", error=None)


@blueprint.post("/login")
def login_post() -> ResponseReturnValue:
    svc = services()
    typed = request.form.get("codename", "")
    try:
        if len(typed) > _MAX_CODENAME_FIELD:
            raise FormatError("too long")
        codename = normalize_codename(typed)
    except FormatError:
        # The shape of a codename is public: saying it is malformed leaks nothing.
        message = gettext(
            "That is not a codename: a codename is seven words from our word list, separated "
            "by spaces. Check for typing mistakes."
        )
        return render_template("login.html", error=message), 400
    try:
        mark = svc.login_attempts.reserve(update_session)
    except Throttled as error:
        return _throttled(error)
    instance = svc.instance()
    try:
        with svc.derivations.login_slot():
            secrets = instance.derive_source_secrets(codename)
    except Throttled as error:
        svc.login_attempts.succeeded(update_session, mark)  # not the session's fault
        return _throttled(error)
    try:
        with svc.db() as db:
            source = find_source(db, secrets.lookup_id)
            if source is None:
                message = gettext("That codename was not recognized.")
                return render_template("login.html", error=message), 403
            row_id = source.id
        reply_private = secrets.reply_private
    finally:
        del secrets
    # The reply private key goes into the sealed session only (dropbox/web/sessions.py).
    svc.login_attempts.succeeded(update_session, mark)
    rotate_session(
        lambda state: state.logged_in_as(row_id, acknowledged=True, reply_private=reply_private)
    )
    return redirect(url_for("pages.replies"), _SEE_OTHER)


# -- submitting --------------------------------------------------------------------------------


def _submit_limits() -> dict[str, object]:
    settings = services().settings
    return {
        "max_message_chars": settings.max_message_chars,
        "max_request_bytes": settings.max_nojs_request_bytes,
        "max_file_bytes": settings.max_resumable_file_bytes,
        "max_files": settings.max_files_per_submission,
    }


@blueprint.get("/submit")
def submit() -> ResponseReturnValue:
    who = logged_in_source()
    if who is None:
        return _to_login()
    state, _ = who
    if not state.codename_acknowledged:
        return render_template("acknowledge.html")
    keyring = services().instance().keyring
    return render_template(
        "submit.html",
        keyring_root=base64.b64encode(keyring.root).decode("ascii") if keyring else None,
        keyring_serial=keyring.serial if keyring else None,
        **_submit_limits(),
    )


@blueprint.post("/submit")
@csrf_checked_in_view
def submit_post() -> ResponseReturnValue:
    """The plain form. The body is left unread here: the submit handler streams it, and
    checks the CSRF token, which is the form's first part (docs/format.md section 8.5)."""
    who = logged_in_source()
    if who is None or not who[0].codename_acknowledged:
        return render_error(403)
    if services().instance().keyring is None:
        return render_error(503, gettext("Submissions are not open yet. Nothing was stored."))
    return services().submit_handler()


@blueprint.get("/submit/done")
def submitted() -> ResponseReturnValue:
    """The confirmation after a submission (the script path comes here when it is done)."""
    if logged_in_source() is None:
        return _to_login()
    return render_template("submitted.html")


# -- replies -----------------------------------------------------------------------------------


@blueprint.get("/replies")
def replies() -> ResponseReturnValue:
    who = logged_in_source()
    if who is None:
        return _to_login()
    opened = _opened_replies(*who)
    if opened is None:
        return _to_login()
    return render_template("replies.html", replies=opened)


def _opened_replies(state: SourceSession, row_id: int) -> list[OpenedReply] | None:
    """The source's replies, opened for this page only; None (session ended) if it cannot be.

    Decrypted replies are never stored, not even sealed: each page opens them again.
    """
    svc = services()
    with svc.db() as db:
        source = get_source(db, row_id)
        if source is None or state.reply_private is None:
            end_session()
            return None
        return open_replies(svc.blobs, list_replies(db, source), state.reply_private)


@blueprint.get("/replies/<int:reply_id>/delete")
def reply_delete_confirm(reply_id: int) -> ResponseReturnValue:
    """Ask first: a deleted reply is gone for good (the answer is a form, no script needed)."""
    who = logged_in_source()
    if who is None:
        return _to_login()
    opened = _opened_replies(*who)
    if opened is None:
        return _to_login()
    numbered = [(n, r) for n, r in enumerate(opened, 1) if r.reply_id == reply_id]
    if not numbered:
        abort(404)
    number, reply = numbered[0]
    return render_template("reply_delete.html", reply=reply, number=number)


@blueprint.post("/replies/<int:reply_id>/delete")
def reply_delete(reply_id: int) -> ResponseReturnValue:
    who = logged_in_source()
    if who is None:
        return _to_login()
    _, row_id = who
    svc = services()
    with svc.db() as db:
        source = get_source(db, row_id)
        if source is None:
            end_session()
            return _to_login()
        deleted = delete_reply(db, svc.blobs, source, reply_id)
    if not deleted:
        abort(404)
    return redirect(url_for("pages.replies"), _SEE_OTHER)


# -- logout and the keyring --------------------------------------------------------------------


@blueprint.post("/logout")
def logout() -> ResponseReturnValue:
    end_session()
    return render_template("logged_out.html")


@blueprint.get("/keyring.json")
def keyring_json() -> ResponseReturnValue:
    """The installed signed keyring, byte for byte (docs/format.md section 8.2)."""
    keyring = services().instance().keyring
    if keyring is None:
        abort(404)
    return Response(keyring.raw, mimetype="application/json")
