"""``dropbox onion-auth``: set up a transfer machine's tor to reach the client-authorized
API onion."""

from __future__ import annotations

import argparse
from pathlib import Path

from common.cli import EXIT_OK, say
from dropbox.cli.options import Commands
from dropbox.errors import DropboxError, UsageError


def add_commands(commands: Commands) -> None:
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


def _onion_auth(args: argparse.Namespace) -> int:
    import getpass

    from common.files import write_atomic
    from crypto import KeyKind, load_private_key
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
    say(f"Wrote {target} (0600) for {service_id.removesuffix('.onion')}.onion")
    say("Next: make sure tor's torrc has `ClientOnionAuthDir " + str(args.to) + "`, and "
          "that the file belongs to tor's user, then reload tor.")  # fmt: skip
    return EXIT_OK
