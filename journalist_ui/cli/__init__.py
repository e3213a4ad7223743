"""The ``journalist`` command: the Postern journalist station.

Each command group adds its own subcommands (:mod:`.init` for init and decrypt, :mod:`.keys`,
:mod:`.backup`, :mod:`.server`, :mod:`.store` for import, ledger and export-outbound,
:mod:`.ui`); each subcommand sets ``handler`` to a function that takes the parsed arguments
and returns the exit status. Handlers only gather their inputs (paths, passphrases, the
clock, the environment), call a use case (:mod:`journalist_ui.station`, ``keys``,
``importer``, ``ledger``, ``outbound``) and report its result. Commands that need the store
unlock it with the journalist's passphrase and lock it again before they return.

Exit statuses: 0 success, 1 the operation failed, 2 usage error. Expected failures are
reported as one line on stderr, never as a traceback (:func:`common.cli.run`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib import metadata

from common.cli import run
from crypto import CryptoError
from journalist_ui import passphrase
from journalist_ui.cli import backup, init, keys, server, store, ui
from journalist_ui.cli.options import PROG
from journalist_ui.errors import StationError, UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Decrypt and read Postern submissions on the air-gapped journalist station.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {metadata.version('postern')}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    # In the order the help lists them.
    for group in (init, keys, backup, server, store, ui):
        group.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(
        build_parser(),
        argv,
        usage_errors=(UsageError, passphrase.NoTerminalError),
        failures=(StationError, CryptoError),
    )


__all__ = ["build_parser", "main"]
