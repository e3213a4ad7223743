"""The ``journalist`` command: the Postern journalist station.

Subcommands are added in :func:`build_parser`; each one sets ``handler`` to a
function that takes the parsed arguments and returns the exit status. Handlers
only gather their inputs (paths, passphrases, the clock, the environment),
call a use case (:mod:`journalist_ui.station`, ``importer``, ``ledger``, ``outbound``)
and report its result. Commands that need the store unlock it with the journalist's
passphrase and lock it again before they return.

Exit statuses: 0 success, 1 the operation failed, 2 usage error. Expected
failures are reported as one line on stderr, never as a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from config import SettingsError, load_station_settings
from crypto import CryptoError, Kind
from journalist_ui import passphrase, station
from journalist_ui.errors import StationError
from journalist_ui.filenames import printable

if TYPE_CHECKING:
    from journalist_ui.unlock import Unlocked

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

    server = commands.add_parser(
        "server", help="the server this station trusts",
        description="Manage the server signing key that inbound bundles must be signed with.",
    )  # fmt: skip
    server_commands = server.add_subparsers(
        dest="server_command", metavar="COMMAND", title="commands", required=True
    )
    pin = server_commands.add_parser(
        "pin",
        help="pin the server signing key (server.pub from `dropbox init`)",
        description=(
            "Pin the server's signing public key: inbound bundles are accepted only when signed "
            "by it. Compare the fingerprint printed here with the one `dropbox init` printed."
        ),
    )
    pin.add_argument("key_file", type=Path, metavar="FILE", help="the server.pub file")
    _add_home(pin)
    pin.add_argument(
        "--replace", action="store_true",
        help="replace a different key pinned before (only when the server really changed)",
    )  # fmt: skip
    pin.set_defaults(handler=_server_pin)

    import_ = commands.add_parser(
        "import",
        help="import an inbound bundle into the station store",
        description=(
            "Verify an inbound bundle against the pinned server key and import its envelopes "
            "into the encrypted store. Nothing is imported unless the whole bundle verifies; "
            "importing the same bundle again adds nothing."
        ),
    )
    import_.add_argument("bundle", type=Path, metavar="BUNDLE", help="the inbound bundle file")
    _add_unlock_arguments(import_)
    import_.set_defaults(handler=_import)

    ledger_ = commands.add_parser(
        "ledger", help="the evidence ledger",
        description="Check the evidence ledger or write it out as a report.",
    )  # fmt: skip
    ledger_commands = ledger_.add_subparsers(
        dest="ledger_command", metavar="COMMAND", title="commands", required=True
    )
    verify = ledger_commands.add_parser(
        "verify",
        help="check that no ledger record was changed, removed or reordered",
        description="Walk the hash chain of the evidence ledger and compare it with ledger.head.",
    )
    _add_unlock_arguments(verify)
    verify.set_defaults(handler=_ledger_verify)
    report = ledger_commands.add_parser(
        "report",
        help="write the ledger as a readable report for a legal team",
        description="Write the whole evidence ledger as plain text to a new file.",
    )
    report.add_argument(
        "--out", required=True, type=Path, metavar="FILE", help="the report file (must not exist)"
    )
    _add_unlock_arguments(report)
    report.set_defaults(handler=_ledger_report)

    outbound = commands.add_parser(
        "export-outbound",
        help="write pending replies, deletions and acknowledgements into an outbound bundle",
        description=(
            "Write everything waiting for the server (replies, deletions, acknowledgements of "
            "imported items) into one outbound bundle signed with the journalist's signing key, "
            "as DIR/outbound-<bundle id>.bundle. Nothing is written when nothing is pending."
        ),
    )
    outbound.add_argument(
        "--to", required=True, type=Path, metavar="DIR",
        help="where to write the bundle (the removable medium; created if missing)",
    )  # fmt: skip
    _add_unlock_arguments(outbound)
    outbound.set_defaults(handler=_export_outbound)
    _add_ui_command(commands)  # helper "web": the `ui` command, defined at the end of this file
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


def _server_pin(args: argparse.Namespace) -> int:
    home = _home(args)
    result = station.pin_server_key(home, args.key_file, replace=args.replace)
    if result.unchanged:
        print(f"This server key is already pinned: {result.fingerprint}")
        return EXIT_OK
    if result.replaced is not None:
        print(
            f"journalist: warning: replaced the pinned server key {result.replaced}; "
            "bundles signed by it are refused from now on",
            file=sys.stderr,
        )
    print("Pinned the server signing key. Its fingerprint:")
    print(f"  {result.fingerprint}")
    print("It must be the fingerprint `dropbox init` printed on the server.")
    return EXIT_OK


def _import(args: argparse.Namespace) -> int:
    from journalist_ui.importer import import_bundle

    bar = _ProgressBar()
    with _unlocked(args) as unlocked:
        try:
            result = import_bundle(
                unlocked, args.bundle, today=datetime.now(UTC).date(), progress=bar
            )
        finally:
            bar.close()
    print(f"Imported {args.bundle}:")
    print(f"  new items:        {result.imported}")
    print(f"  already present:  {result.already_present}")
    print(f"  new sources:      {result.sources_new}")
    if result.undecryptable:
        print(
            f"  undecryptable:    {result.undecryptable} (kept, but not sealed to this "
            "station's keys: check the server's keyring)"
        )
    print(f"  bundle sha256:    {result.bundle_sha256}")
    return EXIT_OK


def _ledger_verify(args: argparse.Namespace) -> int:
    from journalist_ui import ledger

    with _unlocked(args) as unlocked, unlocked.store.session() as session:
        report = ledger.verify(session, unlocked.layout.ledger_head)
    if not report.ok:
        problem = f"the evidence ledger does not verify: {report.problem}"
        return _error(f"{problem} ({report.count} records read)", EXIT_FAILED)
    print(f"The evidence ledger verifies: {report.count} records, hash chain intact.")
    if report.note:
        print(f"Note: {report.note}")
    return EXIT_OK


def _ledger_report(args: argparse.Namespace) -> int:
    from journalist_ui import fs, ledger

    out: Path = args.out
    if out.exists() or out.is_symlink():
        raise UsageError(f"{out} exists: choose a new file for the report")
    with _unlocked(args) as unlocked, unlocked.store.session() as session:
        text = ledger.report(session)
    fs.create_private_file(out, text.encode("utf-8"))
    print(f"Wrote the evidence ledger report to {printable(str(out))}")
    return EXIT_OK


def _export_outbound(args: argparse.Namespace) -> int:
    from journalist_ui.outbound import export_outbound

    with _unlocked(args) as unlocked:
        result = export_outbound(unlocked, args.to, today=datetime.now(UTC).date())
    if result is None:
        print("Nothing to send: no reply, deletion or acknowledgement is pending.")
        return EXIT_OK
    print(f"Wrote {printable(str(result.path))}:")
    print(f"  replies:          {result.replies}")
    print(f"  deletions:        {result.deletions}")
    print(f"  acknowledged:     {result.acknowledged}")
    print("Carry it to the transfer machine and send it with `dropbox-transfer push`.")
    return EXIT_OK


@contextlib.contextmanager
def _unlocked(args: argparse.Namespace) -> Iterator[Unlocked]:
    """Ask for the journalist's passphrase and unlock the station; lock it afterwards."""
    from journalist_ui.unlock import unlock

    home = _home(args)
    name = station.choose_journalist(station.load_station(home), args.journalist)
    if args.passphrase_fd is not None:
        secret = passphrase.read_from_fd(args.passphrase_fd)
    else:
        secret = passphrase.ask_existing(_prompt(), f"journalist {name}'s keys")
    unlocked = unlock(home, name, secret)
    try:
        yield unlocked
    finally:
        unlocked.lock()


class _ProgressBar:
    """A one-line progress bar on stderr, redrawn when the percentage changes."""

    def __init__(self) -> None:
        self._shown = -1

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        if percent != self._shown:
            self._shown = percent
            filled = percent // 4
            sys.stderr.write(f"\rimporting [{'#' * filled}{'.' * (25 - filled)}] {percent:3d}%")
            sys.stderr.flush()

    def close(self) -> None:
        if self._shown >= 0:
            sys.stderr.write("\n")
            sys.stderr.flush()


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
    print("  3. Pin the server's signing key (the server.pub `dropbox init` wrote) with:")
    print(f"       journalist server pin server.pub --home {layout.home}")
    print("  4. Import the bundles `dropbox-transfer pull` brings with:")
    print(f"       journalist import BUNDLE --home {layout.home}")


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


def _add_home(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home", type=Path, metavar="DIR",
        help="the station home (default: $POSTERN_STATION_HOME)",
    )  # fmt: skip


def _add_unlock_arguments(parser: argparse.ArgumentParser) -> None:
    _add_home(parser)
    parser.add_argument(
        "--journalist", type=_journalist_name, metavar="NAME",
        help="who unlocks the station (default: the station's only journalist)",
    )  # fmt: skip
    _add_passphrase_fd(parser)


def _home(args: argparse.Namespace) -> Path:
    home: Path = args.home if args.home is not None else _station_home_from_env()
    return home


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


# -- journalist ui (the station's web interface; helper "web" owns this section) -------------


def _add_ui_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ui = commands.add_parser(
        "ui",
        help="run the station's web interface on 127.0.0.1",
        description=(
            "Serve the station's web interface to the browser on this machine only "
            "(127.0.0.1). Unlock it with a journalist's passphrase; it locks itself when idle "
            "and when stopped (Ctrl+C)."
        ),
    )
    ui.add_argument(
        "--home", type=Path, metavar="DIR",
        help="the station home (default: $POSTERN_STATION_HOME)",
    )  # fmt: skip
    ui.add_argument(
        "--host", default="127.0.0.1", metavar="ADDRESS",
        help="must be 127.0.0.1 (any other address is refused)",
    )  # fmt: skip
    ui.add_argument("--port", type=_ui_port, default=8090, metavar="PORT", help="default 8090")
    ui.add_argument(
        "--idle-minutes", type=_ui_minutes, default=10, metavar="N",
        help="lock a session after N minutes without a request (default 10)",
    )  # fmt: skip
    ui.set_defaults(handler=_ui)


def _ui(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from journalist_ui.web.app import UISettings
    from journalist_ui.web.serve import check_host, serve

    check_host(args.host)
    home: Path = args.home if args.home is not None else _station_home_from_env()
    station.load_station(home)  # a clear error now rather than on the unlock page
    settings = UISettings(
        home=home, port=args.port, idle_timeout=timedelta(minutes=args.idle_minutes)
    )

    def ready(url: str) -> None:
        print(f"The station UI is at {url} (only this machine can reach it).", flush=True)
        print("Stop it with Ctrl+C; stopping locks every session.", flush=True)

    serve(settings, lambda: datetime.now(UTC), host=args.host, ready=ready)
    return EXIT_OK


def _ui_port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number from 1 to 65535: {text!r}")
    return int(text)


def _ui_minutes(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 24 * 60:
        raise argparse.ArgumentTypeError(f"not a number of minutes from 1 to 1440: {text!r}")
    return int(text)


if __name__ == "__main__":
    sys.exit(main())
