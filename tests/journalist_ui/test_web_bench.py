"""bench/station_views.py at a tiny size: it fills a home and measures every page.

No timing is asserted: the benchmark's numbers are its output.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bench.station_views import PAGES, PASSPHRASE, fill, measure_views
from journalist_ui import station
from journalist_ui.triage import list_sources
from journalist_ui.unlock import unlock
from tests.support.cli import MEMLIMIT


def test_measure_views_on_a_small_home(tmp_path):
    home = tmp_path / "home"
    station.init_station(
        home, "alice", lambda _what: PASSPHRASE, now=datetime.now(UTC), memlimit=MEMLIMIT
    )
    fill(home, 30, 3)
    unlocked = unlock(home, "alice", PASSPHRASE)
    try:
        with unlocked.store.session() as session:
            page = list_sources(session, "alice", page_size=10)
    finally:
        unlocked.lock()
    assert page.total == 30
    assert {(r.messages, r.files, r.unread) for r in page.rows} == {(2, 1, 3)}
    results = measure_views(home, repeat=1)
    assert set(results) == set(PAGES)
    assert all(seconds > 0 for seconds in results.values())
