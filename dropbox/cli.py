"""The ``dropbox`` command: administration of the Postern server.

Subcommands are added in :func:`build_parser`; each one sets ``handler`` to a
function that takes the parsed arguments and returns the exit status. Handlers
only gather their inputs and call a use case (for example
:func:`dropbox.sealing.seal_to_keyring`), then report its result.

Exit statuses: 0 success, 1 the operation failed, 2 usage error. Expected
failures are reported as one line on stderr, never as a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import BinaryIO

from config import ServerSettings, SettingsError, load_server_settings
from crypto import Algorithm, CryptoError, Kind, fingerprint
from dropbox.errors import DropboxError
from dropbox.instance import init_instance, install_keyring, load_instance
from dropbox.onion import ControlAddress, TorChoice
from dropbox.sealing import MAX_KEYRING_FILE, SealError, load_keyring, load_root, seal_to_keyring

Handler = Callable[[argparse.Namespace], int]

EXIT_OK = 0
#: Exit status when an operation failed.
EXIT_FAILED = 1
#: Exit status when no subcommand was given (as for any other usage error).
EXIT_USAGE = 2

_KINDS = {"file": Kind.FILE, "message": Kind.MESSAGE}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dropbox",
        description="Run and administer the Postern drop box server.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {metadata.version('postern')}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    seal = commands.add_parser(
        "seal",
        help="seal a file or message to the recipients of a signed keyring",
        description=(
            "Verify a signed keyring against the team root public key, then seal IN into an "
            "envelope for exactly the keyring's recipients, written to OUT."
        ),
    )
    seal.add_argument(
        "--keyring", required=True, type=Path, metavar="FILE", help="signed keyring file"
    )
    seal.add_argument(
        "--root", required=True, type=Path, metavar="ROOT_PUB_FILE",
        help="the team root public key file (root.pub)",
    )  # fmt: skip
    seal.add_argument(
        "--kind", choices=sorted(_KINDS), default="file", help="what IN is (default: file)"
    )
    seal.add_argument(
        "--filename", metavar="NAME",
        help="the filename recorded in the envelope (files only; default: the name of IN)",
    )  # fmt: skip
    seal.add_argument(
        "--media-type", metavar="TYPE",
        help="the media type recorded in the envelope (default: guessed from the filename "
        "for files, text/plain for messages)",
    )  # fmt: skip
    seal.add_argument(
        "--force", action="store_true", help="replace OUT if it exists (default: refuse)"
    )
    seal.add_argument("input", metavar="IN", help="the file to seal, or - for standard input")
    seal.add_argument("output", type=Path, metavar="OUT", help="the envelope file to write")
    seal.set_defaults(handler=_seal)

    init = commands.add_parser(
        "init",
        help="create a server data directory pinned to the team root key",
        description=(
            "Create the data directory DIR (mode 0700) with a new instance salt, a server "
            "signing key, the blob store, the uploads directory and the database, pinned to "
            "the team root public key. Codename Argon2id costs come from POSTERN_ARGON2_OPSLIMIT "
            "and POSTERN_ARGON2_MEMLIMIT (defaults 3 and 64 MiB). Refuses a directory that is "
            "already initialized or not empty."
        ),
    )
    _add_data_dir(init)
    init.add_argument(
        "--root", required=True, type=Path, metavar="ROOT_PUB_FILE",
        help="the team root public key file (root.pub) from the station",
    )  # fmt: skip
    init.set_defaults(handler=_init)

    keyring = commands.add_parser("keyring", help="manage the installed keyring")
    keyring_commands = keyring.add_subparsers(
        dest="keyring_command", metavar="COMMAND", title="commands", required=True
    )
    install = keyring_commands.add_parser(
        "install",
        help="verify and install a signed keyring",
        description=(
            "Verify FILE against the pinned team root and install it. Its serial must be "
            "greater than the installed keyring's (no rollback, no replay). A root rotation "
            "in its chain moves the pin to the new root. A running server uses it at once."
        ),
    )
    _add_data_dir(install)
    install.add_argument("file", type=Path, metavar="FILE", help="the signed keyring file")
    install.set_defaults(handler=_keyring_install)

    serve = commands.add_parser(
        "serve",
        help="run the source interface and the sync API, and publish them as onion services",
        description=(
            "Run the source interface on 127.0.0.1:PORT and the sync API (for the transfer "
            "machine) on 127.0.0.1:API_PORT, each under its own gunicorn, and publish them "
            "through Tor as two onion services: the source onion, and the API onion with "
            "client authorization for the keyring's transfer clients (--tor system or --tor "
            "launch; with --tor none, the default, nothing is published). SIGTERM or Ctrl-C "
            "stops both and removes the onion services from tor. Other POSTERN_* variables "
            "adjust limits, throttling and retention."
        ),
    )
    _add_data_dir(serve)
    serve.add_argument(
        "--port", type=int, default=8080,
        help="the source interface's TCP port on 127.0.0.1 (default: 8080)",
    )  # fmt: skip
    serve.add_argument(
        "--api-port", type=int, default=8081, metavar="API_PORT",
        help="the sync API's TCP port on 127.0.0.1 (default: 8081)",
    )  # fmt: skip
    serve.add_argument(
        "--bind", default="127.0.0.1", metavar="ADDRESS",
        help="the address to listen on; only 127.0.0.1 is accepted",
    )  # fmt: skip
    _add_tor_options(serve, default="none")
    serve.set_defaults(handler=_serve)

    onions = commands.add_parser(
        "onions",
        help="publish the onion services for servers run by systemd",
        description=(
            "Publish the source onion (for 127.0.0.1:PORT) and the API onion (for "
            "127.0.0.1:API_PORT, client authorization for the keyring's transfer clients) "
            "through a running tor, keep the API onion in step with the installed keyring, "
            "and remove both from tor on SIGTERM or Ctrl-C (postern-onion.service). The "
            "servers themselves run elsewhere (postern-source.service, postern-api.service)."
        ),
    )
    _add_data_dir(onions)
    _add_tor_options(onions, default="system")
    onions.add_argument("--port", type=int, default=8080, help="the source interface's port")
    onions.add_argument(
        "--api-port", type=int, default=8081, metavar="API_PORT", help="the sync API's port"
    )
    onions.set_defaults(handler=_onions)

    auth = commands.add_parser(
        "onion-auth",
        help="configure a transfer machine's tor to reach the client-authorized API onion",
        description=(
            "Write the client-authorization file for the API onion ONION (its address, from "
            "`dropbox serve` or postern-onion's log) from the transfer client's onion-auth "
            "private key KEY, as DIR/postern-api.auth_private (0600), for a tor whose torrc "
            "has `ClientOnionAuthDir DIR`. Then reload that tor (systemctl reload tor)."
        ),
    )
    auth.add_argument("--key", required=True, type=Path, metavar="KEY",
                      help="the onion-auth private key file (kind onion-auth)")  # fmt: skip
    auth.add_argument("--onion", required=True, metavar="ONION",
                      help="the API onion address (56 characters, .onion optional)")  # fmt: skip
    auth.add_argument("--to", required=True, type=Path, metavar="DIR",
                      help="tor's ClientOnionAuthDir (e.g. /var/lib/tor/onion_auth)")  # fmt: skip
    auth.set_defaults(handler=_onion_auth)

    purge = commands.add_parser(
        "purge",
        help="purge every acknowledged item now",
        description=(
            "Delete every item that a journalist's outbound bundle acknowledged, blob and row, "
            "with the submissions left empty. Needed only when POSTERN_PURGE_AFTER_ACK=0 keeps "
            "acknowledged items (by default they are purged as soon as they are acknowledged)."
        ),
    )
    _add_data_dir(purge)
    purge.set_defaults(handler=_purge)
    return parser


def _add_tor_options(parser: argparse.ArgumentParser, *, default: str) -> None:
    parser.add_argument(
        "--tor", choices=("none", "system", "launch"), default=None,
        help="none: publish nothing, serve on 127.0.0.1 only; system: publish through a "
        "running tor (--tor-control); launch: start a private tor with its data in DIR/tor "
        f"(default: {default})",
    )  # fmt: skip
    parser.add_argument(
        "--tor-control", metavar="SOCKET_OR_PORT",
        help="the running tor's control socket (default /run/tor/control) or loopback "
        "port (9051, 127.0.0.1:9051), cookie authentication; implies --tor system",
    )  # fmt: skip
    parser.add_argument(
        "--tor-config", action="append", default=[], metavar="LINE",
        help="with --tor launch: one more torrc line for the private tor (repeatable; for "
        "example 'UseBridges 1' and 'Bridge ...' where Tor is blocked)",
    )  # fmt: skip
    parser.add_argument(
        "--publish-timeout", type=float, default=180.0, metavar="SECONDS",
        help="how long to wait for each onion's descriptor to be published (default: 180; "
        "0: do not wait)",
    )  # fmt: skip
    parser.set_defaults(tor_default=default)


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", required=True, type=Path, metavar="DIR", help="the server data directory"
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    handler: Handler = args.handler
    try:
        return handler(args)
    except UsageError as exc:
        return _error(str(exc), EXIT_USAGE)
    except (SealError, CryptoError, DropboxError) as exc:
        return _error(str(exc), EXIT_FAILED)
    except SettingsError as exc:
        return _error(str(exc), EXIT_USAGE)
    except OSError as exc:
        return _error(_describe_os_error(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return _error("interrupted", EXIT_FAILED)


class UsageError(Exception):
    """The command line cannot work as given; reported with exit status 2."""


# -- handlers --------------------------------------------------------------------------------


def _seal(args: argparse.Namespace) -> int:
    kind = _KINDS[args.kind]
    if kind is not Kind.FILE and args.filename is not None:
        raise UsageError("--filename applies to --kind file only")
    filename = args.filename
    if filename is None:
        filename = Path(args.input).name if kind is Kind.FILE and args.input != "-" else ""
    keyring = load_keyring(args.keyring, args.root)
    with _open_input(args.input) as src:
        result = seal_to_keyring(
            keyring,
            src,
            args.output,
            kind=kind,
            filename=filename,
            media_type=args.media_type,
            force=args.force,
        )
    recipients = ", ".join(f"{journalist} ({label})" for journalist, label in result.recipients)
    print(
        f"Sealed {result.content_length} bytes into {result.out} ({result.envelope_length} bytes)"
    )
    print(f"  kind:        {result.kind.name.lower()}")
    if result.kind is Kind.FILE:
        print(f"  filename:    {result.filename or '(none)'}")
    print(f"  media type:  {result.media_type or '(none)'}")
    print(f"  keyring:     serial {result.keyring_serial}, verified against {args.root}")
    print(f"  recipients:  {recipients}")
    return EXIT_OK


def _settings(data_dir: Path) -> ServerSettings:
    """Settings from the POSTERN_* environment, with the data directory from the command line."""
    env = dict(os.environ)
    env["POSTERN_DATA_DIR"] = str(data_dir.resolve())
    return load_server_settings(env)


def _init(args: argparse.Namespace) -> int:
    settings = _settings(args.data_dir)
    root = load_root(args.root)
    instance = init_instance(
        settings.data_dir,
        root,
        opslimit=settings.argon2_opslimit,
        memlimit=settings.argon2_memlimit,
    )
    print(f"Initialized the Postern data directory {instance.data_dir}")
    print(f"  team root pinned:    {fingerprint(Algorithm.ED25519, root)}")
    print(f"  server signing key:  {instance.server_key.public.fingerprint}")
    print(
        f"  codename Argon2id:   {instance.codename_params.opslimit} passes, "
        f"{instance.codename_params.memlimit // (1024 * 1024)} MiB"
    )
    print("Next: install a keyring with `dropbox keyring install --data-dir DIR FILE`.")
    return EXIT_OK


def _keyring_install(args: argparse.Namespace) -> int:
    path: Path = args.file
    data_dir = args.data_dir.resolve()
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_KEYRING_FILE + 1)
    except FileNotFoundError:
        raise DropboxError(f"keyring file {path} does not exist") from None
    result = install_keyring(data_dir, data, source=str(path))
    manifest = result.keyring.manifest
    recipients = ", ".join(f"{e.journalist} ({e.label})" for e in manifest.recipients)
    previous = "none" if result.previous_serial is None else str(result.previous_serial)
    print(f"Installed keyring serial {manifest.serial} (previously: {previous})")
    print(f"  team root:   {fingerprint(Algorithm.ED25519, result.keyring.root)}")
    if result.root_moved:
        print(
            "  the team root was rotated: the pin moved from "
            f"{fingerprint(Algorithm.ED25519, result.previous_root)}"
        )
    print(f"  recipients:  {recipients}")
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    # Imported here: the other commands need neither Flask nor gunicorn.
    from dropbox.serve import check_bind, serve

    address = args.bind
    try:
        check_bind(address)
    except DropboxError as exc:
        raise UsageError(str(exc)) from None
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be from 1 to 65535, got {args.port}")
    if not 1 <= args.api_port <= 65535:
        raise UsageError(f"--api-port must be from 1 to 65535, got {args.api_port}")
    if args.port == args.api_port:
        raise UsageError(f"--port and --api-port must differ, both are {args.port}")
    tor = _tor_choice(args)
    settings = _settings(args.data_dir)
    # A clear error now, rather than a worker that fails.
    instance = load_instance(settings.data_dir)
    print(f"team root fingerprint: {fingerprint(Algorithm.ED25519, instance.pinned_root)}")
    print(f"source interface:      http://{address}:{args.port}")
    print(f"sync API:              port {args.api_port}, on the same address")
    if tor.mode == "none":
        print(
            "Tor: none: nothing is published as an onion service, the servers are reachable "
            "on this machine only (--tor system or --tor launch publishes them)"
        )
    sys.stdout.flush()
    serve(
        settings,
        port=args.port,
        api_port=args.api_port,
        address=address,
        tor=tor,
        report=_report,
    )
    return EXIT_OK


def _onions(args: argparse.Namespace) -> int:
    from dropbox.serve import run_onions

    for option, port in (("--port", args.port), ("--api-port", args.api_port)):
        if not 1 <= port <= 65535:
            raise UsageError(f"{option} must be from 1 to 65535, got {port}")
    tor = _tor_choice(args)
    if tor.mode == "none":
        raise UsageError("dropbox onions needs a tor: --tor system or --tor launch")
    settings = _settings(args.data_dir)
    instance = load_instance(settings.data_dir)
    print(f"team root fingerprint: {fingerprint(Algorithm.ED25519, instance.pinned_root)}")
    run_onions(
        tor, settings.data_dir, source_port=args.port, api_port=args.api_port, report=_report
    )
    return EXIT_OK


def _onion_auth(args: argparse.Namespace) -> int:
    import getpass

    from crypto import KeyKind, load_private_key
    from dropbox.fsutil import write_atomic
    from dropbox.onion import client_auth_private_line

    data = args.key.read_bytes()[:4096]
    passphrase = None
    if b"protection: argon2id" in data:
        passphrase = getpass.getpass(f"Passphrase for {args.key}: ")
    key = load_private_key(data, passphrase)
    if key.kind is not KeyKind.ONION_AUTH:
        raise UsageError(f"{args.key} is a {key.kind.value} key, not an onion-auth key")
    service_id = args.onion.strip().lower().removeprefix("http://").removesuffix("/")
    line = client_auth_private_line(service_id.removesuffix(".onion"), key.secret)
    target = args.to / "postern-api.auth_private"
    if not args.to.is_dir():
        raise DropboxError(f"{args.to} is not a directory (tor's ClientOnionAuthDir)")
    write_atomic(target, (line + "\n").encode("ascii"))
    print(f"Wrote {target} (0600) for {service_id.removesuffix('.onion')}.onion")
    print("Next: make sure tor's torrc has `ClientOnionAuthDir " + str(args.to) + "`, and "
          "that the file belongs to tor's user, then reload tor.")  # fmt: skip
    return EXIT_OK


def _report(line: str) -> None:
    print(line, flush=True)


def _tor_choice(args: argparse.Namespace) -> TorChoice:
    mode = args.tor
    if args.tor_control is not None:
        if mode not in (None, "system"):
            raise UsageError("--tor-control goes with --tor system only")
        mode = "system"
    if not 0 <= args.publish_timeout <= 3600:
        raise UsageError(
            f"--publish-timeout must be from 0 to 3600 seconds, not {args.publish_timeout}"
        )
    timeout = args.publish_timeout or None
    if args.tor_config and (mode or args.tor_default) != "launch":
        raise UsageError("--tor-config goes with --tor launch only")
    for line in args.tor_config:
        if not line.strip() or "\n" in line or "\r" in line:
            raise UsageError(f"--tor-config takes one torrc line, not {line!r}")
    try:
        control = ControlAddress.parse(args.tor_control) if args.tor_control else None
        return TorChoice(
            mode or args.tor_default,
            control,
            options=tuple(args.tor_config),
            publish_timeout=timeout,
        )
    except DropboxError as exc:
        raise UsageError(str(exc)) from None


def _purge(args: argparse.Namespace) -> int:
    # Imported here: the other commands need no database.
    from dropbox import db
    from dropbox.storage import LocalBlobStore
    from dropbox.sync.retention import purge_acknowledged

    settings = _settings(args.data_dir)
    instance = load_instance(settings.data_dir)
    engine = db.make_engine(db.sqlite_url(settings.data_dir))
    try:
        db.upgrade(engine)
        with db.make_sessionmaker(engine)() as session:
            result = purge_acknowledged(session, LocalBlobStore(instance.blobs_dir))
    finally:
        engine.dispose()
    print(
        f"Purged {result.items} acknowledged item{'' if result.items == 1 else 's'} "
        f"({result.bytes} bytes of ciphertext) and {result.submissions} "
        f"submission{'' if result.submissions == 1 else 's'} left empty."
    )
    return EXIT_OK


@contextlib.contextmanager
def _open_input(name: str) -> Iterator[BinaryIO]:
    if name == "-":
        yield sys.stdin.buffer
        return
    with open(name, "rb") as src:
        yield src


def _describe_os_error(exc: OSError) -> str:
    if exc.filename is not None:
        return f"{exc.strerror or exc}: {exc.filename}"
    return str(exc.strerror or exc)


def _error(message: str, status: int) -> int:
    print(f"dropbox: error: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
