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
from journalist_ui import backup, keys, passphrase, station
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
    _add_key_commands(commands)

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
    from journalist_ui.reopen import reopen_items
    from journalist_ui.unlock import unlock

    home = _home(args)
    name = station.choose_journalist(station.load_station(home), args.journalist)
    if args.passphrase_fd is not None:
        secret = passphrase.read_from_fd(args.passphrase_fd)
    else:
        secret = passphrase.ask_existing(_prompt(), f"journalist {name}'s keys")
    unlocked = unlock(home, name, secret)
    try:
        reopened = reopen_items(unlocked, now=datetime.now(UTC))
        if reopened:
            print(
                f"{reopened} item(s) that could not be decrypted when they were imported open "
                "with your keys: they are readable now.",
                file=sys.stderr,
            )
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
    print(f"  1. Carry the files in {layout.outbox}/ (keyring.json, root.pub) to the server on")
    print("     removable media, and set up its data directory there with:")
    print(f"       dropbox init --data-dir DIR --root {layout.outbox_root.name}")
    print(f"       dropbox keyring install --data-dir DIR {layout.outbox_keyring.name}")
    print("     (compare the root fingerprint `dropbox init` prints with the one above).")
    print("  2. Carry back the server.pub that `dropbox init` wrote and pin it here with:")
    print(f"       journalist server pin server.pub --home {layout.home}")
    print("  3. Import the bundles `dropbox-transfer pull` brings with:")
    print(f"       journalist import BUNDLE --home {layout.home}")
    print("  4. Read them in the station UI (this machine only):")
    print(f"       journalist ui --home {layout.home}")
    print("To try the keys without a server, seal a file to the team with:")
    print(
        f"  dropbox seal --keyring {layout.outbox_keyring.name} "
        f"--root {layout.outbox_root.name} IN OUT"
    )


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


# -- journalist keys / backup / restore ------------------------------------------------------
#
# Several passphrases may be needed by one command. With --passphrase-fd N each is read as one
# line from N, in the order the command's help gives; at a terminal each is asked for by name.


def _add_key_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser(
        "keys",
        help="manage the team's keys: journalists, rotations, transfer clients, recovery",
        description=(
            "Every action that changes the keyring writes a new signed keyring (serial + 1) "
            "to HOME/outbox/keyring.json: carry it to the server and install it there with "
            "`dropbox keyring install`."
        ),
    )
    sub = group.add_subparsers(dest="keys_command", metavar="COMMAND", title="commands")
    group.set_defaults(handler=lambda args: _usage_help(group))

    def command(name: str, help_text: str, order: str | None = None) -> argparse.ArgumentParser:
        description = help_text[0].upper() + help_text[1:] + "."
        if order:
            description += f" Passphrases, in this order: {order}."
        parser = sub.add_parser(name, help=help_text, description=description)
        _add_home_and_passphrase(parser)
        return parser

    listing = command("list", "print every key of the station with its fingerprint")
    listing.set_defaults(handler=_keys_list)

    add = command(
        "add-journalist", "give a new journalist their own keys and passphrase",
        "the team root key; the acting journalist's (with --as); the new journalist's",
    )  # fmt: skip
    add.add_argument("name", type=_journalist_name, metavar="NAME")
    add.add_argument("--label", metavar="TEXT", help="how the keys are named (default: NAME)")
    _add_acting(add)
    _add_memlimit(add)
    add.set_defaults(handler=_keys_add_journalist)

    revoke = command(
        "revoke-journalist", "take a journalist out of the keyring (their keys are kept aside)",
        "the team root key; the acting journalist's (with --as)",
    )  # fmt: skip
    revoke.add_argument("name", type=_journalist_name, metavar="NAME")
    _add_acting(revoke)
    revoke.set_defaults(handler=_keys_revoke_journalist)

    rotate = command(
        "rotate-key", "give a journalist a new encryption key (the old one is retired)",
        "the journalist's; the team root key",
    )  # fmt: skip
    rotate.add_argument("name", type=_journalist_name, metavar="NAME")
    _add_memlimit(rotate)
    rotate.set_defaults(handler=_keys_rotate_key)

    root = command(
        "rotate-root", "make a new team root key, vouched for by the old one",
        "the team root key; the new team root key's (new)",
    )  # fmt: skip
    _add_memlimit(root)
    root.set_defaults(handler=_keys_rotate_root)

    client = command(
        "add-transfer-client", "make the keys of a new transfer machine",
        "the transfer machine's key files' (new, unless --no-passphrase); the team root key",
    )  # fmt: skip
    client.add_argument("label", metavar="LABEL", help="a name for the machine")
    client.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="new directory for the machine's key files")  # fmt: skip
    client.add_argument(
        "--no-passphrase",
        action="store_true",
        help="write the key files without a passphrase, for unattended use",
    )
    _add_memlimit(client)
    client.set_defaults(handler=_keys_add_transfer_client)

    unclient = command(
        "revoke-transfer-client", "take a transfer machine out of the keyring", "the team root key"
    )
    unclient.add_argument("label", metavar="LABEL")
    unclient.set_defaults(handler=_keys_revoke_transfer_client)

    rewrap = command(
        "rewrap", "re-seal the stored envelopes to the current journalists' keys",
        "each --journalist's, in the order given; then each --revoked one's",
    )  # fmt: skip
    rewrap.add_argument("--journalist", dest="journalists", action="append", default=[],
                        type=_journalist_name, metavar="NAME", required=True,
                        help="whose keys open the envelopes (repeat for several)")  # fmt: skip
    rewrap.add_argument(
        "--revoked",
        action="append",
        default=[],
        type=_journalist_name,
        metavar="NAME",
        help="also use a revoked journalist's kept keys (their passphrase)",
    )
    rewrap.set_defaults(handler=_keys_rewrap)

    destroy = command(
        "destroy-retired", "destroy retired and revoked private keys for good",
        "the acting journalist's (with --as, or the only journalist's), who opens the store "
        "to record the destruction in the evidence ledger",
    )  # fmt: skip
    _add_acting(destroy)
    destroy.add_argument(
        "--confirm",
        metavar="WORD",
        help=f'type "{keys.DESTROY_CONFIRMATION}" here instead of at the prompt',
    )
    destroy.set_defaults(handler=_keys_destroy_retired)

    kit = command("recovery-kit", "write a printable recovery kit (HTML)")
    kit.add_argument("--out", required=True, type=Path, metavar="FILE", help="new file")
    kit.set_defaults(handler=_keys_recovery_kit)

    make_backup = commands.add_parser(
        "backup",
        help="write the whole station as one encrypted file",
        description=(
            "Write the whole station home as one envelope sealed to every encryption key on "
            "the station (current, retired and revoked). Any of them restores it."
        ),
    )
    _add_home_and_passphrase(make_backup)
    make_backup.add_argument("--to", required=True, type=Path, metavar="FILE", help="new file")
    make_backup.set_defaults(handler=_backup)

    restore = commands.add_parser(
        "restore",
        help="restore a station backup into a new home",
        description=(
            "Restore a backup made by `journalist backup` into a new (or empty) directory, "
            "with one journalist's encryption key file (for example typed from the recovery "
            "kit) and its passphrase."
        ),
    )
    restore.add_argument("backup", type=Path, metavar="BACKUP")
    restore.add_argument("--to", required=True, type=Path, metavar="NEWHOME")
    restore.add_argument("--key-file", required=True, type=Path, metavar="FILE")
    _add_passphrase_fd(restore)
    restore.set_defaults(handler=_restore)


def _add_home_and_passphrase(parser: argparse.ArgumentParser) -> None:
    _add_home(parser)
    _add_passphrase_fd(parser)


def _add_acting(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as", dest="acting", type=_journalist_name, metavar="NAME",
        help="the journalist doing this, whose keys re-seal the store key (needed once the "
        "station has an encrypted store)",
    )  # fmt: skip


def _add_memlimit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--argon2-memlimit", type=_memlimit, default=station.DEFAULT_MEMLIMIT, metavar="BYTES",
        help="Argon2id memory for sealing new keys (default 268435456)",
    )  # fmt: skip


def _usage_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_USAGE


def _read_line_fd(fd: int) -> str:
    """One line from fd, read byte by byte so that the next line stays for the next ask."""
    data = bytearray()
    try:
        while len(data) <= passphrase.MAX_BYTES:
            byte = os.read(fd, 1)
            if not byte or byte == b"\n":
                break
            data += byte
    except OSError as exc:
        raise passphrase.PassphraseInputError(
            f"cannot read the passphrase from file descriptor {fd}: {exc.strerror}"
        ) from None
    if len(data) > passphrase.MAX_BYTES:
        raise passphrase.PassphraseInputError(
            f"the passphrase is longer than {passphrase.MAX_BYTES} bytes"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise passphrase.PassphraseInputError("the passphrase is not valid UTF-8") from None
    if not text:
        raise passphrase.PassphraseInputError(f"file descriptor {fd} gave no passphrase")
    return text


def _askers(args: argparse.Namespace) -> tuple[station.PassphraseSource, station.PassphraseSource]:
    def ask(what: str) -> str:
        if args.passphrase_fd is not None:
            return _read_line_fd(args.passphrase_fd)
        return passphrase.ask_existing(_prompt(), what)

    def ask_new(what: str) -> str:
        if args.passphrase_fd is not None:
            return passphrase.check_new(_read_line_fd(args.passphrase_fd))
        return passphrase.ask_new(_prompt(), what)

    return ask, ask_new


def _print_issued(issued: keys.Issued, home: Path) -> None:
    manifest = issued.manifest
    print(f"Issued keyring serial {issued.serial}: {issued.keyring.relative_to(home)}")
    print(f"  recipients:       {', '.join(sorted(e.journalist for e in manifest.recipients))}")
    print(f"  retired keys:     {len(manifest.retired)}")
    print(f"  signing keys:     {', '.join(sorted(e.journalist for e in manifest.signing_keys))}")
    print(f"  transfer clients: {', '.join(c.label for c in manifest.transfer_clients) or 'none'}")
    print(f"  team root:        {issued.root_fingerprint}")
    print()
    print(f"Next: carry {issued.outbox.parent}/ (keyring.json and root.pub) to the server and")
    print("run there: dropbox keyring install --data-dir DIR keyring.json")
    print("Until it is installed, new submissions are still sealed to the previous keyring.")


def _keys_list(args: argparse.Namespace) -> int:
    rows = keys.list_keys(_home(args))
    for row in rows:
        print(f"{row.role} ({printable(row.owner)}): {printable(row.label)}")
        print(f"    fingerprint  {row.fingerprint}")
        print(f"    key id       {row.key_id}")
        print(f"    file         {printable(row.where)}")
    return EXIT_OK


def _keys_add_journalist(args: argparse.Namespace) -> int:
    home = _home(args)
    ask, ask_new = _askers(args)
    result = keys.add_journalist(
        home, args.name, ask, ask_new, now=datetime.now(UTC), label=args.label,
        acting=args.acting, memlimit=args.argon2_memlimit,
    )  # fmt: skip
    print(f"Added journalist {result.journalist}:")
    print(f"  encryption key  {result.encryption_fingerprint}")
    print(f"  signing key     {result.signing_fingerprint}")
    if result.store_key_resealed:
        print("  the store key is now sealed to them too")
    _print_issued(result.issued, home)
    return EXIT_OK


def _keys_revoke_journalist(args: argparse.Namespace) -> int:
    home = _home(args)
    ask, _ = _askers(args)
    result = keys.revoke_journalist(home, args.name, ask, now=datetime.now(UTC), acting=args.acting)
    print(f"Revoked journalist {result.journalist}; their keys were moved to {result.moved_to}")
    print("(kept to read old material: `journalist keys rewrap`, then `destroy-retired`).")
    if result.store_key_resealed:
        print("The store key is no longer sealed to them.")
    _print_issued(result.issued, home)
    return EXIT_OK


def _keys_rotate_key(args: argparse.Namespace) -> int:
    home = _home(args)
    ask, _ = _askers(args)
    result = keys.rotate_encryption_key(
        home, args.name, ask, now=datetime.now(UTC), memlimit=args.argon2_memlimit
    )
    print(f"New encryption key for {result.journalist}: {result.encryption_fingerprint}")
    print("The old key is kept in keys/<name>/retired/ for old material.")
    _print_issued(result.issued, home)
    return EXIT_OK


def _keys_rotate_root(args: argparse.Namespace) -> int:
    home = _home(args)
    ask, ask_new = _askers(args)
    result = keys.rotate_team_root(
        home, ask, ask_new, now=datetime.now(UTC), memlimit=args.argon2_memlimit
    )
    print("Rotated the team root:")
    print(f"  old root  {result.old_fingerprint}")
    print(f"  new root  {result.new_fingerprint}")
    print(f"  the keyring carries the chain of {result.chain_length} rotation(s)")
    print("Publish the new fingerprint where the old one was published.")
    _print_issued(result.issued, home)
    return EXIT_OK


def _keys_add_transfer_client(args: argparse.Namespace) -> int:
    home = _home(args)
    ask, ask_new = _askers(args)
    client_passphrase = None if args.no_passphrase else ask_new(f"transfer client {args.label}")
    result = keys.add_transfer_client(
        home, args.label, args.out, ask, client_passphrase, now=datetime.now(UTC),
        memlimit=args.argon2_memlimit,
    )  # fmt: skip
    print(f"Made the keys of transfer client {printable(result.label)}:")
    for path, what in result.files:
        print(f"  {printable(str(path))}  {what}")
    print(f"  request-signing key  {result.signing_fingerprint}")
    print(f"  onion client auth    {result.onion_auth_fingerprint}")
    _print_issued(result.issued, home)
    return EXIT_OK


def _keys_revoke_transfer_client(args: argparse.Namespace) -> int:
    home = _home(args)
    ask, _ = _askers(args)
    issued = keys.revoke_transfer_client(home, args.label, ask, now=datetime.now(UTC))
    print(f"Revoked transfer client {printable(args.label)}.")
    _print_issued(issued, home)
    return EXIT_OK


def _keys_rewrap(args: argparse.Namespace) -> int:
    home = _home(args)
    ask, _ = _askers(args)
    done, failed = keys.rewrap_store(home, args.journalists, ask, args.revoked)
    changed = sum(1 for r in done if r.changed)
    print(f"Rewrapped {changed} envelope(s); {len(done) - changed} already sealed to exactly the")
    print("current journalists' keys.")
    for result in done:
        if result.changed:
            item = "" if result.item_id is None else f"item {result.item_id}: "
            print(f"  {item}{printable(result.path.name)}  sha256 {result.sha256}")
    for path, why in failed:
        print(f"  NOT rewrapped: {printable(str(path))}: {why}", file=sys.stderr)
    if failed:
        return _error(f"{len(failed)} envelope(s) could not be rewrapped (see above)", EXIT_FAILED)
    return EXIT_OK


def _keys_destroy_retired(args: argparse.Namespace) -> int:
    home = _home(args)
    files = keys.retired_key_files(home)
    if not files:
        print("There are no retired or revoked private keys on this station.")
        return EXIT_OK
    print("These private keys will be overwritten and deleted:")
    for path in files:
        print(f"  {path.relative_to(home)}  {keys.peek_key_file(path).fingerprint}")
    word = args.confirm
    if word is None:
        if not passphrase.terminal_available():
            raise UsageError(
                f"no terminal to confirm on: pass --confirm {keys.DESTROY_CONFIRMATION}"
            )
        word = input(f'Type "{keys.DESTROY_CONFIRMATION}" to destroy them: ')
    ask, _ = _askers(args)
    destroyed = keys.destroy_retired(
        home, word.strip(), ask, acting=args.acting, now=datetime.now(UTC)
    )
    print(f"Destroyed {len(destroyed)} key file(s).")
    if station.Layout(home).store_key.exists():
        print("The evidence ledger records it (event key-destroy, with the key ids).")
    return EXIT_OK


def _keys_recovery_kit(args: argparse.Namespace) -> int:
    path = keys.recovery_kit(_home(args), args.out, now=datetime.now(UTC))
    print(f"Wrote the recovery kit to {path}. Print it, check it, and delete the file.")
    return EXIT_OK


def _backup(args: argparse.Namespace) -> int:
    result = backup.backup_station(_home(args), args.to)
    print(f"Wrote {result.path} ({result.size} bytes, {result.files} files), sealed to:")
    for fp in result.recipients:
        print(f"  {fp}")
    return EXIT_OK


def _restore(args: argparse.Namespace) -> int:
    ask, _ = _askers(args)
    result = backup.restore_station(args.backup, args.to, args.key_file, ask)
    print(f"Restored {result.files} files into {result.home}")
    print(f"  journalists: {', '.join(result.journalists)}")
    print("Check the team root fingerprint with `journalist keys list --home NEWHOME`.")
    return EXIT_OK


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
