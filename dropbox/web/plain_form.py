"""The plain form's ``POST /submit`` (docs/format.md section 8.5), wired to the app.

:func:`plain_form_handler` is the app's default submit handler: it streams the body through
:func:`dropbox.nojs.seal_form`, which records the submission while its blobs are held, so a
submission is whole or not at all. Every refusal is a page: 403 (CSRF), 413, 400 (malformed,
including a body whose chunked encoding is broken or cut short), 507 (the disk is full).
A refused ``POST /submit`` is answered with ``Connection: close``: its body may be unread
(or unreadable), and a connection announced as kept alive must not be dropped after the page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, BinaryIO, Final, cast

from flask import Flask, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from werkzeug.wrappers import Response

from dropbox.nojs import NoJsError, NoJsLimits, NoJsResult, seal_form
from dropbox.storage import is_out_of_space
from dropbox.submissions import NewItem, SubmissionError, add_submission
from dropbox.web.context import csrf_token_matches, logged_in_source, services
from dropbox.web.formatting import format_size
from dropbox.web.out_of_space import out_of_space_page
from dropbox.web.security import render_error

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

_SUBMIT_PATH: Final = "/submit"


def _plain_form_error(error: NoJsError) -> ResponseReturnValue:
    pages = {
        "csrf": (403, gettext("The form has expired. Reload the page and try again.")),
        "too_large": (
            413,
            gettext(
                "What you sent is larger than this form accepts (%(size)s). Nothing was stored. "
                "Send fewer or smaller files, or turn on JavaScript for large files.",
                size=format_size(services().settings.max_nojs_request_bytes),
            ),
        ),
        "message_too_long": (
            413,
            gettext(
                "The message is longer than %(count)d characters. Nothing was stored.",
                count=services().settings.max_message_chars,
            ),
        ),
        "too_many_files": (
            400,
            gettext(
                "At most %(count)d files can be sent at once. Nothing was stored.",
                count=services().settings.max_files_per_submission,
            ),
        ),
        "empty": (400, gettext("Write a message or choose a file. Nothing was sent.")),
        "malformed": (400, gettext("The form could not be read. Nothing was stored.")),
    }
    status, message = pages[error.code]
    return render_error(status, message)


def plain_form_handler() -> ResponseReturnValue:
    """``POST /submit``: stream the form through the sealer and record the submission."""
    who = logged_in_source()
    keyring = services().instance().keyring
    if who is None or keyring is None:  # pages.submit_post checked both already
        return render_error(403)
    settings = services().settings
    limits = NoJsLimits(
        max_request_bytes=settings.max_nojs_request_bytes,
        max_message_chars=settings.max_message_chars,
        max_files=settings.max_files_per_submission,
        max_drain_bytes=settings.max_nojs_request_bytes,
    )

    def record(result: NoJsResult) -> None:
        made: list[NewItem] = [(item.kind, item.blob_id, item.size) for item in result.items]
        with services().db() as db:
            add_submission(db, who[1], made, services().today())

    try:
        seal_form(
            cast(BinaryIO, request.stream),
            request.content_type or "",
            request.content_length,
            check_csrf=csrf_token_matches,
            recipients=keyring.manifest.recipient_keys,
            store=services().blobs,
            limits=limits,
            record=record,
        )
    except NoJsError as error:
        return _plain_form_error(error)
    except SubmissionError:
        return render_error(400)
    except Exception as error:
        if not is_out_of_space(error):
            raise
        return out_of_space_page(
            gettext(
                "The server is out of storage space. Nothing of this submission was kept. "
                "Please try again later."
            )
        )
    # Post/Redirect/Get: reloading the confirmation must not send the form again.
    return redirect(url_for("pages.submitted"), 303)


def _close_after_refusal(response: Response) -> Response:
    """``after_request``: a refused ``POST /submit`` closes its connection (see module text)."""
    if request.method == "POST" and request.path == _SUBMIT_PATH and response.status_code >= 400:
        response.headers["Connection"] = "close"
    return response


def _honour_connection_close(app: WSGIApplication) -> WSGIApplication:
    """Make gunicorn close the connection when the app's answer says ``Connection: close``.

    gunicorn drops hop-by-hop headers set by an app and writes its own ``Connection``
    header: without this it would announce keep-alive and then close anyway, because the
    unread (or unreadable) body leaves the connection unusable. Its ``start_response`` is a
    method of its response object, whose ``force_close()`` makes it announce the close.
    Under another server (the test client) this changes nothing.
    """

    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def start(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Callable[[bytes], object]:
            if any(k.lower() == "connection" and v.lower() == "close" for k, v in headers):
                server_response = getattr(start_response, "__self__", None)
                force_close = getattr(server_response, "force_close", None)
                if callable(force_close):
                    force_close()
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapped


def install(app: Flask) -> None:
    app.after_request(_close_after_refusal)
    app.wsgi_app = _honour_connection_close(app.wsgi_app)  # type: ignore[method-assign,assignment]
