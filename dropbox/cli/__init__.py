"""The ``dropbox`` command: administration of the Postern server.

Each command group adds its subcommands in a module of its own (:mod:`.seal`,
:mod:`.instance`, :mod:`.migrate`, :mod:`.serve`, :mod:`.front`, :mod:`.onion_auth`,
:mod:`.purge`); each subcommand sets ``handler`` to a function that takes the parsed
arguments and returns the exit status. Handlers only gather their inputs and call a use case
(for example :func:`dropbox.sealing.seal_to_keyring`), then report its result.

Exit statuses: 0 success, 1 the operation failed, 2 usage error. Expected failures are
reported as one line on stderr, never as a traceback (:func:`common.cli.run`).
"""

from __future__ import annotations

import argparse
from importlib import metadata

from common.cli import run
from config import SettingsError
from crypto import CryptoError
from dropbox.cli import front, instance, migrate, onion_auth, purge, seal, serve
from dropbox.errors import DropboxError, UsageError
from dropbox.sealing import SealError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dropbox",
        description="Run and administer the Postern drop box server.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {metadata.version('postern')}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    seal.add_commands(commands)
    instance.add_commands(commands)
    migrate.add_commands(commands)
    serve.add_commands(commands)
    front.add_commands(commands)
    onion_auth.add_commands(commands)
    purge.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(
        build_parser(),
        argv,
        usage_errors=(UsageError, SettingsError),
        failures=(SealError, CryptoError, DropboxError),
    )
