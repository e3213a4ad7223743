"""The tests' throwaway PostgreSQL cluster (tests/support/postgres.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import started_cluster
from tests.support.cli import REPO_ROOT
from tests.support.postgres import ROLE, remove_stale_clusters


def test_a_fresh_database_is_empty_owned_by_the_server_role_and_private(postgres_url):
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT current_user")).scalar() == ROLE
            assert sa.inspect(connection).get_table_names() == []
            connection.execute(sa.text("CREATE TABLE t (x integer)"))
            connection.commit()
    finally:
        engine.dispose()


def test_each_test_gets_its_own_database(postgres_cluster, postgres_url):
    other = started_cluster(postgres_cluster).create_database()
    assert other != postgres_url
    started_cluster(postgres_cluster).drop_database(other)


def test_the_cluster_runs_unprivileged_on_a_socket_of_its_own(postgres_cluster):
    cluster = started_cluster(postgres_cluster)
    assert cluster.process is not None
    assert os.stat(f"/proc/{cluster.process.pid}").st_uid != 0
    assert (cluster.directory / ".s.PGSQL.5432").is_socket()
    with cluster.admin() as admin:
        assert admin.execute("SHOW listen_addresses").fetchone() == ("",)
        assert admin.execute("SHOW log_error_verbosity").fetchone() == ("terse",)


_STARTER = """
import sys, time
from tests.support.postgres import Cluster
cluster = Cluster(parent=sys.argv[1]).start()
print(cluster.process.pid, flush=True)
time.sleep(600)
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_killed_test_run_leaves_no_postgresql_running():
    # Not under pytest's temporary directory: the server user could not reach it.
    parent = Path(tempfile.mkdtemp(prefix="postern-test-clusters-"))
    try:
        parent.chmod(0o755)
        with subprocess.Popen(
            [sys.executable, "-c", _STARTER, str(parent)], stdout=subprocess.PIPE,
            cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        ) as starter:  # fmt: skip
            try:
                assert starter.stdout is not None
                postmaster = int(starter.stdout.readline())
                assert _running(postmaster)
            finally:
                starter.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _running(postmaster):
            assert time.monotonic() < deadline, "postgres outlived the killed process that ran it"
            time.sleep(0.05)
        (left,) = parent.iterdir()
        assert remove_stale_clusters(parent) == [left]
        assert list(parent.iterdir()) == []
    finally:
        shutil.rmtree(parent, ignore_errors=True)
