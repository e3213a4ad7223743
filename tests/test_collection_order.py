"""tests/conftest.py hands the longest files out first, each file's tests together."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from tests.conftest import LONGEST_FILES, TESTS, longest_files_first


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
