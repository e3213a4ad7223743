"""PostgreSQL's server log names no source: with the deployment's settings
(deploy/postgresql/postern.conf), a row the server's own code gets refused (a unique
violation) leaves no identifier and no value of the row in the log.

PostgreSQL's default logging writes them (``DETAIL: Key (lookup_id)=(\\x...) already
exists.`` and the failing statement): the same provocation on a cluster with the default
settings shows that the check below would see them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy.exc import IntegrityError

from crypto import SourceSecrets
from dropbox import db
from dropbox.db import AppliedBundle
from dropbox.sources import SourceError, create_source
from dropbox.submissions import add_submission
from tests.conftest import started_cluster
from tests.support.postgres import Cluster, ClusterError

TODAY = date(2026, 11, 24)


def secrets() -> SourceSecrets:
    return SourceSecrets(
        lookup_id=os.urandom(32), reply_private=os.urandom(32), source_id=os.urandom(16)
    )


def provoke_refusals(url: str) -> dict[str, str]:
    """Rows the server's code gets refused, through its own engine and use cases; the
    identifiers and values they carried, as PostgreSQL prints them (bytea in hex)."""
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        sessions = db.make_sessionmaker(engine)
        first = secrets()
        # A second source with the same lookup id (a codename registered twice), and one
        # with another lookup id but the same journalist-facing source id.
        twin = SourceSecrets(first.lookup_id, os.urandom(32), os.urandom(16))
        clash = SourceSecrets(os.urandom(32), os.urandom(32), first.source_id)
        blob_id = os.urandom(32).hex()
        completion_key = os.urandom(32)
        bundle_id = os.urandom(16)
        with sessions() as session:
            source = create_source(session, first, TODAY)
            for again in (twin, clash):
                with pytest.raises(SourceError):
                    create_source(session, again, TODAY)
            # A retried completion racing the first: the same (hashed) idempotency key twice.
            add_submission(session, source.id, [("file", blob_id, 1)], TODAY, completion_key)
            with pytest.raises(IntegrityError) as raised:
                add_submission(session, source.id, [("file", blob_id, 1)], TODAY, completion_key)
            session.rollback()
            # Nor does the error the server's code sees quote the row (hide_parameters).
            assert blob_id not in str(raised.value)
            assert completion_key.hex() not in str(raised.value)
            # An outbound bundle applied twice.
            session.add(AppliedBundle(bundle_id=bundle_id))
            session.commit()
            session.add(AppliedBundle(bundle_id=bundle_id))
            with pytest.raises(IntegrityError):
                session.commit()
            session.rollback()
        return {
            "lookup id": first.lookup_id.hex(),
            "source id": first.source_id.hex(),
            "reply public key": twin.reply_public.hex(),
            "other lookup id": clash.lookup_id.hex(),
            "completion key": completion_key.hex(),
            "blob id": blob_id,
            "bundle id": bundle_id.hex(),
        }
    finally:
        engine.dispose()


def leaks(log: str, identifiers: dict[str, str]) -> list[str]:
    return [name for name, value in identifiers.items() if value in log]


@pytest.fixture
def default_logging_cluster() -> Iterator[Cluster]:
    """A cluster with PostgreSQL's default logging (no deploy/postgresql/postern.conf)."""
    try:
        cluster = Cluster(settings_file=None).start()
    except ClusterError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


def test_a_refused_row_leaves_no_identifier_in_the_server_log(postgres_cluster, postgres_url):
    cluster = started_cluster(postgres_cluster)
    identifiers = provoke_refusals(postgres_url)
    log = cluster.log()
    assert "duplicate key value violates unique constraint" in log  # the errors were logged
    assert leaks(log, identifiers) == []
    for word in ("DETAIL", "STATEMENT", "INSERT", "Key (", "\\x"):
        assert word not in log, word


def test_with_postgresql_s_default_logging_the_same_refusals_leak(default_logging_cluster):
    identifiers = provoke_refusals(default_logging_cluster.create_database())
    log = default_logging_cluster.log()
    # What the deployment's settings prevent: the keys' values in DETAIL lines (a source's
    # lookup id and source id, a hashed completion key, a bundle id), the statements that
    # failed, and the time of each to the millisecond.
    assert leaks(log, identifiers) == ["lookup id", "source id", "completion key", "bundle id"]
    assert "STATEMENT:  INSERT INTO" in log
