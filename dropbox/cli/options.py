"""What several ``dropbox`` subcommands share: the data directory option and the settings."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TypeAlias

from config import ServerSettings, load_server_settings

#: What ``add_subparsers`` returns: each command group adds its subcommands to it.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", required=True, type=Path, metavar="DIR", help="the server data directory"
    )


def settings_for(data_dir: Path) -> ServerSettings:
    """Settings from the POSTERN_* environment, with the data directory from the command line."""
    env = dict(os.environ)
    env["POSTERN_DATA_DIR"] = str(data_dir.resolve())
    return load_server_settings(env)
