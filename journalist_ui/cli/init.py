"""``journalist init`` and ``journalist decrypt``: a new station home, and one envelope read."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from common.cli import EXIT_OK, say
from crypto import Kind
from journalist_ui import passphrase, station
from journalist_ui.cli.options import (
    Commands,
    add_home,
    add_passphrase_fd,
    home,
    journalist_name,
    memlimit,
)
from journalist_ui.filenames import printable


def add_commands(commands: Commands) -> None:
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
        "--journalist", required=True, type=journalist_name, metavar="NAME",
        help="the first journalist's name: 1 to 32 characters from a-z, 0-9, _ and -",
    )  # fmt: skip
    init.add_argument(
        "--label", metavar="TEXT",
        help="how the journalist's keys are named in the keyring (default: NAME)",
    )  # fmt: skip
    add_passphrase_fd(init)
    init.add_argument(
        "--argon2-memlimit", type=memlimit, default=station.DEFAULT_MEMLIMIT, metavar="BYTES",
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
    add_home(decrypt)
    decrypt.add_argument(
        "--journalist", type=journalist_name, metavar="NAME",
        help="whose keys to use (default: the station's only journalist)",
    )  # fmt: skip
    add_passphrase_fd(decrypt)
    decrypt.set_defaults(handler=_decrypt)


def _init(args: argparse.Namespace) -> int:
    result = station.init_station(
        args.home,
        args.journalist,
        passphrase.new_source(args.passphrase_fd),
        now=datetime.now(UTC),
        label=args.label,
        memlimit=args.argon2_memlimit,
    )
    _print_init(result)
    return EXIT_OK


def _decrypt(args: argparse.Namespace) -> int:
    result = station.decrypt_envelope(
        home(args),
        args.envelope,
        args.out,
        passphrase.existing_source(args.passphrase_fd),
        journalist=args.journalist,
    )
    _print_decrypt(result)
    return EXIT_OK


def _print_init(result: station.InitResult) -> None:
    layout = result.layout
    say(f"Created the station home {layout.home} for journalist {result.journalist}:")
    width = max(len(str(path.relative_to(layout.home))) for path, _ in result.files)
    for path, what in result.files:
        say(f"  {path.relative_to(layout.home)!s:<{width}}  {what}")
    say("")
    say("Team root key fingerprint (publish it out of band, for example on your website):")
    say(f"  {result.root_fingerprint}")
    say("")
    say("The passphrase you chose protects the root key and your keys. It cannot be")
    say("recovered: keep it safe.")
    say("")
    say("Next steps:")
    say(f"  1. Carry the files in {layout.outbox}/ (keyring.json, root.pub) to the server on")
    say("     removable media, and set up its data directory there with:")
    say(f"       dropbox init --data-dir DIR --root {layout.outbox_root.name}")
    say(f"       dropbox keyring install --data-dir DIR {layout.outbox_keyring.name}")
    say("     (compare the root fingerprint `dropbox init` prints with the one above).")
    say("  2. Carry back the server.pub that `dropbox init` wrote and pin it here with:")
    say(f"       journalist server pin server.pub --home {layout.home}")
    say("  3. Import the bundles `dropbox-transfer pull` brings with:")
    say(f"       journalist import BUNDLE --home {layout.home}")
    say("  4. Read them in the station UI (this machine only):")
    say(f"       journalist ui --home {layout.home}")
    say("To try the keys without a server, seal a file to the team with:")
    say(
        f"  dropbox seal --keyring {layout.outbox_keyring.name} "
        f"--root {layout.outbox_root.name} IN OUT"
    )


def _print_decrypt(result: station.DecryptResult) -> None:
    say(f"Decrypted {result.envelope} with journalist {result.journalist}'s key:")
    say(f"  kind:        {result.kind.name.lower()}")
    if result.kind is Kind.FILE:
        say(f"  filename:    {printable(result.sent_filename) or '(none)'}")
    say(f"  media type:  {printable(result.media_type) or '(none)'}")
    say(f"  size:        {result.size} bytes")
    say(f"  sha256:      {result.sha256}")
    say(f"  written to:  {printable(str(result.path))}")
