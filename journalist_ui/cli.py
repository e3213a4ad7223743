"""The ``journalist`` command: the Postern journalist station.

Subcommands are added in :func:`build_parser`; each one sets ``handler`` to a
function that takes the parsed arguments and returns the exit status. Handlers
only gather their inputs (paths, passphrases, the clock, the environment),
call a use case of :mod:`journalist_ui.station` and report its result.

Exit statuses: 0 success, 1 the operation failed, 2 usage error. Expected
failures are reported as one line on stderr, never as a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from config import SettingsError, load_station_settings
from crypto import CryptoError, Kind
from journalist_ui import passphrase, station
from journalist_ui.errors import StationError
from journalist_ui.filenames import printable

Handler = Callable[[argparse.Namespace], int]

EXIT_OK = 0
#: Exit status when an operation failed.
EXIT_FAILED = 1
#: Exit status when no subcommand was given (as for any other usage error).
EXIT_USAGE = 2


class UsageError(Exception):
    """The command line cannot work as given; reported with exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="journalist",
        description="Decrypt and read Postern submissions on the air-gapped journalist station.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {metadata.version('postern')}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    init = commands.add_parser(
        "init",
        help="create a station home with a team root key and a first journalist",
        description=(
            "Create a new station home: a team root key, an encryption key and a signing key "
            "for the first journalist, all sealed under one passphrase, and the first signed "
            "keyring. The files to carry to the server are put in DIR/outbox/."
        ),
    )
    init.add_argument(
        "--home", required=True, type=Path, metavar="DIR", help="new or empty directory"
    )
    init.add_argument(
        "--journalist", required=True, type=_journalist_name, metavar="NAME",
        help="the first journalist's name: 1 to 32 characters from a-z, 0-9, _ and -",
    )  # fmt: skip
    init.add_argument(
        "--label", metavar="TEXT",
        help="how the journalist's keys are named in the keyring (default: NAME)",
    )  # fmt: skip
    _add_passphrase_fd(init)
    init.add_argument(
        "--argon2-memlimit", type=_memlimit, default=station.DEFAULT_MEMLIMIT, metavar="BYTES",
        help="Argon2id memory for sealing the keys, at least 67108864 (64 MiB); "
        "default 268435456 (256 MiB)",
    )  # fmt: skip
    init.set_defaults(handler=_init)

    decrypt = commands.add_parser(
        "decrypt",
        help="decrypt an envelope into a directory",
        description=(
            "Decrypt one envelope with the journalist's keys and write its content to a new "
            "file in DIR. Nothing is written unless the whole envelope verifies, and no "
            "existing file is ever replaced."
        ),
    )
    decrypt.add_argument("envelope", type=Path, metavar="ENVELOPE", help="the envelope file")
    decrypt.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="where to write (created if missing)"
    )
    decrypt.add_argument(
        "--home", type=Path, metavar="DIR",
        help="the station home (default: $POSTERN_STATION_HOME)",
    )  # fmt: skip
    decrypt.add_argument(
        "--journalist", type=_journalist_name, metavar="NAME",
        help="whose keys to use (default: the station's only journalist)",
    )  # fmt: skip
    _add_passphrase_fd(decrypt)
    decrypt.set_defaults(handler=_decrypt)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    handler: Handler = args.handler
    try:
        return handler(args)
    except (UsageError, passphrase.NoTerminalError) as exc:
        return _error(str(exc), EXIT_USAGE)
    except (StationError, CryptoError) as exc:
        return _error(str(exc), EXIT_FAILED)
    except OSError as exc:
        return _error(_describe_os_error(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return _error("interrupted", EXIT_FAILED)


# -- handlers --------------------------------------------------------------------------------


def _init(args: argparse.Namespace) -> int:
    def ask(what: str) -> str:
        if args.passphrase_fd is not None:
            return passphrase.read_from_fd(args.passphrase_fd)
        return passphrase.ask_new(_prompt(), what)

    result = station.init_station(
        args.home,
        args.journalist,
        ask,
        now=datetime.now(UTC),
        label=args.label,
        memlimit=args.argon2_memlimit,
    )
    _print_init(result)
    return EXIT_OK


def _decrypt(args: argparse.Namespace) -> int:
    home: Path = args.home if args.home is not None else _station_home_from_env()

    def ask(what: str) -> str:
        if args.passphrase_fd is not None:
            return passphrase.read_from_fd(args.passphrase_fd)
        return passphrase.ask_existing(_prompt(), what)

    result = station.decrypt_envelope(
        home, args.envelope, args.out, ask, journalist=args.journalist
    )
    _print_decrypt(result)
    return EXIT_OK


# -- output ----------------------------------------------------------------------------------


def _print_init(result: station.InitResult) -> None:
    layout = result.layout
    print(f"Created the station home {layout.home} for journalist {result.journalist}:")
    width = max(len(str(path.relative_to(layout.home))) for path, _ in result.files)
    for path, what in result.files:
        print(f"  {path.relative_to(layout.home)!s:<{width}}  {what}")
    print()
    print("Team root key fingerprint (publish it out of band, for example on your website):")
    print(f"  {result.root_fingerprint}")
    print()
    print("The passphrase you chose protects the root key and your keys. It cannot be")
    print("recovered: keep it safe.")
    print()
    print("Next steps:")
    print(f"  1. Carry the files in {layout.outbox}/ to the server on removable media.")
    print("  2. On the server, seal submissions to this keyring with:")
    print(
        f"       dropbox seal --keyring {layout.outbox_keyring.name} "
        f"--root {layout.outbox_root.name} IN OUT"
    )
    print("     (installing the keyring on the server comes with a later version.)")
    print("  3. Bring the envelopes back here and decrypt them with:")
    print(f"       journalist decrypt ENVELOPE --out DIR --home {layout.home}")


def _print_decrypt(result: station.DecryptResult) -> None:
    print(f"Decrypted {result.envelope} with journalist {result.journalist}'s key:")
    print(f"  kind:        {result.kind.name.lower()}")
    if result.kind is Kind.FILE:
        print(f"  filename:    {printable(result.sent_filename) or '(none)'}")
    print(f"  media type:  {printable(result.media_type) or '(none)'}")
    print(f"  size:        {result.size} bytes")
    print(f"  sha256:      {result.sha256}")
    print(f"  written to:  {printable(str(result.path))}")


# -- helpers ---------------------------------------------------------------------------------


def _add_passphrase_fd(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--passphrase-fd",
        type=_fd,
        metavar="N",
        help="read the passphrase from file descriptor N (one line) instead of prompting",
    )


def _prompt() -> passphrase.Prompt:
    if not passphrase.terminal_available():
        raise passphrase.NoTerminalError()
    return getpass.getpass


def _station_home_from_env() -> Path:
    try:
        return load_station_settings(os.environ).home
    except SettingsError as exc:
        raise UsageError(f"no station home: pass --home DIR ({exc})") from None


def _journalist_name(text: str) -> str:
    try:
        return station.check_journalist_name(text)
    except StationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _memlimit(text: str) -> int:
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


def _describe_os_error(exc: OSError) -> str:
    if exc.filename is not None:
        return f"{exc.strerror or exc}: {exc.filename}"
    return str(exc.strerror or exc)


def _error(message: str, status: int) -> int:
    print(f"journalist: error: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
