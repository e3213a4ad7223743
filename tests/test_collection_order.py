"""tests/conftest.py hands the longest files out first, each file's tests together."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from tests.conftest import (
    LONGEST_FILES,
    SHARED_WORKER,
    TESTS,
    _SharedFileScheduling,
    longest_files_first,
    pytest_xdist_make_scheduler,
)


@dataclass
class FakeItem:
    path: Path
    name: str
    markers: set[str] = field(default_factory=set)

    def get_closest_marker(self, name: str) -> Any:
        return name if name in self.markers else None


def test_the_longest_files_come_first_then_the_marked_ones_then_the_others():
    quick, marked = TESTS / "a" / "test_quick.py", TESTS / "b" / "test_marked.py"
    longest, second = TESTS / LONGEST_FILES[0], TESTS / LONGEST_FILES[1]
    items = [
        FakeItem(quick, "q1"),
        FakeItem(second, "s1"),
        FakeItem(marked, "m1"),
        FakeItem(marked, "m2", {"slow"}),
        FakeItem(quick, "q2"),
        FakeItem(longest, "l1"),
        FakeItem(longest, "l2", {"tor"}),
    ]
    ordered = longest_files_first(cast(list[pytest.Item], items))
    assert [item.name for item in ordered] == ["l1", "l2", "s1", "m1", "m2", "q1", "q2"]


def test_every_longest_file_exists():
    assert [name for name in LONGEST_FILES if not (TESTS / name).is_file()] == []


@pytest.fixture
def two_workers(pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch) -> pytest.Config:
    """The configuration as `-n 2` leaves it (xdist's schedulers count the workers)."""
    monkeypatch.setattr(pytestconfig.option, "tx", ["2*popen"], raising=False)
    return pytestconfig


def test_the_files_of_a_shared_group_are_one_unit_of_work(two_workers: pytest.Config):
    """The tor files go to one worker, which makes the private network once; every other
    file stays its own unit."""
    scheduler = _SharedFileScheduling(two_workers)
    tor_files = sorted(f for f, group in SHARED_WORKER.items() if group == "tor-network")
    assert len(tor_files) == 2
    scopes = {scheduler._split_scope(f"{name}::test_x") for name in tor_files}
    assert scopes == {"tor-network"}
    assert (
        scheduler._split_scope("tests/dropbox/test_api.py::test_x") == "tests/dropbox/test_api.py"
    )
    for name in SHARED_WORKER:
        assert (TESTS.parent / name).is_file(), name


def test_the_scheduler_is_used_for_loadfile_only(two_workers: pytest.Config, monkeypatch):
    monkeypatch.setattr(two_workers.option, "dist", "loadfile", raising=False)
    assert isinstance(pytest_xdist_make_scheduler(two_workers, None), _SharedFileScheduling)
    monkeypatch.setattr(two_workers.option, "dist", "load", raising=False)
    assert pytest_xdist_make_scheduler(two_workers, None) is None
