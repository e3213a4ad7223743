"""``dropbox seal``: seal a file or a message to the recipients of a signed keyring."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from common.cli import EXIT_OK, say
from crypto import Kind
from dropbox.cli.options import Commands
from dropbox.errors import UsageError
from dropbox.sealing import load_keyring, seal_to_keyring

_KINDS = {"file": Kind.FILE, "message": Kind.MESSAGE}


def add_commands(commands: Commands) -> None:
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
    say(f"Sealed {result.content_length} bytes into {result.out} ({result.envelope_length} bytes)")
    say(f"  kind:        {result.kind.name.lower()}")
    if result.kind is Kind.FILE:
        say(f"  filename:    {result.filename or '(none)'}")
    say(f"  media type:  {result.media_type or '(none)'}")
    say(f"  keyring:     serial {result.keyring_serial}, verified against {args.root}")
    say(f"  recipients:  {recipients}")
    return EXIT_OK


@contextlib.contextmanager
def _open_input(name: str) -> Iterator[BinaryIO]:
    if name == "-":
        yield sys.stdin.buffer
        return
    with open(name, "rb") as src:
        yield src
