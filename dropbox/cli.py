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
import sys
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import BinaryIO

from crypto import CryptoError, Kind
from dropbox.sealing import SealError, load_keyring, seal_to_keyring

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
    except UsageError as exc:
        return _error(str(exc), EXIT_USAGE)
    except (SealError, CryptoError) as exc:
        return _error(str(exc), EXIT_FAILED)
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
