"""A private tor process of the server's own (``dropbox serve --tor launch``).

It keeps its data in a 0700 directory under the server's data directory, reads no system
torrc, listens on nothing but a control socket there (or, where the path is too long for a
socket, a loopback control port it picks), and exits with the process that started it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import stem.control

from common.files import write_atomic
from dropbox.onion.control import MAX_SOCKET_PATH, ControlAddress, connect
from dropbox.onion.errors import TorUnreachable
from dropbox.onion.keys import ensure_private_dir

#: Seconds to wait for a launched tor to open its control socket.
LAUNCH_TIMEOUT: Final = 60.0


def launch(
    data_dir: Path,
    *,
    tor_cmd: str = "tor",
    options: Sequence[str] = (),
    timeout: float = LAUNCH_TIMEOUT,
) -> tuple[stem.control.Controller, ControlAddress, subprocess.Popen[bytes]]:
    """Start a private tor with its data in ``data_dir`` (0700) and connect to it.

    It listens on nothing but a control socket in ``data_dir`` (no SOCKS port), exits when
    this process does (``__OwningControllerProcess``), and takes extra torrc ``options``
    ("DisableNetwork 1", ...).
    """
    executable = shutil.which(tor_cmd)
    if executable is None:
        raise TorUnreachable(
            f"tor is not installed ({tor_cmd!r} is not on PATH): apt install tor, or use "
            "--tor none to serve on 127.0.0.1 only"
        )
    ensure_private_dir(data_dir)
    control = data_dir / "control.sock"
    port_file = data_dir / "control.port"
    # A Unix socket where the path fits in one; else a loopback port tor picks (the cookie,
    # in the 0700 directory, still guards it).
    use_socket = len(str(control)) <= MAX_SOCKET_PATH
    for stale in (control, port_file):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    torrc = data_dir / "torrc"
    listen = (
        [f"ControlSocket {control}"]
        if use_socket
        else ["ControlPort auto", f"ControlPortWriteToFile {port_file}"]
    )
    lines = [
        f"DataDirectory {data_dir}",
        *listen,
        "CookieAuthentication 1",
        f"CookieAuthFile {data_dir / 'control.cookie'}",
        "SocksPort 0",
        "SafeLogging 1",
        "AvoidDiskWrites 1",
        f"Log notice file {data_dir / 'notice.log'}",
        f"__OwningControllerProcess {os.getpid()}",
        *options,
    ]
    write_atomic(torrc, ("\n".join(lines) + "\n").encode("utf-8"))
    # No defaults from the system's tor configuration: only the lines above.
    defaults = data_dir / "torrc-defaults"
    write_atomic(defaults, b"")
    process = subprocess.Popen(  # noqa: S603 - a fixed argument list, no shell
        [executable, "--defaults-torrc", str(defaults), "-f", str(torrc), "--quiet"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    ready = control if use_socket else port_file
    try:
        while not ready.exists():
            if process.poll() is not None:
                out = process.stderr.read() if process.stderr else b""
                err = out.decode(errors="replace")
                raise TorUnreachable(
                    f"the private tor exited with status {process.returncode}: "
                    f"{err.strip() or 'see ' + str(data_dir / 'notice.log')}"
                )
            if time.monotonic() > deadline:
                raise TorUnreachable(
                    f"the private tor did not open its control socket in {timeout:.0f} s "
                    f"(see {data_dir / 'notice.log'})"
                )
            time.sleep(0.05)
        address = ControlAddress(path=control) if use_socket else _read_port_file(port_file)
        controller = connect(address)
    except BaseException:
        stop(process)
        raise
    if process.stderr is not None:
        process.stderr.close()
    return controller, address, process


def _read_port_file(path: Path) -> ControlAddress:
    """The address in tor's ControlPortWriteToFile file (``PORT=127.0.0.1:NNNN``)."""
    for _ in range(100):  # tor writes the file once; wait until the line is complete
        text = path.read_text(encoding="ascii", errors="replace")
        match = re.match(r"^PORT=127\.0\.0\.1:(\d+)\n", text)
        if match:
            return ControlAddress(port=int(match.group(1)))
        time.sleep(0.05)
    raise TorUnreachable(f"the private tor wrote no control port to {path}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a launched tor: SIGTERM, then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
