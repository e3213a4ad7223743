"""What the station's commands share: options, argument types, the station home, unlocking.

Several passphrases may be needed by one command; :mod:`journalist_ui.passphrase` asks for
them, from ``--passphrase-fd N`` (one line each, in the order the command's help gives) or
at the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from common.cli import EXIT_USAGE
from config import SettingsError, load_station_settings
from journalist_ui import passphrase, station
from journalist_ui.errors import StationError, UsageError

if TYPE_CHECKING:
    from journalist_ui.unlock import Unlocked

PROG = "journalist"
#: The subcommands of a parser, to which each command group adds its own.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def warn(text: str) -> None:
    """A line on standard error that is not the command's failure (that is common.cli.fail)."""
    sys.stdout.flush()
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def journalist_name(text: str) -> str:
    try:
        return station.check_journalist_name(text)
    except StationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def memlimit(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a number of bytes: {text!r}")
    try:
        return station.check_memlimit(int(text))
    except StationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _fd(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a file descriptor number: {text!r}")
    return int(text)


def add_home(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home", type=Path, metavar="DIR",
        help="the station home (default: $POSTERN_STATION_HOME)",
    )  # fmt: skip


def add_passphrase_fd(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--passphrase-fd",
        type=_fd,
        metavar="N",
        help="read the passphrase from file descriptor N (one line) instead of prompting",
    )


def add_home_and_passphrase(parser: argparse.ArgumentParser) -> None:
    add_home(parser)
    add_passphrase_fd(parser)


def add_unlock_arguments(parser: argparse.ArgumentParser) -> None:
    add_home(parser)
    parser.add_argument(
        "--journalist", type=journalist_name, metavar="NAME",
        help="who unlocks the station (default: the station's only journalist)",
    )  # fmt: skip
    add_passphrase_fd(parser)


def home(args: argparse.Namespace) -> Path:
    """``--home``, else $POSTERN_STATION_HOME; a usage error when neither is given."""
    if args.home is not None:
        given: Path = args.home
        return given
    try:
        return load_station_settings(os.environ).home
    except SettingsError as exc:
        raise UsageError(f"no station home: pass --home DIR ({exc})") from None


def usage_help(parser: argparse.ArgumentParser) -> int:
    """A command group named without its subcommand: its help, as a usage error."""
    parser.print_help()
    return EXIT_USAGE


@contextlib.contextmanager
def unlocked(args: argparse.Namespace) -> Iterator[Unlocked]:
    """Ask for the journalist's passphrase and unlock the station; lock it afterwards."""
    from journalist_ui.reopen import reopen_items
    from journalist_ui.unlock import unlock

    where = home(args)
    name = station.choose_journalist(station.load_station(where), args.journalist)
    secret = passphrase.existing_source(args.passphrase_fd)(f"journalist {name}'s keys")
    opened = unlock(where, name, secret)
    try:
        reopened = reopen_items(opened, now=datetime.now(UTC))
        if reopened:
            warn(
                f"{reopened} item(s) that could not be decrypted when they were imported open "
                "with your keys: they are readable now."
            )
        yield opened
    finally:
        opened.lock()
