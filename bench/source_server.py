"""The baseline server of bench/source.py: a WSGI app that reads a request body and drops it.

It runs under the source interface's own gunicorn configuration
(:func:`dropbox.gunicorn_settings.gunicorn_options`,
:class:`dropbox.serve.SourceInterfaceServer`: one
gthread worker, the same threads, timeouts and logger), so that the only difference between
an upload to it and an upload to ``POST /submit`` is what the application does with the
bytes. The body is read from ``wsgi.input`` in pieces of the size the plain-form handler
reads (:data:`dropbox.nojs.READ_SIZE`), or of ``N`` bytes with the query ``?read=N`` (up to
16 MiB), and nothing is kept.

Run from the repository root (bench/source.py does this itself):

    .venv/bin/python -m bench.source_server --port PORT
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, cast

from dropbox.nojs import READ_SIZE

#: Largest piece size a request may ask for with ``?read=N``.
MAX_READ_SIZE = 16 * 1024 * 1024

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

    from flask import Flask


def discard_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Read the whole body (Content-Length, else until its end), keep nothing, say how much."""
    stream = environ["wsgi.input"]
    read_size = READ_SIZE
    for option in (environ.get("QUERY_STRING") or "").split("&"):
        name, _, value = option.partition("=")
        if name == "read" and value.isdigit() and 1 <= int(value) <= MAX_READ_SIZE:
            read_size = int(value)
    length_text = environ.get("CONTENT_LENGTH") or ""
    left = int(length_text) if length_text.isdigit() else None
    total = 0
    while left is None or left > 0:
        piece = stream.read(read_size if left is None else min(read_size, left))
        if not piece:
            break
        total += len(piece)
        if left is not None:
            left -= len(piece)
    body = f"discarded {total} bytes\n".encode("ascii")
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.source_server",
        description="Serve a body-discarding WSGI app with the source interface's gunicorn.",
    )
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    args = parser.parse_args(argv)
    # Imported here: --help needs neither gunicorn nor Flask.
    from dropbox.gunicorn_settings import gunicorn_options
    from dropbox.serve import SourceInterfaceServer

    # One worker, as bench/source.py runs `dropbox serve --workers 1`: the worker measured.
    options = gunicorn_options(args.port, workers=1)
    # SourceInterfaceServer is typed for the Flask app it normally serves; gunicorn takes any
    # WSGI callable.
    SourceInterfaceServer(lambda: cast("Flask", discard_app), options).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
