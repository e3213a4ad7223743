"""The server for tests: its data directory, and ``dropbox serve`` in a subprocess on free
loopback ports, as the deployed server runs.

:func:`make_data_dir` makes a data directory in this process; :func:`init_data_dir` makes one
with the real commands. :class:`DropboxServer` starts the server in its own session (so that
a kill reaches its gunicorn arbiters and workers), waits until both ports listen, and stops
it; :func:`running_server` is the same as a context manager. Its output goes to ``stdout``
and ``stderr`` files in the directory given, appended to when the server is started again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from dropbox.filetimes import DISCARDED_PREFIX
from dropbox.instance import install_keyring
from dropbox.instance.create import init_instance
from tests.support.cli import DROPBOX, run_tool
from tests.support.database import DATABASES
from tests.support.ports import free_port, wait_for_port
from tests.support.team import Team


def make_data_dir(
    directory: Path, team: Team, *, keyring_serial: int | None = 1, with_clients: bool = True
) -> Path:
    """A data directory pinned to the team's root, with the team's keyring of serial
    ``keyring_serial`` installed (none if None), listing its transfer machine or, without
    ``with_clients``, no transfer machine. Made in this process, with the use cases; its
    database on the tests' backend (tests/support/database.py)."""
    init_instance(directory, team.root.public.key, database_url=DATABASES.url_for(directory))
    if keyring_serial is not None:
        clients = None if with_clients else ()
        install_keyring(directory, team.keyring(keyring_serial, clients=clients))
    return directory


def clean_environment(settings: Mapping[str, object] | None = None) -> dict[str, str]:
    """This process's environment without POSTERN_* variables, plus ``settings`` as
    POSTERN_<NAME> variables (``max_nojs_request_bytes=1024``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTERN_")}
    env.update({f"POSTERN_{name.upper()}": str(value) for name, value in (settings or {}).items()})
    return env


class DropboxServer:
    """``dropbox serve --data-dir DATA_DIR --port PORT --api-port API_PORT [ARGS]``.

    ``settings`` become POSTERN_* variables. Ports are picked free unless given. On
    PostgreSQL (tests/support/database.py), ``POSTERN_DATABASE_URL`` names the data
    directory's database unless ``settings`` sets ``database_url``.
    """

    def __init__(
        self,
        data_dir: Path,
        log_dir: Path,
        *,
        port: int | None = None,
        api_port: int | None = None,
        args: Sequence[str] = (),
        settings: Mapping[str, object] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port() if port is None else port
        self.api_port = free_port() if api_port is None else api_port
        self.args = tuple(args)
        self.env = {**DATABASES.env_for(data_dir), **clean_environment(settings)}
        self.out_path, self.err_path = log_dir / "stdout", log_dir / "stderr"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, *, wait: bool = True, timeout: float = 60) -> DropboxServer:
        """Start the server; with ``wait``, return once both ports listen."""
        ports = ("--port", str(self.port), "--api-port", str(self.api_port))
        command = [str(DROPBOX), "serve", "--data-dir", str(self.data_dir), *ports, *self.args]
        with self.out_path.open("ab") as out, self.err_path.open("ab") as err:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=self.env,
                start_new_session=True,
            )  # fmt: skip
        if wait:
            try:
                for port in (self.port, self.api_port):
                    wait_for_port(port, self.process, timeout=timeout, log=self.output,
                                  what="dropbox serve")  # fmt: skip
            except BaseException:
                self.kill()
                raise
        return self

    def worker_pids(self) -> list[list[int]]:
        """The worker processes of each gunicorn arbiter (the source interface's first)."""
        if self.process is None:
            return []
        arbiters = sorted(_children(self.process.pid))
        return [sorted(_children(arbiter)) for arbiter in arbiters]

    def output(self) -> str:
        """Everything the server wrote so far: its stdout, then its stderr."""
        return "".join(
            path.read_text("utf-8", "replace") if path.exists() else ""
            for path in (self.out_path, self.err_path)
        )

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, as systemd stops it; SIGKILL to the whole session if it does not stop.
        Returns the exit status (None if it was not running)."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.returncode

    def kill(self) -> None:
        """SIGKILL the whole session: no clean shutdown, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
            # The signal reaches the whole session at once, but its processes (two gunicorn
            # arbiters and their workers) take a moment to go, holding the listening ports:
            # a server started again at once would find them taken.
            deadline = time.monotonic() + 30
            while True:
                try:
                    os.killpg(self.process.pid, 0)
                except ProcessLookupError:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("the killed server's processes did not end")
                time.sleep(0.02)


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) is in parentheses and may hold spaces: split after it.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return children


@contextlib.contextmanager
def running_server(data_dir: Path, log_dir: Path, **settings: object) -> Iterator[DropboxServer]:
    """``dropbox serve`` running for ``data_dir`` (initialized, with a keyring)."""
    server = DropboxServer(data_dir, log_dir, settings=settings).start()
    try:
        yield server
    finally:
        server.stop()


def init_data_dir(data_dir: Path, root_pub: Path, keyring: Path) -> Path:
    """`dropbox init` pinned to ``root_pub``, then `dropbox keyring install` ``keyring``: the
    data directory made by the real commands, as an operator makes it."""
    for args in (("init", "--data-dir", data_dir, "--root", root_pub),
                 ("keyring", "install", "--data-dir", data_dir, keyring)):  # fmt: skip
        done = run_tool(DROPBOX, *args)
        assert done.returncode == 0, done.stdout + done.stderr
    return data_dir


def kept_files(directory: Path) -> list[str]:
    """The names in a store's directory (blobs, uploads) but the discarded files: emptied,
    they wait for the daily blur to unlink them (dropbox/filetimes.py)."""
    return sorted(n for n in os.listdir(directory) if not n.startswith(DISCARDED_PREFIX))
