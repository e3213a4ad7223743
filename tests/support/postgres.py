"""A throwaway PostgreSQL cluster for the tests, and a fresh database in it per test.

:class:`Cluster` runs Debian's PostgreSQL (``initdb``, then ``postgres``) with its data in a
new directory in memory (/dev/shm, else the system's temporary directory), listening on a
Unix socket in that directory only (no TCP port to race other workers for). It includes the
deployment's privacy settings (deploy/postgresql/postern.conf), so the tests see the log an
operator's server writes; durability is switched off, which a throwaway cluster does not
need (``durable=True`` keeps it, for bench/scale.py).

:meth:`Cluster.create_database` makes an empty database (``CREATE DATABASE ... TEMPLATE``,
a file copy of a few megabytes) owned by the unprivileged role ``postern``, and returns its
``postgresql+psycopg://`` URL; :meth:`Cluster.drop_database` removes it, ending its sessions.

PostgreSQL refuses to run as root, and the suite runs as root in CI: the cluster then runs as
the ``postgres`` user (made by Debian's package), or ``nobody``. The server process is started
with a parent-death signal (``PR_SET_PDEATHSIG``): if pytest is killed, PostgreSQL shuts down
at once instead of outliving it, and :func:`remove_stale_clusters` removes what a killed run
left behind. :class:`LazyCluster` starts one cluster the first time a test asks for it
(the session fixture ``postgres_cluster`` in tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import psycopg
from psycopg import sql

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
#: The deployment's PostgreSQL settings (no identifier in the server log).
PRIVACY_SETTINGS: Final = REPO_ROOT / "deploy" / "postgresql" / "postern.conf"
#: The Debian package that provides PostgreSQL's server binaries.
DEBIAN_PACKAGE: Final = "postgresql"
#: The role that owns the tests' databases, as the server's role owns its database.
ROLE: Final = "postern"
SUPERUSER: Final = "postgres"
#: Where the clusters' directories go, and how their names start (see remove_stale_clusters).
PREFIX: Final = "postern-test-pg-"
OWNER_FILE: Final = "owner.pid"
_PR_SET_PDEATHSIG: Final = 1
_SAFE_NAME = re.compile(r"[a-z0-9_]+")


class ClusterError(RuntimeError):
    """The test cluster could not be found, started or used."""


def postgres_bindir() -> Path:
    """The directory of PostgreSQL's server binaries (initdb, postgres).

    Debian keeps them off PATH, in /usr/lib/postgresql/VERSION/bin: the newest version there
    is taken, else ``initdb`` on PATH, else ``pg_config --bindir``.
    """
    candidates: list[Path] = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else -1,
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path is not None:
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        done = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False, timeout=30
        )
        if done.returncode == 0 and done.stdout.strip():
            candidates.append(Path(done.stdout.strip()))
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "postgres")):
            return bindir
    raise ClusterError(
        "PostgreSQL's initdb and postgres were not found (in /usr/lib/postgresql/*/bin, on "
        f"PATH or by pg_config): `make test` installs them with the Debian package "
        f"{DEBIAN_PACKAGE!r} (deploy/bootstrap-dev.sh, which installs only when run as root)"
    )


def _server_user() -> pwd.struct_passwd | None:
    """The user to run PostgreSQL as: None (this process's own) unless this is root."""
    if os.geteuid() != 0:
        return None
    for name in (SUPERUSER, "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ClusterError("running as root, and neither a postgres nor a nobody user exists")


def _die_with_parent() -> None:
    """In the child, after it changed user: SIGQUIT (PostgreSQL's immediate shutdown) when
    the process that started it dies, even by SIGKILL."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def default_parent() -> Path:
    """Where clusters go: /dev/shm when it can be written (memory: creating and dropping a
    database per test, and removing the cluster, cost no disk I/O on a loaded machine), else
    the system's temporary directory."""
    shm = Path("/dev/shm")  # noqa: S108 - a directory of our own is made inside it
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return Path(tempfile.gettempdir())


def remove_stale_clusters(parent: Path | None = None) -> list[Path]:
    """Remove the clusters whose pytest process is gone (killed before it cleaned up),
    stopping their PostgreSQL if one still runs. Returns the directories removed."""
    removed = []
    for directory in (parent or default_parent()).glob(PREFIX + "*"):
        try:
            owner = int((directory / OWNER_FILE).read_text("ascii"))
        except (OSError, ValueError):
            continue  # being made right now, or not ours
        if _alive(owner):
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            postmaster = int((directory / "data" / "postmaster.pid").read_text().split()[0])
            if _alive(postmaster):
                os.kill(postmaster, signal.SIGQUIT)
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    return removed


class Cluster:
    """A PostgreSQL cluster of its own, in a new temporary directory, until :meth:`stop`."""

    def __init__(
        self,
        *,
        settings_file: Path | None = PRIVACY_SETTINGS,
        parent: Path | None = None,
        durable: bool = False,
        max_connections: int = 300,
    ) -> None:
        self.bindir = postgres_bindir()
        self.settings_file = settings_file
        #: Durable: every commit synced, as a deployment's server (bench/scale.py compares it
        #: with SQLite, which syncs every commit); else durability is off.
        self.durable = durable
        self.max_connections = max_connections
        self.user = _server_user()
        self.directory = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent or default_parent()))
        (self.directory / OWNER_FILE).write_text(str(os.getpid()), "ascii")
        self.data = self.directory / "data"
        self.log_path = self.directory / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)

    # -- running --------------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> Cluster:
        try:
            self._initdb()
            self._configure()
            self._launch(timeout)
            with self.admin() as admin:
                admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(ROLE)))
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def _uid(self) -> int | None:
        return None if self.user is None else self.user.pw_uid

    @property
    def _gid(self) -> int | None:
        return None if self.user is None else self.user.pw_gid

    @property
    def _groups(self) -> list[int] | None:
        # root's supplementary groups are not passed on to the server user
        return None if self.user is None else []

    def _initdb(self) -> None:
        if self.user is not None:
            os.chown(self.directory, self.user.pw_uid, self.user.pw_gid)
        os.chmod(self.directory, 0o700)
        done = subprocess.run(
            [
                str(self.bindir / "initdb"), "--pgdata", str(self.data), "--username", SUPERUSER,
                "--auth", "trust", "--encoding", "UTF8", "--locale", "C", "--no-sync",
                "--no-instructions",
            ],
            capture_output=True, text=True, check=False, timeout=120, cwd=self.directory,
            user=self._uid, group=self._gid, extra_groups=self._groups,
        )  # fmt: skip
        if done.returncode != 0:
            raise ClusterError(f"initdb failed ({done.returncode}): {done.stdout}{done.stderr}")

    def _configure(self) -> None:
        lines = [
            # A Unix socket in the cluster's own directory only: no TCP port.
            "listen_addresses = ''",
            f"unix_socket_directories = '{self.directory}'",
            # Each test's servers hold pooled connections until the test ends.
            f"max_connections = {self.max_connections}",
            "shared_buffers = 32MB",
        ]
        if not self.durable:
            # A throwaway cluster: nothing needs to survive a crash.
            lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        if self.settings_file is not None:
            # Last, so that the deployment's privacy settings win as they do in production.
            # Copied into the cluster, as an operator copies it to conf.d/: the server's user
            # may not read the checkout (a clone under `mktemp -d` is private to root).
            copy = self.data / self.settings_file.name
            copy.write_bytes(self.settings_file.read_bytes())
            if self.user is not None:
                os.chown(copy, self.user.pw_uid, self.user.pw_gid)
            lines.append(f"include '{copy.name}'")
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# tests/support/postgres.py\n" + "\n".join(lines) + "\n")

    def _launch(self, timeout: float) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.data)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.directory,
                start_new_session=True, preexec_fn=_die_with_parent,
                user=self._uid, group=self._gid, extra_groups=self._groups,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise ClusterError(f"postgres exited ({self.process.returncode}): {self.log()}")
            try:
                with psycopg.connect(self._conninfo("postgres"), connect_timeout=5):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise ClusterError(f"postgres did not start in time: {self.log()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then remove the directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        shutil.rmtree(self.directory, ignore_errors=True)

    def log(self) -> str:
        """Everything the server logged so far."""
        try:
            return self.log_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # -- databases ------------------------------------------------------------------------------

    def _conninfo(self, dbname: str, user: str = SUPERUSER) -> str:
        return psycopg.conninfo.make_conninfo(host=str(self.directory), dbname=dbname, user=user)

    @contextlib.contextmanager
    def admin(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        """A superuser connection to the ``postgres`` database, in autocommit."""
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as connection:
            yield connection

    def url(self, dbname: str) -> str:
        """The SQLAlchemy URL of ``dbname`` for the server (as the role that owns it)."""
        return f"postgresql+psycopg://{ROLE}@/{dbname}?host={self.directory}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database owned by ``postern``; its URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        if not _SAFE_NAME.fullmatch(name):
            raise ClusterError(f"not a database name for the tests: {name!r}")
        with self.admin() as admin:
            # template0 is never connected to, so the copy never waits; FILE_COPY copies its
            # few files instead of logging every page.
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0 STRATEGY FILE_COPY").format(
                    sql.Identifier(name), sql.Identifier(ROLE)
                )
            )
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (made by :meth:`create_database`), ending its sessions."""
        name = url.rsplit("/", 1)[1].split("?", 1)[0]
        with self.admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class LazyCluster:
    """One cluster, started the first time :meth:`get` is called, stopped by :meth:`close`."""

    def __init__(self, start: Callable[[], Cluster] | None = None) -> None:
        self._start = start or (lambda: Cluster().start())
        self._cluster: Cluster | None = None

    def get(self) -> Cluster:
        if self._cluster is None:
            remove_stale_clusters()
            self._cluster = self._start()
        return self._cluster

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.stop()
            self._cluster = None
