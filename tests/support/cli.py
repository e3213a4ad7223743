"""Running the installed console scripts (``journalist``, ``dropbox``) in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.support.database import tool_env

#: The virtualenv's bin directory: the console scripts sit beside its Python.
BIN = Path(sys.executable).parent
JOURNALIST = BIN / "journalist"
DROPBOX = BIN / "dropbox"
REPO_ROOT = Path(__file__).resolve().parents[2]

#: Argon2id memory for test keys: the least the format allows, to keep tests fast.
MEMLIMIT = 64 * 1024 * 1024
PASSPHRASE = "correct horse battery staple"  # noqa: S105 - test keys only


def run_tool(
    tool: Path,
    *args: str | Path,
    passphrase: str | None = None,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    new_session: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run a console script; with ``passphrase``, pass it on a pipe with --passphrase-fd."""
    assert tool.is_file(), f"{tool} is not installed: run `make bootstrap`"
    if tool == DROPBOX and "--data-dir" in args:
        # The data directory's database on the tests' backend (tests/support/database.py).
        env = tool_env(Path(args[args.index("--data-dir") + 1]), env)
    argv = [str(tool), *map(str, args)]
    pass_fds: tuple[int, ...] = ()
    read_end = -1
    if passphrase is not None:
        read_end, write_end = os.pipe()
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(passphrase.encode("utf-8") + b"\n")
        argv += ["--passphrase-fd", str(read_end)]
        pass_fds = (read_end,)
    try:
        done = subprocess.run(
            argv,
            input=stdin if stdin is not None else b"",
            capture_output=True,
            pass_fds=pass_fds,
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=new_session,
            check=False,
            timeout=60,
        )
    finally:
        if read_end >= 0:
            os.close(read_end)
    return subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    """The tool failed with ``status`` and said why on exactly one line of stderr."""
    assert done.returncode == status, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    for word in words:
        assert word in done.stderr, (word, done.stderr)


def files_under(directory: Path) -> list[Path]:
    """Every entry below directory (hidden ones too), sorted; empty if it does not exist."""
    if not directory.exists():
        return []
    return sorted(directory.rglob("*"))
