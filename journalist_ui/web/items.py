"""A file's page: details, download, sandboxed display of safe types, exports, metadata.

A decrypted file is never rendered by the browser as HTML, SVG, PDF or any type the station
does not know: downloads are ``application/octet-stream`` attachments. Only plain text and
common raster images are shown in the browser, under a sandboxing CSP, and only on request.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext, lazy_gettext
from werkzeug.exceptions import NotFound

from crypto import Kind
from journalist_ui import content, filenames, files, gpg, mat, triage
from journalist_ui.errors import StationError
from journalist_ui.store.models import Item
from journalist_ui.web import security
from journalist_ui.web.context import notice, now, unlocked
from journalist_ui.web.views import record, store_session

blueprint = Blueprint("items", __name__)

#: Media types shown in the browser (sandboxed); everything else is only downloaded.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"})
#: Why a file does not open for this journalist (in the page's language when raised).
NOT_SEALED = lazy_gettext(
    "This file is not sealed to your keys: it arrived before your key was on the team "
    "keyring. A journalist whose key opens it can reseal it to every current journalist "
    "on the Rewrap page."
)


def _file_item(item_id: int) -> Item:
    with store_session() as session:
        try:
            item = triage.get_item(session, item_id)
        except StationError:
            raise NotFound() from None
    if item.kind != "file":
        raise NotFound()
    return item


def _inline(item: Item) -> bool:
    return (item.media_type or "").split(";")[0].strip().lower() in INLINE_TYPES


def content_disposition(kind: str, name: str) -> str:
    """``attachment``/``inline`` with an ASCII fallback name and the RFC 8187 UTF-8 name."""
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in " ._-()+,") else "_" for c in name)
    encoded = "".join(
        chr(b) if b < 0x80 and (chr(b).isalnum() or chr(b) in "-._~") else f"%{b:02X}"
        for b in name.encode("utf-8")
    )
    return f"{kind}; filename=\"{fallback or 'file'}\"; filename*=UTF-8''{encoded}"


@blueprint.get("/files/<int:item_id>")
def file_page(item_id: int) -> ResponseReturnValue:
    item = _file_item(item_id)
    with store_session() as session:
        source = triage.get_source(session, unlocked().journalist, item.source_pk)
    return render_template(
        "file.html",
        item=item,
        sealed=content.sealed_to(unlocked(), item.key_ids),
        source=source,
        inline=_inline(item),
        mat2=mat.mat2_path() is not None,
        export_name=filenames.output_name(
            Kind.FILE, item.filename or "", item.plaintext_sha256 or "0" * 64
        ),
    )


def _open(item: Item, *, view: bool = False) -> content.FilePlaintext:
    """The file's plaintext; with ``view``, content.open_file records a "view" event.

    StationError with a message for the page if the journalist's keys cannot open it (the
    file page then says why and what to do, and offers nothing that would need it).
    """
    if not item.decryptable:
        raise NotFound()
    if not content.sealed_to(unlocked(), item.key_ids):
        raise StationError(str(NOT_SEALED))
    return content.open_file(unlocked(), item.id, log_view=view, now=now())


def _stream(plaintext: content.FilePlaintext) -> Iterator[bytes]:
    yield from plaintext.chunks()


@blueprint.get("/files/<int:item_id>/download")
def download(item_id: int) -> ResponseReturnValue:
    item = _file_item(item_id)
    try:
        plaintext = _open(item)
    except StationError as exc:
        return _fail(item, str(exc))
    name = files.export_name(plaintext)
    with store_session() as session:
        record(
            session,
            "export",
            item_ref=str(item.id),
            sha256=plaintext.sha256,
            detail={"to": "download", "name": name},
        )
        triage.mark_read(session, unlocked().journalist, [item.id])
    response = Response(_stream(plaintext), mimetype="application/octet-stream")
    response.headers["Content-Disposition"] = content_disposition("attachment", name)
    response.headers["Content-Length"] = str(plaintext.size)
    return response


@blueprint.get("/files/<int:item_id>/show")
def show(item_id: int) -> ResponseReturnValue:
    item = _file_item(item_id)
    if not _inline(item):
        raise NotFound()
    try:
        plaintext = _open(item, view=True)
    except StationError as exc:
        return _fail(item, str(exc))
    with store_session() as session:
        triage.mark_read(session, unlocked().journalist, [item.id])
    media_type = (item.media_type or "").split(";")[0].strip().lower()
    if media_type == "text/plain":
        media_type = "text/plain; charset=utf-8"
    response = Response(_stream(plaintext), content_type=media_type)
    response.headers["Content-Security-Policy"] = security.SANDBOX_POLICY
    response.headers["Content-Disposition"] = content_disposition(
        "inline", files.export_name(plaintext)
    )
    return response


def _done(item: Item, event_detail: dict[str, str | int], what: str) -> ResponseReturnValue:
    with store_session() as session:
        record(
            session,
            "export",
            item_ref=str(item.id),
            sha256=item.plaintext_sha256,
            detail=event_detail,
        )
    notice(what)
    return redirect(url_for("items.file_page", item_id=item.id), 303)


def _fail(item: Item, message: str) -> ResponseReturnValue:
    notice(message, "error")
    return redirect(url_for("items.file_page", item_id=item.id), 303)


@blueprint.post("/files/<int:item_id>/export")
def export(item_id: int) -> ResponseReturnValue:
    item = _file_item(item_id)
    strip = request.form.get("strip") == "1"
    try:
        folder = files.check_folder(request.form.get("folder", "").strip())
        plaintext = _open(item)
        if strip:
            with mat.cleaned_copy(plaintext) as cleaned:
                path = files.export_path_to_folder(cleaned, files.export_name(plaintext), folder)
        else:
            path = files.export_to_folder(plaintext, folder)
    except StationError as exc:
        return _fail(item, str(exc))
    return _done(
        item,
        {"to": "folder", "name": path.name, "stripped": int(strip)},
        gettext("Exported to %(path)s with its metadata removed by mat2.", path=str(path))
        if strip
        else gettext("Exported to %(path)s.", path=str(path)),
    )


@blueprint.post("/files/<int:item_id>/export-openpgp")
def export_openpgp(item_id: int) -> ResponseReturnValue:
    item = _file_item(item_id)
    armored = request.form.get("key", "")
    folder_text = request.form.get("folder", "").strip()
    confirmed = request.form.get("fingerprint", "")
    try:
        folder = files.check_folder(folder_text)
        key = gpg.inspect_key(armored)
    except StationError as exc:
        return _fail(item, str(exc))
    if confirmed != key.fingerprint:
        return render_template("confirm_openpgp.html", item=item, key=key, folder=folder_text)
    try:
        path = files.export_encrypted(_open(item), folder, key)
    except StationError as exc:
        return _fail(item, str(exc))
    return _done(
        item,
        {"to": "openpgp", "name": path.name, "fingerprint": key.fingerprint},
        gettext(
            "Exported to %(path)s, encrypted to the OpenPGP key %(fingerprint)s.",
            path=str(path),
            fingerprint=key.fingerprint,
        ),
    )


@blueprint.get("/files/<int:item_id>/metadata")
def metadata(item_id: int) -> ResponseReturnValue:
    item = _file_item(item_id)
    try:
        report = mat.metadata_report(_open(item, view=True))
    except StationError as exc:
        return _fail(item, str(exc))
    return render_template("metadata.html", item=item, report=report)
