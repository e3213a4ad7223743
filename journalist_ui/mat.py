"""Metadata inspection and stripping with mat2 (the Debian package ``mat2``), when installed.

mat2 works on files, so the decrypted file is written to a private temporary directory
(0700, in /dev/shm when it exists, so it stays in memory), mat2 runs on that copy, and the
directory is removed (its file contents overwritten first) as soon as the report is read or
the cleaned copy exported. Without mat2 every function raises :class:`MatUnavailable`, whose
message says what to install.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from journalist_ui import filenames
from journalist_ui.errors import StationError
from journalist_ui.files import Plaintext

#: How long mat2 may run on one file.
TIMEOUT_SECONDS = 300
MAX_REPORT_CHARS = 200_000


class MatUnavailable(StationError):
    def __init__(self) -> None:
        super().__init__(
            "mat2 is not installed on this station, so metadata cannot be shown or removed: "
            "install the Debian package mat2"
        )


def mat2_path() -> str | None:
    return shutil.which("mat2")


def _require() -> str:
    path = mat2_path()
    if path is None:
        raise MatUnavailable()
    return path


def _private_dir() -> str | None:
    shm = Path("/dev/shm")  # noqa: S108 - mkdtemp makes a private 0700 directory in it
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _wipe(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with contextlib.suppress(OSError), path.open("r+b") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(0)
                while size > 0:
                    step = min(size, 1 << 20)
                    f.write(b"\0" * step)
                    size -= step
                f.flush()
    shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def private_copy(plaintext: Plaintext) -> Iterator[Path]:
    """The plaintext as a file in a private temporary directory, wiped afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="postern-mat-", dir=_private_dir()))
    try:
        name = filenames.safe_filename(plaintext.filename or "") or "file"
        path = directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            for chunk in plaintext.chunks():
                out.write(chunk)
        yield path
    finally:
        _wipe(directory)


def _run(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(  # noqa: S603 - mat2 by absolute path on our own copy
            arguments,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TIMEOUT_SECONDS,
            check=False,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
        )
    except subprocess.TimeoutExpired:
        raise StationError(f"mat2 did not finish within {TIMEOUT_SECONDS} seconds") from None
    except OSError as exc:
        raise StationError(f"cannot run mat2: {exc.strerror}") from None


def _problem(result: subprocess.CompletedProcess[str], path: Path) -> str:
    text = (result.stderr.strip() or result.stdout).strip().replace(str(path), path.name)
    line = text.splitlines()[-1] if text else f"exit status {result.returncode}"
    line = line.removeprefix("[-] ")
    return line[:300]


def metadata_report(plaintext: Plaintext) -> str:
    """What mat2 finds in the file (``mat2 --show``), as text."""
    mat2 = _require()
    with private_copy(plaintext) as path:
        result = _run([mat2, "--show", str(path)])
        # mat2 --show reports an unsupported format on stdout with "[-]" and exit status 0.
        if result.returncode != 0 or result.stdout.lstrip().startswith("[-]"):
            raise StationError(f"mat2 cannot read this file: {_problem(result, path)}")
        report = result.stdout.replace(str(path.parent) + "/", "")
    return report[:MAX_REPORT_CHARS] or "mat2 found no metadata."


@contextlib.contextmanager
def cleaned_copy(plaintext: Plaintext) -> Iterator[Path]:
    """A copy of the file with its metadata removed by mat2 (wiped after the block)."""
    mat2 = _require()
    with private_copy(plaintext) as path:
        result = _run([mat2, "--inplace", str(path)])
        if result.returncode != 0:
            raise StationError(f"mat2 could not clean this file: {_problem(result, path)}")
        yield path
