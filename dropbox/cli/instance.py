"""``dropbox init`` and ``dropbox keyring install``: the server's data directory, pinned to
the team root, and the signed keyring installed in it."""

from __future__ import annotations

import argparse
from pathlib import Path

from common.cli import EXIT_OK, say
from crypto import Algorithm, fingerprint
from dropbox.cli.options import Commands, add_data_dir, settings_for
from dropbox.errors import DropboxError
from dropbox.instance import install_keyring
from dropbox.sealing import MAX_KEYRING_FILE, load_root


def add_commands(commands: Commands) -> None:
    init = commands.add_parser(
        "init",
        help="create a server data directory pinned to the team root key",
        description=(
            "Create the data directory DIR (mode 0700) with a new instance salt, a server "
            "signing key, the blob store, the uploads directory and the database (SQLite in "
            "DIR, or the empty database POSTERN_DATABASE_URL names, migrated to the newest "
            "schema), pinned to the team root public key. Codename Argon2id costs come from "
            "POSTERN_ARGON2_OPSLIMIT and POSTERN_ARGON2_MEMLIMIT (defaults 3 and 64 MiB). "
            "Refuses a directory that is already initialized or not empty."
        ),
    )
    add_data_dir(init)
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
    add_data_dir(install)
    install.add_argument("file", type=Path, metavar="FILE", help="the signed keyring file")
    install.set_defaults(handler=_keyring_install)


def _init(args: argparse.Namespace) -> int:
    # The database layer loads here, not with the command line: the other commands do
    # without it (dropbox.instance).
    from dropbox.instance.create import init_instance

    settings = settings_for(args.data_dir)
    root = load_root(args.root)
    instance = init_instance(
        settings.data_dir,
        root,
        opslimit=settings.argon2_opslimit,
        memlimit=settings.argon2_memlimit,
        database_url=settings.database_url,
    )
    say(f"Initialized the Postern data directory {instance.data_dir}")
    say(f"  team root pinned:    {fingerprint(Algorithm.ED25519, root)}")
    say(f"  server signing key:  {instance.server_key.public.fingerprint}")
    say(
        f"  codename Argon2id:   {instance.codename_params.opslimit} passes, "
        f"{instance.codename_params.memlimit // (1024 * 1024)} MiB"
    )
    say("Next: install a keyring with `dropbox keyring install --data-dir DIR FILE`.")
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
    say(f"Installed keyring serial {manifest.serial} (previously: {previous})")
    say(f"  team root:   {fingerprint(Algorithm.ED25519, result.keyring.root)}")
    if result.root_moved:
        say(
            "  the team root was rotated: the pin moved from "
            f"{fingerprint(Algorithm.ED25519, result.previous_root)}"
        )
    say(f"  recipients:  {recipients}")
    return EXIT_OK
