"""The baseline server of bench/transfer.py: blob files served as plain static downloads.

It runs under the sync API's own gunicorn configuration
(:func:`dropbox.gunicorn_settings.api_gunicorn_options`), so that the only difference
between the plain
download and ``dropbox-transfer pull`` is what the sync API and the client add: signed
requests, the signed manifest, SHA-256 checks and the bundle.

    .venv/bin/python -m bench.transfer_static --port PORT --blobs DIR
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from flask import Flask

PIECE = 1024 * 1024


def static_app(blobs: Path) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        name = str(environ.get("PATH_INFO", "")).rsplit("/", 1)[-1]
        path = blobs / name
        if len(name) != 64 or not all(c in "0123456789abcdef" for c in name) or not path.is_file():
            start_response("404 Not Found", [("Content-Length", "0")])
            return []
        handle = path.open("rb")
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", str(path.stat().st_size)),
            ],
        )
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper is not None:
            return cast("Iterable[bytes]", wrapper(handle, PIECE))
        return iter(lambda: handle.read(PIECE), b"")

    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transfer_static")
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    parser.add_argument("--blobs", type=Path, required=True, help="the directory to serve")
    args = parser.parse_args(argv)
    from dropbox.gunicorn_settings import api_gunicorn_options
    from dropbox.serve import SourceInterfaceServer

    app = static_app(args.blobs)
    SourceInterfaceServer(lambda: cast("Flask", app), api_gunicorn_options(args.port)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
