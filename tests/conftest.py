"""Shared fixtures and hooks (plain helpers are in tests/support/).

Tests never skip because a tool is missing: `make test` installs every tool
the suite uses (deploy/bootstrap-dev.sh), so a missing one is a failure.

Markers (registered in setup.cfg): every test under tests/browser is ``browser`` and every
test under tests/bench is ``bench`` (the hook below); ``tor`` and ``slow`` are set in the
test files. `make test-fast` runs the tests with none of them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from xdist.scheduler import LoadFileScheduling

from tests.integration.tornet import TorNetwork, shared_network
from tests.support.database import DATABASES, backend, server_url
from tests.support.homes import TEMPLATES, HomeTemplates
from tests.support.postgres import Cluster, ClusterError, LazyCluster

#: The Debian package that provides each external tool the tests use. Every
#: package named here is in DEBIAN_PACKAGES in deploy/bootstrap-dev.sh.
DEBIAN_PACKAGES: dict[str, str] = {
    "tor": "tor",
    "tor-gencert": "tor",
    "systemd-analyze": "systemd",
    "chromium": "chromium",
    "firefox-esr": "firefox-esr",
    "gpg": "gnupg",
    "gpg-agent": "gnupg",
    "gpgconf": "gnupg",
    "mat2": "mat2",
    "haproxy": "haproxy",
    "strace": "strace",
    "mkfs.ext4": "e2fsprogs",
    "mount": "mount",
    "umount": "mount",
    # Debian keeps PostgreSQL's server binaries off PATH (tests/support/postgres.py finds them)
    "initdb": "postgresql",
    "postgres": "postgresql",
}


#: The marker every test in a directory directly under tests/ carries.
DIRECTORY_MARKERS: dict[str, str] = {"browser": "browser", "bench": "bench"}
TESTS = Path(__file__).resolve().parent


#: The files whose tests take longest (about 20 s to a minute each on a quiet 2-core machine),
#: longest first. `make test` hands whole files to its workers in collection order
#: (pytest-xdist --dist loadfile --no-loadscope-reorder), so these start first and no worker
#: is left with one of them at the end while the others are idle.
#: tests/dropbox/test_plaintext_never_on_disk.py is left out: it reads every file in the
#: temporary directories, which would take minutes while the 4 GiB upload of
#: test_completion.py is being written there.
LONGEST_FILES: tuple[str, ...] = (
    "dropbox/test_completion.py",
    "integration/test_tor_network.py",
    "dropbox/test_crash_atomicity.py",
    "deploy/test_install.py",
    "soak/test_lifecycle.py",
    "onion/test_serve_tor.py",
    "onion/test_max_streams_tornet.py",
    "deploy/test_demo.py",
    "integration/test_key_lifecycle.py",
    "deploy/test_front_nodes.py",
    "dropbox/test_nojs_hostile.py",
    "journalist_ui/test_keys_cli.py",
)
#: Files that share a session fixture too slow to make twice: `make test` hands each group
#: to one worker as if it were one file (see pytest_xdist_make_scheduler).
SHARED_WORKER: dict[str, str] = {
    "tests/integration/test_tor_network.py": "tor-network",
    "tests/onion/test_max_streams_tornet.py": "tor-network",
}
#: Then the files with a test carrying one of these markers, then the others.
LONG_MARKERS: tuple[str, ...] = ("slow", "tor", "soak", "browser", "bench")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.resolve().relative_to(TESTS).parts
        marker = DIRECTORY_MARKERS.get(parts[0]) if len(parts) > 1 else None
        if marker is not None:
            item.add_marker(marker)
    items[:] = longest_files_first(items)


def longest_files_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """The items, each file's together and in its own order, the longest files first."""
    ranks: dict[Path, int] = {}
    for item in items:
        name = item.path.resolve().relative_to(TESTS).as_posix()
        rank = LONGEST_FILES.index(name) if name in LONGEST_FILES else len(LONGEST_FILES) + 1
        if any(item.get_closest_marker(marker) for marker in LONG_MARKERS):
            rank = min(rank, len(LONGEST_FILES))
        ranks[item.path] = min(rank, ranks.get(item.path, rank))
    # sorted() is stable: files of the same rank, and each file's tests, keep their order.
    return sorted(items, key=lambda item: ranks[item.path])


class _SharedFileScheduling(LoadFileScheduling):  # type: ignore[misc]  # xdist is untyped
    """--dist loadfile, but the files of a SHARED_WORKER group are one unit of work: their
    session fixture is made once, on the worker that runs them all."""

    def _split_scope(self, nodeid: str) -> str:
        scope = str(super()._split_scope(nodeid))
        return SHARED_WORKER.get(scope, scope)


@pytest.hookimpl(optionalhook=True)  # a run without xdist (-p no:xdist) has no such hook
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    if config.getvalue("dist") != "loadfile":
        return None  # xdist's own scheduler for the other modes
    return _SharedFileScheduling(config, log)


def require_tool(name: str) -> str:
    """The absolute path of the executable ``name``; fail the test if it is not on PATH."""
    path = shutil.which(name)
    if path is None:
        package = DEBIAN_PACKAGES.get(name)
        if package is None:
            hint = "no Debian package is known for it: add it to deploy/bootstrap-dev.sh"
        else:
            hint = (
                f"`make test` installs it with the Debian package {package!r} "
                "(deploy/bootstrap-dev.sh, which installs only when run as root)"
            )
        pytest.fail(f"required tool {name!r} not found on PATH; {hint}", pytrace=False)
    return path


@pytest.fixture(scope="session", autouse=True)
def station_home_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HomeTemplates]:
    """Where the station homes made once per session are kept (tests/support/homes.py)."""
    TEMPLATES.use(tmp_path_factory.mktemp("station-homes"))
    yield TEMPLATES
    TEMPLATES.use(None)


#: Bound for a private Tor network's start (its clients bootstrapped).
TOR_BOOTSTRAP_TIMEOUT = 150


@pytest.fixture(scope="session")
def tor_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TorNetwork]:
    """A private Tor network on the loopback (tests/integration/tornet.py), started the first
    time a test of this worker asks for it, stopped at the end of the session."""
    base = tmp_path_factory.mktemp("tornet")
    with shared_network(
        base, require_tool("tor"), require_tool("tor-gencert"), TOR_BOOTSTRAP_TIMEOUT
    ) as network:
        yield network


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[LazyCluster]:
    """The session's throwaway PostgreSQL cluster (tests/support/postgres.py), started the
    first time a test asks for it (``.get()``) and stopped at the end of the session."""
    cluster = LazyCluster()
    yield cluster
    cluster.close()


def started_cluster(cluster: LazyCluster) -> Cluster:
    """The session's cluster, started if it is not yet; a test that needs it fails (never
    skips) when PostgreSQL cannot be found or started."""
    try:
        return cluster.get()
    except ClusterError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def postgres_url(postgres_cluster: LazyCluster) -> Iterator[str]:
    """The URL of a new empty PostgreSQL database, dropped after the test."""
    cluster = started_cluster(postgres_cluster)
    url = cluster.create_database()
    yield url
    cluster.drop_database(url)


@pytest.fixture(scope="session", autouse=True)
def server_database_backend(postgres_cluster: LazyCluster) -> Iterator[str]:
    """With POSTERN_TEST_DATABASE=postgresql, the data directories the tests make get fresh
    PostgreSQL databases (tests/support/database.py); SQLite files otherwise."""
    name = backend()
    DATABASES.use(postgres_cluster if name == "postgresql" else None)
    yield name
    DATABASES.use(None)


@pytest.fixture(autouse=True)
def server_databases(server_database_backend: str) -> Iterator[None]:
    """The databases made during a test are dropped after it."""
    DATABASES.begin_test()
    try:
        yield
    finally:
        DATABASES.end_test()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The URL of the server database for a test that opens it itself: the SQLite file in
    tmp_path, or (POSTERN_TEST_DATABASE=postgresql) a fresh PostgreSQL database."""
    return server_url(tmp_path)
