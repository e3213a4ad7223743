"""The publish step of an import (journalist_ui/importer/publish.py): a kill while the files
get their final names is undone by the next import; a marker left after a commit removes
nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import func, select

from journalist_ui import ledger
from journalist_ui.importer import import_bundle, publish
from journalist_ui.store.models import Import, Item
from tests.journalist_ui.storekit import open_home, write_bundle
from tests.journalist_ui.test_import_spool import NOW, TODAY, mixed_entries
from tests.support.cli import REPO_ROOT

KILLER = """
import os, signal, sys
from datetime import date
from pathlib import Path
from journalist_ui.importer import import_bundle, publish
from tests.journalist_ui.storekit import open_home

renamed = []
real = os.rename

def rename_then_die(src, dst):
    real(src, dst)
    renamed.append(dst)
    if len(renamed) == 3:
        os.kill(os.getpid(), signal.SIGKILL)

publish.os.rename = rename_then_die
unlocked = open_home(Path(sys.argv[1]))
import_bundle(unlocked, Path(sys.argv[2]), today=date(2026, 11, 24))
"""


@pytest.mark.timeout(120)
def test_a_kill_during_the_publish_step_is_undone_by_the_next_import(home, server, tmp_path):
    entries, _ = mixed_entries(home)
    bundle = write_bundle(tmp_path / "in.bundle", server, entries)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLER), str(home), str(bundle)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=100, check=False,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    envelopes = home / "store" / "envelopes"
    published = [p.name for p in envelopes.iterdir() if not p.name.startswith(".")]
    assert len(published) == 3  # killed with three files under their final names
    marker = home / "store" / publish.PUBLISHING
    assert set(published) <= set(marker.read_text().split())
    assert not (home / "ledger.head").exists()

    unlocked = open_home(home)
    try:
        with unlocked.store.session() as session:
            assert session.scalar(select(func.count()).select_from(Item)) == 0
            assert session.scalar(select(func.count()).select_from(Import)) == 0
        result = import_bundle(unlocked, bundle, today=TODAY, now=NOW)
        assert result.imported == 11
        with unlocked.store.session() as session:
            names = set(session.scalars(select(Item.envelope_name)))
            assert ledger.verify(session, unlocked.layout.ledger_head).ok
        assert {p.name for p in envelopes.iterdir()} == names
        assert not set(published) & names
        assert not marker.exists()
    finally:
        unlocked.lock()


def test_a_publish_marker_left_after_a_commit_removes_nothing(home, server, tmp_path):
    entries, _ = mixed_entries(home)
    unlocked = open_home(home)
    try:
        import_bundle(
            unlocked, write_bundle(tmp_path / "a", server, entries[:5]), today=TODAY, now=NOW
        )
        with unlocked.store.session() as session:
            names = set(session.scalars(select(Item.envelope_name)))
        # As if the station died between the commit and the marker's removal, plus a name
        # of garbage and one no item has (an orphan of the interrupted publish).
        orphan = unlocked.layout.envelopes / ("ab" * 16)
        orphan.write_bytes(b"orphan")
        marker = unlocked.layout.store / publish.PUBLISHING
        marker.write_text("\n".join([*sorted(names), "../../escape", orphan.name]) + "\n")
        import_bundle(
            unlocked, write_bundle(tmp_path / "b", server, entries[5:]), today=TODAY, now=NOW
        )
        assert not orphan.exists()
        assert not marker.exists()
        with unlocked.store.session() as session:
            all_names = set(session.scalars(select(Item.envelope_name)))
        assert names < all_names
        assert {p.name for p in unlocked.layout.envelopes.iterdir()} == all_names
    finally:
        unlocked.lock()
