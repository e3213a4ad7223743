"""The newsroom's branding on the source pages (:mod:`dropbox.branding`): the template
context and ``GET /logo``, which serves the logo from this server, with its own media type.

The logo is an ``<img>`` from the server's own origin, which the pages' CSP allows
(``img-src 'self'``); it is served with ``nosniff`` and the strict headers of every response,
and only as one of the three media types it was checked to be.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort
from flask.typing import ResponseReturnValue

from dropbox.branding import Brand, BrandError, load_brand, load_logo
from dropbox.web.context import services

blueprint = Blueprint("brand", __name__)
_log = logging.getLogger(__name__)


def current_brand() -> Brand:
    """The branding set for this server; none if its file cannot be read (said in the log)."""
    try:
        return load_brand(services().settings.data_dir)
    except BrandError as error:
        # The pages must still work: they show "Postern" until the operator repairs it.
        _log.error("branding not shown: %s", error)
        return Brand()


@blueprint.get("/logo")
def logo() -> ResponseReturnValue:
    data_dir = services().settings.data_dir
    found = load_logo(data_dir, current_brand())
    if found is None:
        abort(404)
    response = Response(found.data, mimetype=found.media_type)
    response.headers["Content-Disposition"] = "inline"
    return response
