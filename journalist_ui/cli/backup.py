"""``journalist backup`` and ``journalist restore``: the whole station as one encrypted file."""

from __future__ import annotations

import argparse
from pathlib import Path

from common.cli import EXIT_OK, say
from journalist_ui import backup, passphrase
from journalist_ui.cli.options import Commands, add_home_and_passphrase, add_passphrase_fd, home


def add_commands(commands: Commands) -> None:
    make_backup = commands.add_parser(
        "backup",
        help="write the whole station as one encrypted file",
        description=(
            "Write the whole station home as one envelope sealed to every encryption key on "
            "the station (current, retired and revoked). Any of them restores it."
        ),
    )
    add_home_and_passphrase(make_backup)
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
    add_passphrase_fd(restore)
    restore.set_defaults(handler=_restore)


def _backup(args: argparse.Namespace) -> int:
    result = backup.backup_station(home(args), args.to)
    say(f"Wrote {result.path} ({result.size} bytes, {result.files} files), sealed to:")
    for fp in result.recipients:
        say(f"  {fp}")
    return EXIT_OK


def _restore(args: argparse.Namespace) -> int:
    ask = passphrase.existing_source(args.passphrase_fd)
    result = backup.restore_station(args.backup, args.to, args.key_file, ask)
    say(f"Restored {result.files} files into {result.home}")
    say(f"  journalists: {', '.join(result.journalists)}")
    say("Check the team root fingerprint with `journalist keys list --home NEWHOME`.")
    return EXIT_OK
