"""The sync API's endpoints (docs/format.md section 9.2): thin views over the use cases.

Every request reaching a view was authenticated by :func:`dropbox.sync.context.authenticate`
(for ``POST /v1/outbound``: is authenticated as its body is read).
"""

from __future__ import annotations

import base64
import re
from typing import BinaryIO, Final, cast

from flask import Blueprint, request
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response
from werkzeug.wsgi import wrap_file

from dropbox.storage import StorageError
from dropbox.sync.context import json_error, request_body, streamed_body, sync_services
from dropbox.sync.inbound import (
    MAX_PAGE,
    UnknownItems,
    decode_cursor,
    envelope_blob,
    list_pending,
    parse_item_id,
    parse_manifest_request,
    pending_totals,
    signed_manifest,
)
from dropbox.sync.outbound import OutboundRefused, apply_outbound

blueprint = Blueprint("sync", __name__)

OCTETS: Final = "application/octet-stream"
_LIMIT = re.compile(r"\A[1-9][0-9]{0,3}\Z")
_RANGE = re.compile(r"\Abytes=([0-9]{1,20})-\Z")
_PIECE: Final = 1024 * 1024


@blueprint.get("/v1/status")
def status() -> ResponseReturnValue:
    svc = sync_services()
    instance = svc.instance()
    with svc.db() as db:
        count, size = pending_totals(db)
    return {
        "keyring_serial": svc.keyring().serial,
        "server_key": base64.b64encode(instance.server_key.public.key).decode("ascii"),
        "pending_items": count,
        "pending_bytes": size,
    }


@blueprint.get("/v1/items")
def items() -> ResponseReturnValue:
    svc = sync_services()
    after, limit = request.args.get("after"), request.args.get("limit")
    if limit is not None and not (_LIMIT.match(limit) and int(limit) <= MAX_PAGE):
        return json_error(400, "bad_request", f"limit must be from 1 to {MAX_PAGE}")
    try:
        after_id = 0 if after is None else decode_cursor(after)
    except ValueError:
        return json_error(400, "bad_request", "after is not a cursor this server gave")
    with svc.db() as db:
        page = list_pending(db, after=after_id, limit=MAX_PAGE if limit is None else int(limit))
    return {"items": [item.to_json() for item in page.items], "next": page.next}


@blueprint.post("/v1/manifests")
def manifests() -> ResponseReturnValue:
    svc = sync_services()
    try:
        item_ids = parse_manifest_request(request_body())
    except ValueError as exc:
        return json_error(400, "bad_request", str(exc))
    instance = svc.instance()
    try:
        with svc.db() as db:
            block = signed_manifest(
                db,
                item_ids,
                server_key=instance.server_key,
                keyring_serial=svc.keyring().serial,
                today=svc.today(),
            )
    except UnknownItems as exc:
        return json_error(404, "unknown_items", str(exc))
    return Response(block, mimetype=OCTETS)


@blueprint.get("/v1/items/<item_id>/envelope")
def envelope(item_id: str) -> ResponseReturnValue:
    svc = sync_services()
    row_id = parse_item_id(item_id)
    if row_id is None:
        return json_error(404, "unknown_item", "there is no such item")
    with svc.db() as db:
        blob_id = envelope_blob(db, row_id)
    if blob_id is None:
        return json_error(404, "unknown_item", "there is no such item")
    try:
        size = svc.blobs.size(blob_id)
        blob = svc.blobs.open(blob_id)
    except StorageError:
        return json_error(500, "missing_envelope", "the item's envelope is missing on the server")
    start = 0
    header = request.headers.get("Range")
    if header is not None:
        match = _RANGE.match(header)
        if match is None or int(match.group(1)) >= size:
            blob.close()
            return json_error(
                416,
                "range_not_satisfiable",
                "only a range of the form bytes=N- with N below the size is supported",
                {"Content-Range": f"bytes */{size}"},
            )
        start = int(match.group(1))
        blob.seek(start)
    # wrap_file lets gunicorn use sendfile(2) from the blob's current offset; Content-Length
    # bounds what is sent, and a blob that shrank while being sent arrives short.
    body = wrap_file(request.environ, blob, _PIECE)
    response = Response(body, mimetype=OCTETS, direct_passthrough=True)
    response.headers["Content-Length"] = str(size - start)
    response.headers["Accept-Ranges"] = "bytes"
    if header is not None:
        response.status_code = 206
        response.headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
    return response


@blueprint.post("/v1/outbound")
def outbound() -> ResponseReturnValue:
    svc = sync_services()
    body = streamed_body()
    try:
        with svc.outbound_lock:
            result = apply_outbound(
                # read_outbound_bundle only calls read(n) on it.
                cast(BinaryIO, body),
                db=svc.db,
                blobs=svc.blobs,
                keyring=svc.keyring().manifest,
                today=svc.today(),
                purge_after_ack=svc.settings.purge_after_ack,
                authorize=body.verify,
            )
    except OutboundRefused as exc:
        body.verify()  # a request that is not signed learns nothing about its bundle
        return json_error(422, exc.code, str(exc))
    return {
        "applied": result.applied,
        "replies": result.replies,
        "deletions": result.deletions,
        "acknowledged": result.acknowledged,
        "purged": result.purged,
    }
